package reports

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"

	"github.com/vdpp/vdpp/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/vdpp/vdpp/timeline"
)

// Colours of span kinds, from the Okabe–Ito palette (readable with the
// common colour-vision deficiencies). Warm-up steps are a darker blue than
// steady steps and carry a dark outline.
var (
	colEncode = color.RGBA{0xCC, 0x79, 0xA7, 0xff} // reddish purple
	colStep   = color.RGBA{0x56, 0xB4, 0xE9, 0xff} // sky blue
	colWarmup = color.RGBA{0x00, 0x4B, 0x87, 0xff} // dark blue
	colDecode = color.RGBA{0x00, 0x9E, 0x73, 0xff} // bluish green
	colSend   = color.RGBA{0xE6, 0x9F, 0x00, 0xff} // orange
	colRecv   = color.RGBA{0xD5, 0x5E, 0x00, 0xff} // vermillion
	colWait   = color.RGBA{0xBB, 0xBB, 0xBB, 0xff} // grey
	colHost   = color.RGBA{0x55, 0x55, 0x55, 0xff} // dark grey
	colEdge   = color.RGBA{0xff, 0xff, 0xff, 0xff} // separates back-to-back spans
	colWarmEd = color.RGBA{0x00, 0x00, 0x00, 0xff} // warm-up outline
)

// Vertical layout of a lane around its centre y (lanes are 1 apart): the
// compute bar in the middle, send just above it and receive just below.
const (
	computeHalf = 0.28
	xferGap     = 0.03
	xferHeight  = 0.1
)

// GanttPanel is one timeline in a Gantt chart. Title says what it is
// ("predicted", "measured"); the plan name and source are appended.
type GanttPanel struct {
	Title string
	TL    *timeline.Timeline
}

// GanttOptions size a Gantt chart. Zero values pick defaults.
type GanttOptions struct {
	WidthPx  int // image width in pixels (default 1600)
	HeightPx int // image height in pixels (default: from the number of lanes)
	DPI      int // dots per inch, which scales the text (default 96)
	// MaxLabels caps how many sample labels are drawn per panel (default
	// 300); the widest spans get them.
	MaxLabels int
	// EndS fixes the end of the time axis in seconds; 0 means the latest
	// span end or sample completion over all panels.
	EndS float64
}

func (o GanttOptions) withDefaults(panels []GanttPanel) GanttOptions {
	if o.WidthPx <= 0 {
		o.WidthPx = 1600
	}
	if o.DPI <= 0 {
		o.DPI = 96
	}
	if o.MaxLabels <= 0 {
		o.MaxLabels = 300
	}
	if o.HeightPx <= 0 {
		h := legendPx
		for _, p := range panels {
			h += 120 + 64*max(1, len(timeline.DeviceOrder(p.TL)))
		}
		o.HeightPx = h
	}
	return o
}

const legendPx = 44

// GanttBar is one rectangle of a Gantt chart, in data coordinates: X in
// seconds from the run's start, Y in lane units (lane i of n is centred on
// y = n−1−i, so the first device is on top).
type GanttBar struct {
	Lane   int // index into GanttData.Lanes
	Span   int // index of the span in the timeline
	Kind   timeline.Kind
	Warmup bool
	X0, X1 float64
	Y0, Y1 float64
	Label  string // sample ids for compute bars; "" for transfers
	// Long is Label with the step range of a step span ("s3 · 10-18"),
	// drawn instead of Label where it fits.
	Long string
}

// GanttData is what a Gantt panel draws: lanes top to bottom, and bars.
type GanttData struct {
	Lanes []string
	Bars  []GanttBar
	EndS  float64 // latest span end or sample completion, in seconds
}

// GanttLayout computes the bars of one timeline's Gantt panel. It is the
// data behind the picture, and what the tests check.
func GanttLayout(tl *timeline.Timeline) GanttData {
	lanes := timeline.DeviceOrder(tl)
	idx := make(map[string]int, len(lanes))
	for i, d := range lanes {
		idx[d] = i
	}
	n := len(lanes)
	d := GanttData{Lanes: lanes, Bars: make([]GanttBar, 0, len(tl.Spans))}
	var end int64
	for i := range tl.Spans {
		s := &tl.Spans[i]
		lane := idx[s.Device]
		y := float64(n - 1 - lane)
		b := GanttBar{
			Lane: lane, Span: i, Kind: s.Kind, Warmup: s.Warmup,
			X0: timeline.Seconds(s.Start), X1: timeline.Seconds(s.End),
		}
		switch timeline.StreamOf(s.Kind) {
		case timeline.StreamSend:
			b.Y0 = y + computeHalf + xferGap
			b.Y1 = b.Y0 + xferHeight
		case timeline.StreamRecv:
			b.Y1 = y - computeHalf - xferGap
			b.Y0 = b.Y1 - xferHeight
		default:
			b.Y0, b.Y1 = y-computeHalf, y+computeHalf
			if s.Kind != timeline.KindWait {
				b.Label = timeline.SampleLabel(s.Samples)
				b.Long = b.Label
				if s.Kind == timeline.KindStep && b.Label != "" {
					b.Long = fmt.Sprintf("%s · steps %d-%d", b.Label, s.FirstStep, s.LastStep)
				}
			}
		}
		d.Bars = append(d.Bars, b)
		end = max(end, s.End)
	}
	for _, s := range tl.Samples {
		end = max(end, s.Done)
	}
	d.EndS = timeline.Seconds(end)
	return d
}

