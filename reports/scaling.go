package reports

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ScalingPoint is one run of a layout on a number of devices.
type ScalingPoint struct {
	Devices       int
	Throughput    float64 // steady-state samples per second, or overall when Overall
	FirstLatencyS float64 // first-sample latency in seconds
	// Overall says that Throughput is the overall throughput, samples /
	// makespan: the sweep had too few samples for a steady state.
	Overall bool
}

// ScalingSeries is one layout (pipeline, data parallel, a hybrid) across
// device counts.
type ScalingSeries struct {
	Name   string
	Points []ScalingPoint
}

// Series styles, in order: Okabe–Ito colours and distinct glyphs, so the
// series stay apart in grey print too.
var (
	seriesColours = []color.Color{
		color.RGBA{0x00, 0x72, 0xB2, 0xff}, // blue
		color.RGBA{0xD5, 0x5E, 0x00, 0xff}, // vermillion
		color.RGBA{0x00, 0x9E, 0x73, 0xff}, // bluish green
		color.RGBA{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
		color.RGBA{0xE6, 0x9F, 0x00, 0xff}, // orange
		color.RGBA{0x56, 0xB4, 0xE9, 0xff}, // sky blue
		color.RGBA{0x00, 0x00, 0x00, 0xff}, // black
	}
	seriesGlyphs = []draw.GlyphDrawer{
		draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{},
		draw.SquareGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
	}
	seriesDashes = [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}, {vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}}
)

// glyphRadius shrinks with the series index, so that where series
// coincide (data parallel and pipeline on one device) every marker shows.
func glyphRadius(i int) vg.Length {
	return vg.Points(math.Max(3, 7-1.5*float64(i)))
}

// ScalingData checks the series and returns them with their points sorted
// by device count, plus the sorted union of the device counts (the x
// ticks). Each series needs a unique non-empty name and at least one point;
// device counts must be positive and unique within a series, and the
// numbers finite and not negative.
func ScalingData(series []ScalingSeries) ([]ScalingSeries, []int, error) {
	if len(series) == 0 {
		return nil, nil, errors.New("reports: scaling: no series")
	}
	var errs []error
	names := map[string]bool{}
	devs := map[int]bool{}
	out := make([]ScalingSeries, len(series))
	for i, s := range series {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("reports: scaling: series %d: empty name", i))
		} else if names[s.Name] {
			errs = append(errs, fmt.Errorf("reports: scaling: series %q: name used twice", s.Name))
		}
		names[s.Name] = true
		if len(s.Points) == 0 {
			errs = append(errs, fmt.Errorf("reports: scaling: series %q: no points", s.Name))
		}
		pts := append([]ScalingPoint(nil), s.Points...)
		sort.SliceStable(pts, func(a, b int) bool { return pts[a].Devices < pts[b].Devices })
		for j, p := range pts {
			if p.Devices <= 0 {
				errs = append(errs, fmt.Errorf("reports: scaling: series %q: device count %d must be positive", s.Name, p.Devices))
			}
			if j > 0 && pts[j-1].Devices == p.Devices {
				errs = append(errs, fmt.Errorf("reports: scaling: series %q: two points for %d devices", s.Name, p.Devices))
			}
			for _, v := range []struct {
				name string
				x    float64
			}{{"throughput", p.Throughput}, {"first-sample latency", p.FirstLatencyS}} {
				if math.IsNaN(v.x) || math.IsInf(v.x, 0) || v.x < 0 {
					errs = append(errs, fmt.Errorf("reports: scaling: series %q: %d devices: %s %v must be a finite number ≥ 0", s.Name, p.Devices, v.name, v.x))
				}
			}
			devs[p.Devices] = true
		}
		out[i] = ScalingSeries{Name: s.Name, Points: pts}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	ticks := make([]int, 0, len(devs))
	for d := range devs {
		ticks = append(ticks, d)
	}
	sort.Ints(ticks)
	return out, ticks, nil
}

// deviceTicks labels the device counts that occur.
type deviceTicks []int

