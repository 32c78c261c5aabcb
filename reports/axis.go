package reports

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
)

// sansFont is the typeface of every chart: Liberation Sans, compiled into
// gonum/plot, so nothing is downloaded or looked up on the system.
var sansFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

func sans(size float64) font.Font { return font.From(sansFont, vg.Points(size)) }

// styleFonts sets the fonts of a plot's title, axis labels and ticks.
func styleFonts(p *plot.Plot) {
	p.Title.TextStyle.Font = sans(14)
	p.X.Label.TextStyle.Font = sans(12)
	p.Y.Label.TextStyle.Font = sans(12)
	p.X.Tick.Label.Font = sans(11)
	p.Y.Tick.Label.Font = sans(11)
	p.Legend.TextStyle.Font = sans(11)
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts
// [0, span] into about target intervals.
func niceStep(span float64, target int) float64 {
	if span <= 0 || target <= 0 {
		return 1
	}
	raw := span / float64(target)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// linearTicks labels about target major ticks on [min, max] at a nice step,
// with one unlabelled minor tick between majors.
type linearTicks struct{ target int }

// Ticks implements plot.Ticker.
func (t linearTicks) Ticks(min, max float64) []plot.Tick {
	step := niceStep(max-min, t.target)
	prec := 0
	if step < 1 {
		prec = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	var ticks []plot.Tick
	first := math.Ceil(min/step-1e-9) * step
	for i := 0; ; i++ {
		v := first + float64(i)*step
		if v > max+step*1e-9 {
			break
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', prec, 64)})
		if mid := v + step/2; mid <= max {
			ticks = append(ticks, plot.Tick{Value: mid})
		}
	}
	return ticks
}
