package reports

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/vdpp/vdpp/timeline"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// formatLayout prints a Gantt layout one bar per line.
func formatLayout(d GanttData) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lanes %v end %.6gs\n", d.Lanes, d.EndS)
	for _, bar := range d.Bars {
		fmt.Fprintf(&b, "span %2d lane %d %-6s warm=%-5v x [%.4f, %.4f] y [%.2f, %.2f] %q %q\n",
			bar.Span, bar.Lane, bar.Kind, bar.Warmup, bar.X0, bar.X1, bar.Y0, bar.Y1, bar.Label, bar.Long)
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("%s: first difference at line %d:\n got %s\nwant %s", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: got %d lines, want %d", path, len(gl), len(wl))
	}
}

func TestGanttLayoutGolden(t *testing.T) {
	golden(t, "gantt_layout.golden", formatLayout(GanttLayout(handPipeline("sim", 0, 1))))
	golden(t, "gantt_layout_arrivals.golden", formatLayout(GanttLayout(handPipeline("exec", 3_000_000_000, 1))))
}

// The geometry, checked by hand on the first spans of the hand pipeline.
func TestGanttLayoutGeometry(t *testing.T) {
	tl := handPipeline("sim", 0, 1)
	d := GanttLayout(tl)
	if strings.Join(d.Lanes, ",") != "gpu0,gpu1,gpu2" {
		t.Fatalf("lanes %v", d.Lanes)
	}
	if len(d.Bars) != len(tl.Spans) {
		t.Fatalf("%d bars for %d spans", len(d.Bars), len(tl.Spans))
	}
	// Span 0: encode of s0 on gpu0, 0..0.2 s, top lane (y = 2), compute band.
	b := d.Bars[0]
	if b.Kind != timeline.KindEncode || b.Lane != 0 || b.X0 != 0 || b.X1 != 0.2 || !closeTo(b.Y0, 1.72) || !closeTo(b.Y1, 2.28) || b.Label != "s0" {
		t.Errorf("encode bar %+v", b)
	}
	// Span 1: warm-up steps 0-9 of s0, 0.2 .. 0.2+3.0+0.5 s.
	b = d.Bars[1]
	if b.Kind != timeline.KindStep || !b.Warmup || b.X0 != 0.2 || b.X1 != 3.7 || b.Long != "s0 · steps 0-9" {
		t.Errorf("warm-up bar %+v", b)
	}
	// Span 2: send gpu0 -> gpu1 above gpu0's compute band; span 4: recv on
	// gpu1 (y = 1) below its compute band; span 3: the wait, no label.
	send, wait, recv := d.Bars[2], d.Bars[3], d.Bars[4]
	if send.Kind != timeline.KindSend || send.Y0 <= 2+computeHalf || send.Y1 > 2.5 || send.Label != "" {
		t.Errorf("send bar %+v", send)
	}
	if recv.Kind != timeline.KindRecv || recv.Lane != 1 || recv.Y1 >= 1-computeHalf || recv.Y0 < 0.5 {
		t.Errorf("recv bar %+v", recv)
	}
	if wait.Kind != timeline.KindWait || wait.Label != "" || !closeTo(wait.Y0, 1.72) {
		t.Errorf("wait bar %+v", wait)
	}
	// The run ends with the decode of s4 on gpu2; every bar lies within [0, end].
	want := timeline.Seconds(tl.Samples[4].Done)
	if d.EndS != want {
		t.Errorf("end %g, want %g", d.EndS, want)
	}
	for _, b := range d.Bars {
		if b.X0 < 0 || b.X1 > d.EndS || b.X1 < b.X0 || b.Y0 < -0.5 || b.Y1 > 2.5 {
			t.Errorf("bar outside the plot: %+v", b)
		}
	}
	// A device only in spans gets a lane after the listed ones.
	tl.AddSpan(timeline.Span{Device: "cpu", Kind: timeline.KindDecode, Start: 0, End: 1})
	if d := GanttLayout(tl); len(d.Lanes) != 4 || d.Lanes[3] != "cpu" || !closeTo(d.Bars[len(d.Bars)-1].Y0, -0.28) {
		t.Errorf("extra device: lanes %v, last bar %+v", d.Lanes, d.Bars[len(d.Bars)-1])
	}
}

