package exec

import (
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

// Statistics of the profile's measurements.

// msOf is d in milliseconds.
func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

// round3 rounds v to 3 decimals.
func round3(v float64) float64 {
	if v == 0 {
		return 0
	}
	return float64(int64(v*1e3+0.5)) / 1e3
}

// sig4 rounds v to 4 significant digits.
func sig4(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	scale := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

// relStd is the standard deviation of v relative to its mean (0 for fewer
// than two values).
func relStd(v []float64) float64 {
	m := mean(v)
	if len(v) < 2 || m <= 0 {
		return 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss/float64(len(v)-1)) / m
}

// mean is the mean of v (0 when empty).
func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// median is the median of v (0 when empty).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is the least and the greatest of v.
func spread(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	return slices.Min(v), slices.Max(v)
}

// rss is the process's resident set size in bytes (0 where unknown).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * int64(os.Getpagesize())
}

// round3s rounds each of v to three decimals (nil stays nil).
func round3s(v []float64) []float64 {
	if len(v) == 0 {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = round3(x)
	}
	return out
}

// medianCalls is, call by call, the median over the lists of the calls
// that list i has: as long as the longest list.
func medianCalls(lists [][]float64) []float64 {
	var out []float64
	for i := 0; ; i++ {
		var at []float64
		for _, l := range lists {
			if i < len(l) {
				at = append(at, l[i])
			}
		}
		if len(at) == 0 {
			return out
		}
		out = append(out, median(at))
	}
}
