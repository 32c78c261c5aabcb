package sim

import (
	"math/rand/v2"
	"testing"
)

// TestRunQueue checks the run-length release queue against a plain slice
// under random pushes, pops and moves, with many equal times (batch) and
// distinct ones (poisson).
func TestRunQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var q, dst runQueue
	var naive, naiveDst []int64
	var clock int64
	for op := range 20000 {
		switch r := rng.IntN(10); {
		case r < 5:
			clock += int64(rng.IntN(3)) // often the same time
			q.push(clock)
			naive = append(naive, clock)
		case r < 7 && len(naive) > 0:
			if got := q.pop(); got != naive[0] {
				t.Fatalf("op %d: pop %d, want %d", op, got, naive[0])
			}
			naive = naive[1:]
		case len(naive) > 0:
			k := 1 + rng.IntN(len(naive))
			if got := q.front(); got != naive[0] {
				t.Fatalf("op %d: front %d, want %d", op, got, naive[0])
			}
			q.moveTo(&dst, k)
			naiveDst = append(naiveDst, naive[:k]...)
			naive = naive[k:]
		}
	}
	for i, want := range naiveDst {
		if got := dst.pop(); got != want {
			t.Fatalf("moved element %d: %d, want %d", i, got, want)
		}
	}
	if dst.r.len() != 0 {
		t.Fatalf("%d runs left after popping every moved element", dst.r.len())
	}
}
