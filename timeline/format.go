package timeline

import (
	"math"
	"strconv"
	"strings"
)

// Numbers in reports and CLI tables are written with three significant
// digits and their unit, by the functions below, so that a prediction and
// a measurement read the same way everywhere. The column table (Columns)
// formats with them.

// sig3 formats v with three significant digits, without an exponent
// (1234 → "1234", 0.012345 → "0.0123"), and no "-0".
func sig3(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 0):
		if v > 0 {
			return "∞"
		}
		return "−∞"
	case v == 0:
		return "0"
	}
	exp := int(math.Floor(math.Log10(math.Abs(v))))
	// Rounding can carry into the next decade (9.996 → 10.0).
	if r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64); r != 0 {
		exp = int(math.Floor(math.Log10(math.Abs(r))))
	}
	dec := max(0, 2-exp)
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Trim(s, "-0.") == "" {
		return "0"
	}
	return s
}

// FormatSeconds formats a duration in seconds with three significant
// digits and a unit chosen from s, ms, µs and ns: 10.3 s, 812 ms, 45.0 µs.
func FormatSeconds(s float64) string {
	a := math.Abs(s)
	switch {
	case math.IsNaN(s):
		return "n/a"
	case a == 0:
		return "0 s"
	case a >= 0.9995:
		return sig3(s) + " s"
	case a >= 0.9995e-3:
		return sig3(s*1e3) + " ms"
	case a >= 0.9995e-6:
		return sig3(s*1e6) + " µs"
	default:
		return sig3(s*1e9) + " ns"
	}
}

// FormatNS formats integer nanoseconds as FormatSeconds does.
func FormatNS(ns int64) string { return FormatSeconds(float64(ns) / 1e9) }

// FormatRate formats a throughput in samples per second: "0.868 samples/s".
// A rate of 0 is "n/a": the metric has no steady state to measure (no
// samples, or all done at the same instant).
func FormatRate(perS float64) string {
	if perS == 0 || math.IsNaN(perS) {
		return "n/a"
	}
	return sig3(perS) + " samples/s"
}

// FormatPercent formats a fraction (0.873) as a percentage: "87.3%".
func FormatPercent(frac float64) string { return sig3(frac*100) + "%" }

// FormatRatio formats a ratio: "1.15×".
func FormatRatio(r float64) string { return sig3(r) + "×" }

// FormatSignedPercent formats a signed relative error (predicted − measured)
// / measured as a percentage with its sign: "+2.31%", "−0.512%", "0%".
func FormatSignedPercent(frac float64) string {
	if math.IsNaN(frac) {
		return "n/a"
	}
	return signed(sig3(frac*100)) + "%"
}

// FormatSignedPP formats a signed difference of two fractions in
// percentage points: "+1.20 pp".
func FormatSignedPP(diff float64) string {
	if math.IsNaN(diff) {
		return "n/a"
	}
	return signed(sig3(diff*100)) + " pp"
}

// signed puts an explicit sign (+ or the minus sign −) on a formatted number.
func signed(s string) string {
	switch {
	case s == "0" || s == "n/a":
		return s
	case strings.HasPrefix(s, "-"):
		return "−" + s[1:]
	case strings.HasPrefix(s, "−"):
		return s
	default:
		return "+" + s
	}
}

// RelError is the signed relative error (predicted − measured) / measured;
// NaN when measured is 0 (unless both are 0, which is no error).
func RelError(predicted, measured float64) float64 {
	if measured == 0 {
		if predicted == 0 {
			return 0
		}
		return math.NaN()
	}
	return (predicted - measured) / measured
}