// barColour is the fill of a bar.
func barColour(k timeline.Kind, warmup bool) color.Color {
	switch k {
	case timeline.KindEncode:
		return colEncode
	case timeline.KindStep:
		if warmup {
			return colWarmup
		}
		return colStep
	case timeline.KindDecode:
		return colDecode
	case timeline.KindSend:
		return colSend
	case timeline.KindRecv:
		return colRecv
	case timeline.KindHost:
		return colHost
	default:
		return colWait
	}
}

// labelColour is black on light fills and white on dark ones.
func labelColour(fill color.Color) color.Color {
	r, g, b, _ := fill.RGBA()
	lum := 0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)
	if lum < 0.45*0xffff {
		return color.White
	}
	return color.Black
}

// ganttPlotter fills one rectangle per bar and writes labels where they fit.
type ganttPlotter struct {
	data      GanttData
	maxLabels int
	labelFont font.Font
	drawn     int // labels drawn by the last Plot call
}

// DataRange implements plot.DataRanger.
func (g *ganttPlotter) DataRange() (xmin, xmax, ymin, ymax float64) {
	return 0, g.data.EndS, -0.5, float64(len(g.data.Lanes)) - 0.5
}

func rect(x0, y0, x1, y1 vg.Length) []vg.Point {
	return []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

// Plot implements plot.Plotter.
func (g *ganttPlotter) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	edge := draw.LineStyle{Color: colEdge, Width: vg.Points(0.6)}
	warm := draw.LineStyle{Color: colWarmEd, Width: vg.Points(1.2)}
	sty := text.Style{
		Font: g.labelFont, XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: plt.TextHandler,
	}
	type label struct {
		pt  vg.Point
		w   vg.Length
		txt string
		col color.Color
	}
	var labels []label
	textH := sty.Height("0")
	for _, b := range g.data.Bars {
		x0, x1 := trX(b.X0), trX(b.X1)
		if x1-x0 < 0.5 { // keep very short spans visible
			x1 = x0 + 0.5
		}
		y0, y1 := trY(b.Y0), trY(b.Y1)
		fill := barColour(b.Kind, b.Warmup)
		pts := c.ClipPolygonXY(rect(x0, y0, x1, y1))
		if len(pts) == 0 {
			continue
		}
		c.FillPolygon(fill, pts)
		switch {
		case b.Warmup:
			c.StrokeLines(warm, c.ClipLinesXY(append(rect(x0, y0, x1, y1), vg.Point{X: x0, Y: y0}))...)
		case x1-x0 >= 3:
			c.StrokeLines(edge, c.ClipLinesXY(append(rect(x0, y0, x1, y1), vg.Point{X: x0, Y: y0}))...)
		}
		if b.Label == "" {
			continue
		}
		txt := b.Long
		if sty.Width(txt)+6 > x1-x0 {
			txt = b.Label
		}
		if sty.Width(txt)+4 > x1-x0 || textH+2 > y1-y0 {
			continue
		}
		labels = append(labels, label{pt: vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, w: x1 - x0, txt: txt, col: labelColour(fill)})
	}
	if len(labels) > g.maxLabels {
		sort.SliceStable(labels, func(i, j int) bool { return labels[i].w > labels[j].w })
		labels = labels[:g.maxLabels]
	}
	for _, l := range labels {
		sty.Color = l.col
		c.FillText(sty, l.pt, l.txt)
	}
	g.drawn = len(labels)
}

// panelTitle is the title of a panel: "Title: plan (source)".
func panelTitle(p GanttPanel) string {
	name := p.TL.Meta.Plan
	if name == "" {
		name = "unnamed plan"
	}
	if p.TL.Meta.Source != "" {
		name += " (" + p.TL.Meta.Source + ")"
	}
	if p.Title == "" {
		return name
	}
	return p.Title + ": " + name
}

// legendEntry is one swatch of the legend.
type legendEntry struct {
	name string
	col  color.Color
	warm bool
}

// legendEntries lists the kinds that occur in the panels, in a fixed order.
func legendEntries(data []GanttData) []legendEntry {
	has := map[string]bool{}
	for _, d := range data {
		for _, b := range d.Bars {
			k := string(b.Kind)
			if b.Kind == timeline.KindStep && b.Warmup {
				k = "warmup"
			}
			has[k] = true
		}
	}
	all := []legendEntry{
		{"encode", colEncode, false},
		{"steps", colStep, false},
		{"steps (warm-up)", colWarmup, true},
		{"decode", colDecode, false},
		{"send (above lane)", colSend, false},
		{"receive (below lane)", colRecv, false},
		{"wait", colWait, false},
		{"host work", colHost, false},
	}
	keys := []string{"encode", "step", "warmup", "decode", "send", "recv", "wait", "host"}
	var out []legendEntry
	for i, e := range all {
		if has[keys[i]] {
			out = append(out, e)
		}
	}
	return out
}

