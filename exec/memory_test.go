package exec

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vdpp/vdpp/plan"
)

// allocsOfInterruptedRun runs a buffered two-stage plan with two replicas
// (a hybrid) of samples samples with the fake model, abandons it once
// three samples are done, and returns the bytes allocated during the run.
func allocsOfInterruptedRun(t *testing.T, samples int) uint64 {
	t.Helper()
	p := testPlan("memory", 4, samples, 2, [][2]int{{0, 1}, {2, 3}}, [][2]int{{0, 3}})
	p.Layout.Handoff = plan.HandoffBuffered
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	opts := Options{OnInterrupt: InterruptAbandon, Images: fakeImages(p), Progress: func(e ProgressEvent) {
		if e.Done >= 3 {
			once.Do(cancel)
		}
	}}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := Run(ctx, p, fakeFactory(fakeModel{unet: 2 * time.Millisecond}), opts)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Done < 3 || res.Done > 40 {
		t.Fatalf("%d samples: done %d, interrupted %v: want interrupted after 3 or a few more", samples, res.Done, res.Interrupted)
	}
	return after.TotalAlloc - before.TotalAlloc
}

// TestMemoryDoesNotGrowWithSamples: a run allocates nothing per sample of
// the workload up front (release times, queues sized to the total, samples
// admitted before their stage asks): a run of two million samples
// interrupted after three allocates about what one of 20 samples does.
// It counts bytes allocated; it does not time anything.
func TestMemoryDoesNotGrowWithSamples(t *testing.T) {
	small := allocsOfInterruptedRun(t, 20)
	large := allocsOfInterruptedRun(t, 2_000_000)
	t.Logf("allocated %d bytes for 20 samples, %d for 2,000,000", small, large)
	// Per-sample state for two million samples is tens of megabytes
	// (16 bytes each is 32 MB); the bound leaves room for the few more
	// samples an abandon may let through.
	if large > small+(2<<20) {
		t.Errorf("a run of 2,000,000 samples allocated %d bytes, one of 20 samples %d: memory grows with the sample count", large, small)
	}
}
