package reports

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ParetoPoint is one simulated layout of a search: its throughput and
// first-sample latency, whether it is on the Pareto frontier (no other
// point has both a higher throughput and a lower latency), and whether it
// won the search.
type ParetoPoint struct {
	Label         string
	Throughput    float64 // samples/s
	FirstLatencyS float64 // seconds
	Frontier      bool
	Best          bool
}

// checkPareto rejects an empty set and numbers that cannot be drawn.
func checkPareto(pts []ParetoPoint) error {
	if len(pts) == 0 {
		return errors.New("reports: pareto: no points")
	}
	for _, p := range pts {
		for _, v := range []float64{p.Throughput, p.FirstLatencyS} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("reports: pareto: %s: %v is not a finite number ≥ 0", p.Label, v)
			}
		}
	}
	return nil
}

// WritePareto draws throughput against first-sample latency as a PNG on
// w: every point in grey, the frontier in colour joined by a line and
// labelled, the winner ringed. Up and to the left is better.
func WritePareto(w io.Writer, title string, pts []ParetoPoint) error {
	if err := checkPareto(pts); err != nil {
		return err
	}
	p := plot.New()
	styleFonts(p)
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(14)
	p.Title.Padding = vg.Points(10)
	p.X.Label.Text = "first-sample latency (s)"
	p.Y.Label.Text = "steady-state throughput (samples/s)"
	p.X.Tick.Marker = linearTicks{target: 7}
	p.Y.Tick.Marker = linearTicks{target: 6}
	grid := plotter.NewGrid()
	grid.Horizontal.Color, grid.Vertical.Color = color.Gray{0xdd}, color.Gray{0xdd}
	p.Add(grid)
	var all, front, best plotter.XYs
	var labels []string
	xmax, ymax := 0.0, 0.0
	for _, pt := range pts {
		xy := plotter.XY{X: pt.FirstLatencyS, Y: pt.Throughput}
		xmax, ymax = math.Max(xmax, xy.X), math.Max(ymax, xy.Y)
		all = append(all, xy)
		if pt.Frontier {
			front = append(front, xy)
			labels = append(labels, pt.Label)
		}
		if pt.Best {
			best = append(best, xy)
		}
	}
	if err := addPareto(p, all, front, best, labels); err != nil {
		return err
	}
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max, p.Y.Max = math.Max(xmax, 1e-9)*1.08, math.Max(ymax, 1e-9)*1.15
	const widthPx, heightPx, dpi = 1200, 800, 96
	px := func(n float64) vg.Length { return vg.Length(n * 72 / dpi) }
	img := vgimg.NewWith(vgimg.UseWH(px(widthPx), px(heightPx)), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(img))
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("reports: pareto: encode png: %w", err)
	}
	return nil
}

// addPareto adds the point layers: every candidate, the frontier line
// with its labels, and the winner's ring.
func addPareto(p *plot.Plot, all, front, best plotter.XYs, labels []string) error {
	sc, err := plotter.NewScatter(all)
	if err != nil {
		return fmt.Errorf("reports: pareto: %w", err)
	}
	sc.Color, sc.Shape, sc.Radius = color.Gray{0x99}, draw.CircleGlyph{}, vg.Points(2.5)
	p.Add(sc)
	if len(front) > 0 {
		line, pts, err := plotter.NewLinePoints(front)
		if err != nil {
			return fmt.Errorf("reports: pareto: %w", err)
		}
		line.Color, line.Width = seriesColours[0], vg.Points(1.5)
		pts.Color, pts.Shape, pts.Radius = seriesColours[0], draw.CircleGlyph{}, vg.Points(4)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: front, Labels: labels})
		if err != nil {
			return fmt.Errorf("reports: pareto: %w", err)
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].Font = sans(10)
		}
		lb.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(4)}
		p.Add(line, pts, lb)
	}
	if len(best) > 0 {
		ring, err := plotter.NewScatter(best)
		if err != nil {
			return fmt.Errorf("reports: pareto: %w", err)
		}
		ring.Color, ring.Shape, ring.Radius = seriesColours[1], draw.RingGlyph{}, vg.Points(9)
		p.Add(ring)
	}
	return nil
}

// WriteParetoPNG writes the chart (see WritePareto) to path, atomically.
func WriteParetoPNG(path, title string, pts []ParetoPoint) error {
	return writeFile(path, "pareto", func(w io.Writer) error { return WritePareto(w, title, pts) })
}