// drawLegend draws the swatches in a row, centred in c.
func drawLegend(c draw.Canvas, entries []legendEntry, hdlr text.Handler) {
	sty := text.Style{Color: color.Black, Font: sans(11), XAlign: draw.XLeft, YAlign: draw.YCenter, Handler: hdlr}
	const sw, sh, gap, pad = vg.Length(18), vg.Length(11), vg.Length(5), vg.Length(18)
	var total vg.Length
	for i, e := range entries {
		total += sw + gap + sty.Width(e.name)
		if i > 0 {
			total += pad
		}
	}
	x := (c.Min.X+c.Max.X)/2 - total/2
	y := (c.Min.Y + c.Max.Y) / 2
	for _, e := range entries {
		c.FillPolygon(e.col, rect(x, y-sh/2, x+sw, y+sh/2))
		if e.warm {
			c.StrokeLines(draw.LineStyle{Color: colWarmEd, Width: vg.Points(1.2)}, append(rect(x, y-sh/2, x+sw, y+sh/2), vg.Point{X: x, Y: y - sh/2}))
		}
		x += sw + gap
		c.FillText(sty, vg.Point{X: x, Y: y}, e.name)
		x += sty.Width(e.name) + pad
	}
}

// sharedEnd is the end of the time axis every panel uses: fixed when
// fixed > 0, else the latest end over all panels (1 s when all are empty).
func sharedEnd(data []GanttData, fixed float64) float64 {
	if fixed > 0 {
		return fixed
	}
	end := 0.0
	for _, d := range data {
		end = math.Max(end, d.EndS)
	}
	if end <= 0 {
		return 1
	}
	return end
}

// WriteGantt draws the panels, stacked top to bottom on one time axis, as a
// PNG on w.
func WriteGantt(w io.Writer, panels []GanttPanel, opts GanttOptions) error {
	if len(panels) == 0 {
		return errors.New("reports: gantt: no panels")
	}
	for i, p := range panels {
		if p.TL == nil {
			return fmt.Errorf("reports: gantt: panel %d (%q) has no timeline", i, p.Title)
		}
	}
	opts = opts.withDefaults(panels)
	data := make([]GanttData, len(panels))
	for i, p := range panels {
		data[i] = GanttLayout(p.TL)
	}
	end := sharedEnd(data, opts.EndS)
	plots := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		plt := plot.New()
		styleFonts(plt)
		plt.Title.Text = panelTitle(p)
		plt.X.Label.Text = "time since the run's start (s)"
		plt.X.Tick.Marker = linearTicks{target: 16}
		lanes := data[i].Lanes
		if len(lanes) == 0 {
			lanes = []string{"(no devices)"}
		}
		rev := make([]string, len(lanes))
		for j, l := range lanes {
			rev[len(lanes)-1-j] = l
		}
		grid := plotter.NewGrid()
		grid.Horizontal.Color = nil
		grid.Vertical.Color = color.Gray{0xdd}
		plt.Add(grid)
		plt.Add(&ganttPlotter{data: data[i], maxLabels: opts.MaxLabels, labelFont: sans(10)})
		plt.NominalY(rev...)
		plt.X.Min, plt.X.Max = 0, end
		plt.Y.Min, plt.Y.Max = -0.5, float64(len(lanes))-0.5
		plots[i] = []*plot.Plot{plt}
	}
	wPt := vg.Length(float64(opts.WidthPx) * 72 / float64(opts.DPI))
	hPt := vg.Length(float64(opts.HeightPx) * 72 / float64(opts.DPI))
	img := vgimg.NewWith(vgimg.UseWH(wPt, hPt), vgimg.UseDPI(opts.DPI), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	legendH := vg.Length(float64(legendPx) * 72 / float64(opts.DPI))
	legendArea := dc
	legendArea.Max.Y = dc.Min.Y + legendH
	chartArea := dc
	chartArea.Min.Y = dc.Min.Y + legendH
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: 6, PadBottom: 2, PadLeft: 6, PadRight: 14, PadY: 10}
	canvases := plot.Align(plots, tiles, chartArea)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	drawLegend(legendArea, legendEntries(data), plots[0][0].TextHandler)
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("reports: gantt: encode png: %w", err)
	}
	return nil
}

// WriteGanttPNG writes the Gantt chart of the panels to path as a PNG,
// atomically (temporary file and rename). All panels share one time axis
// from 0 to the latest end, so a prediction and a measurement of the same
// plan compare at a glance.
func WriteGanttPNG(path string, panels []GanttPanel, opts GanttOptions) error {
	return writeFile(path, "gantt", func(w io.Writer) error { return WriteGantt(w, panels, opts) })
}

// writeFile renders into memory and writes the result to path atomically,
// so that a failed rendering leaves no file; what names the output in
// messages.
func writeFile(path, what string, render func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return err
	}
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return fmt.Errorf("reports: %s: %w", what, err)
	}
	return nil
}
