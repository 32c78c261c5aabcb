package plan

import (
	"math"
	"slices"
	"testing"
)

// SplitWarm takes the leading calls slower than 1.1 × the median of all
// but the first as the warm-up, and the mean of the rest as the steady
// time; SplitWarmCalls gives a micro-batch's warm-up back to WorkNS whole.
func TestSplitWarm(t *testing.T) {
	cases := []struct {
		calls, warm []float64
		steady      float64
	}{
		{nil, nil, 0},
		{[]float64{5}, nil, 5},
		{[]float64{10, 10, 10}, nil, 10},
		{[]float64{47, 43, 20, 16, 13, 13, 13, 11}, []float64{47, 43, 20, 16}, 12.5},
		{[]float64{9, 10, 10, 10}, nil, 9.75},              // a fast first call is a steady one
		{[]float64{30, 10, 30, 10, 10}, []float64{30}, 15}, // only the leading calls
		{[]float64{100, 1}, []float64{100}, 1},             // never every call
	}
	for _, c := range cases {
		w, s := SplitWarm(c.calls)
		if !slices.Equal(w, c.warm) || math.Abs(s-c.steady) > 1e-12 {
			t.Errorf("SplitWarm(%v) = %v, %v; want %v, %v", c.calls, w, s, c.warm, c.steady)
		}
	}
	// Micro-batches of 2 with a steady 4 ms a sample; the first call
	// carries 20 ms of warm-up: one sample's time with it is 24 ms.
	w, s := SplitWarmCalls([]float64{28, 8, 8, 8}, []int{2, 2, 2, 2})
	if !slices.Equal(w, []float64{24}) || s != 4 {
		t.Errorf("SplitWarmCalls = %v, %v; want [24], 4", w, s)
	}
	// An outlier among the later calls raises their mean above a warm-up
	// call's share: the warm-up call is never below the steady time.
	w, s = SplitWarmCalls([]float64{4.8, 4, 4, 4, 40}, []int{4, 4, 4, 4, 4})
	if len(w) != 1 || w[0] < s {
		t.Errorf("SplitWarmCalls with an outlier = %v, %v; want one call of at least the steady time", w, s)
	}
}