// Ticks implements plot.Ticker.
func (d deviceTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, n := range d {
		if float64(n) >= min && float64(n) <= max {
			out = append(out, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
		}
	}
	return out
}

func scalingPanel(title, ylabel string, series []ScalingSeries, ticks []int, y func(ScalingPoint) float64) (*plot.Plot, error) {
	p := plot.New()
	styleFonts(p)
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(13)
	p.X.Label.Text = "devices"
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = deviceTicks(ticks)
	p.Y.Tick.Marker = linearTicks{target: 6}
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal.Color = color.Gray{0xdd}
	p.Add(grid)
	ymax := 0.0
	var markers []plot.Plotter // drawn after every line, so no line hides a marker
	for i, s := range series {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j].X, xys[j].Y = float64(pt.Devices), y(pt)
			ymax = math.Max(ymax, xys[j].Y)
		}
		line, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("reports: scaling: series %q: %w", s.Name, err)
		}
		col := seriesColours[i%len(seriesColours)]
		line.Color = col
		line.Width = vg.Points(2)
		line.Dashes = seriesDashes[i%len(seriesDashes)]
		pts.Color = col
		pts.Shape = seriesGlyphs[i%len(seriesGlyphs)]
		pts.Radius = glyphRadius(i)
		p.Add(line)
		markers = append(markers, pts)
	}
	p.Add(markers...)
	lo, hi := float64(ticks[0]), float64(ticks[len(ticks)-1])
	pad := math.Max(0.3, 0.04*(hi-lo))
	p.X.Min, p.X.Max = lo-pad, hi+pad
	p.Y.Min = 0
	if ymax <= 0 {
		ymax = 1
	}
	p.Y.Max = ymax * 1.12
	return p, nil
}

// WriteScaling draws the scaling chart as a PNG on w: on the left,
// steady-state throughput (samples/s) against the device count; on the
// right, first-sample latency (s) against the device count; one line with
// markers per series, and a legend below both. Both y axes start at 0.
func WriteScaling(w io.Writer, title string, series []ScalingSeries) error {
	series, ticks, err := ScalingData(series)
	if err != nil {
		return err
	}
	name := "steady-state throughput"
	for _, sr := range series {
		for _, p := range sr.Points {
			if p.Overall {
				name = "overall throughput (samples / makespan)"
			}
		}
	}
	left, err := scalingPanel(name, "throughput (samples/s)", series, ticks, func(p ScalingPoint) float64 { return p.Throughput })
	if err != nil {
		return err
	}
	right, err := scalingPanel("first-sample latency", "first-sample latency (s)", series, ticks, func(p ScalingPoint) float64 { return p.FirstLatencyS })
	if err != nil {
		return err
	}
	const widthPx, heightPx, dpi = 1400, 560, 96
	px := func(n float64) vg.Length { return vg.Length(n * 72 / dpi) }
	img := vgimg.NewWith(vgimg.UseWH(px(widthPx), px(heightPx)), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	titleH, legendH := px(40), px(44)
	hdlr := left.TextHandler
	if title != "" {
		sty := text.Style{Color: color.Black, Font: sans(16), XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: hdlr}
		dc.FillText(sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - titleH/2}, title)
	}
	area := dc
	area.Max.Y -= titleH
	area.Min.Y += legendH
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadLeft: 8, PadRight: 14, PadX: 36, PadTop: 4, PadBottom: 4}
	cs := plot.Align([][]*plot.Plot{{left, right}}, tiles, area)
	left.Draw(cs[0][0])
	right.Draw(cs[0][1])
	legend := dc
	legend.Max.Y = dc.Min.Y + legendH
	drawSeriesLegend(legend, series, hdlr)
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("reports: scaling: encode png: %w", err)
	}
	return nil
}

// drawSeriesLegend draws a row of line-and-marker swatches, centred in c.
func drawSeriesLegend(c draw.Canvas, series []ScalingSeries, hdlr text.Handler) {
	sty := text.Style{Color: color.Black, Font: sans(12), XAlign: draw.XLeft, YAlign: draw.YCenter, Handler: hdlr}
	const sw, gap, pad = vg.Length(30), vg.Length(6), vg.Length(24)
	var total vg.Length
	for i, s := range series {
		total += sw + gap + sty.Width(s.Name)
		if i > 0 {
			total += pad
		}
	}
	x := (c.Min.X+c.Max.X)/2 - total/2
	y := (c.Min.Y + c.Max.Y) / 2
	for i, s := range series {
		col := seriesColours[i%len(seriesColours)]
		c.StrokeLine2(draw.LineStyle{Color: col, Width: vg.Points(2), Dashes: seriesDashes[i%len(seriesDashes)]}, x, y, x+sw, y)
		c.DrawGlyph(draw.GlyphStyle{Color: col, Radius: glyphRadius(i), Shape: seriesGlyphs[i%len(seriesGlyphs)]}, vg.Point{X: x + sw/2, Y: y})
		x += sw + gap
		c.FillText(sty, vg.Point{X: x, Y: y}, s.Name)
		x += sty.Width(s.Name) + pad
	}
}

// WriteScalingPNG writes the scaling chart (see WriteScaling) to path,
// atomically.
func WriteScalingPNG(path string, title string, series []ScalingSeries) error {
	return writeFile(path, "scaling", func(w io.Writer) error { return WriteScaling(w, title, series) })
}