func closeTo(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestSharedEnd(t *testing.T) {
	a, b := GanttLayout(handPipeline("sim", 0, 1)), GanttLayout(handPipeline("exec", 0, 1.5))
	if got := sharedEnd([]GanttData{a, b}, 0); got != b.EndS || b.EndS <= a.EndS {
		t.Errorf("shared end %g, want the later run's %g (earlier %g)", got, b.EndS, a.EndS)
	}
	if got := sharedEnd([]GanttData{a}, 60); got != 60 {
		t.Errorf("fixed end %g", got)
	}
	if got := sharedEnd([]GanttData{{}}, 0); got != 1 {
		t.Errorf("empty end %g", got)
	}
}

// decodePNG decodes a PNG and counts its distinct colours.
func decodePNG(t *testing.T, data []byte) (image.Image, map[color.RGBA]int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	cols := map[color.RGBA]int{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			cols[c]++
		}
	}
	return img, cols
}

func TestWriteGanttPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gantt.png")
	panels := []GanttPanel{{"predicted", handPipeline("sim", 0, 1)}, {"measured", handPipeline("exec", 0, 1.04)}}
	if err := WriteGanttPNG(path, panels, GanttOptions{WidthPx: 1200}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, cols := decodePNG(t, data)
	// Height by default: legend + per panel 120 + 64 per lane.
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 1200 || h != legendPx+2*(120+64*3) {
		t.Errorf("size %dx%d, want 1200x%d", w, h, legendPx+2*(120+64*3))
	}
	if len(cols) < 8 {
		t.Errorf("%d distinct colours; the image looks blank", len(cols))
	}
	for name, c := range map[string]color.RGBA{"step": colStep, "warm-up": colWarmup, "decode": colDecode, "encode": colEncode} {
		if cols[c] < 50 {
			t.Errorf("%s colour covers %d pixels, want a visible area", name, cols[c])
		}
	}
	// Explicit size.
	var buf bytes.Buffer
	if err := WriteGantt(&buf, panels[:1], GanttOptions{WidthPx: 640, HeightPx: 300}); err != nil {
		t.Fatal(err)
	}
	if img, _ := decodePNG(t, buf.Bytes()); img.Bounds().Dx() != 640 || img.Bounds().Dy() != 300 {
		t.Errorf("size %v, want 640x300", img.Bounds())
	}
}

func TestWriteGanttErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteGantt(&buf, nil, GanttOptions{}); err == nil || !strings.HasPrefix(err.Error(), "reports: gantt: ") {
		t.Errorf("no panels: %v", err)
	}
	if err := WriteGantt(&buf, []GanttPanel{{Title: "x"}}, GanttOptions{}); err == nil || !strings.Contains(err.Error(), "no timeline") {
		t.Errorf("nil timeline: %v", err)
	}
	if err := WriteGanttPNG(filepath.Join(t.TempDir(), "no", "dir.png"), []GanttPanel{{"x", handPipeline("sim", 0, 1)}}, GanttOptions{}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	// An empty timeline still draws.
	if err := WriteGantt(&buf, []GanttPanel{{"empty", &timeline.Timeline{}}}, GanttOptions{}); err != nil {
		t.Errorf("empty timeline: %v", err)
	}
}

// Labels go only where they fit, and never more than the cap.
func TestGanttLabelCap(t *testing.T) {
	mk := func(n int, durNS int64) *timeline.Timeline {
		tl := &timeline.Timeline{Meta: timeline.Meta{Plan: "many", Source: "sim", Devices: []string{"a", "b"}}}
		for i := 0; i < n; i++ {
			for j, d := range []string{"a", "b"} {
				start := int64(i)*durNS + int64(j)*durNS/2
				tl.AddSpan(timeline.Span{Device: d, Kind: timeline.KindStep, Samples: []int{i}, FirstStep: j, LastStep: j, Start: start, End: start + durNS*9/10})
			}
		}
		return tl
	}
	for _, c := range []struct {
		name      string
		spans     int
		max, want int
	}{
		{"wide spans, cap bites", 20, 10, 10},  // 40 bars of ~70 px: all fit, 10 drawn
		{"wide spans, under cap", 20, 100, 40}, // all 40 drawn
		{"3000 narrow spans", 3000, 300, 0},    // 0.4 px each: none fits
	} {
		data := GanttLayout(mk(c.spans, 1_000_000))
		g := &ganttPlotter{data: data, maxLabels: c.max, labelFont: sans(10)}
		p := plot.New()
		p.Add(g)
		p.X.Min, p.X.Max = 0, data.EndS
		img := vgimg.NewWith(vgimg.UseWH(1200, 200), vgimg.UseDPI(96))
		p.Draw(draw.New(img))
		if g.drawn != c.want {
			t.Errorf("%s: %d labels drawn, want %d", c.name, g.drawn, c.want)
		}
	}
	var buf bytes.Buffer
	if err := WriteGantt(&buf, []GanttPanel{{"many", mk(3000, 1_000_000)}}, GanttOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestLinearTicks(t *testing.T) {
	ticks := linearTicks{target: 5}.Ticks(0, 10)
	var labels []string
	for _, tk := range ticks {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if strings.Join(labels, " ") != "0 2 4 6 8 10" {
		t.Errorf("labels %v", labels)
	}
	ticks = linearTicks{target: 4}.Ticks(0, 0.07)
	if ticks[0].Label != "0.00" || ticks[2].Label != "0.02" {
		t.Errorf("small range ticks %v", ticks)
	}
}

// TestChartsLook writes example charts for a person to look at when
// VDPP_CHART_DIR is set (the charts in the report were checked this way).
func TestChartsLook(t *testing.T) {
	dir := os.Getenv("VDPP_CHART_DIR")
	if dir == "" {
		t.Skip("VDPP_CHART_DIR not set")
	}
	pred := handPipeline("sim", 0, 1)
	meas := handPipeline("exec", 0, 1.04)
	if err := timeline.ValidateSteps(pred, 28); err != nil {
		t.Fatal(err)
	}
	if err := WriteGanttPNG(filepath.Join(dir, "gantt.png"), []GanttPanel{{"predicted", pred}, {"measured", meas}}, GanttOptions{}); err != nil {
		t.Fatal(err)
	}
	arr := handPipeline("sim", 6_000_000_000, 1)
	if err := WriteGanttPNG(filepath.Join(dir, "gantt_arrivals.png"), []GanttPanel{{"predicted, arrivals every 6 s", arr}}, GanttOptions{}); err != nil {
		t.Fatal(err)
	}
	dense := &timeline.Timeline{Meta: timeline.Meta{Plan: "dense", Source: "sim", Devices: []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6"}}}
	for i := 0; i < 400; i++ {
		for st := 0; st < 7; st++ {
			start := int64(i+st) * 40_000_000
			dense.AddSpan(timeline.Span{Device: dense.Meta.Devices[st], Kind: timeline.KindStep, Samples: []int{i}, Stage: st,
				FirstStep: 4 * st, LastStep: 4*st + 3, Start: start, End: start + 38_000_000, Warmup: i == 0})
		}
	}
	if err := WriteGanttPNG(filepath.Join(dir, "gantt_dense.png"), []GanttPanel{{"400 samples on 7 devices", dense}}, GanttOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteScalingPNG(filepath.Join(dir, "scaling.png"), "svd-14f-320x576 on RTX A5000 (simulated)", exampleScaling()); err != nil {
		t.Fatal(err)
	}
}
