package sim

import "github.com/vdpp/vdpp/plan"

// relCursor walks the release times of one pipeline's samples (ids first,
// first+stride, first+2·stride, ...) in order by replaying the workload's
// one release-time generator (plan.Releases), so that no release time is
// stored per sample and memory does not grow with the sample count,
// whatever the arrival process and however long the queue.
type relCursor struct {
	r      *plan.Releases
	stride int
	t      int64 // release time of the sample at the cursor
}

// newRelCursor returns a cursor at sample first of w.
func newRelCursor(w plan.Workload, first, stride int) relCursor {
	c := relCursor{r: w.Releases(), stride: stride}
	for range first {
		c.r.Next()
	}
	c.t = c.r.Next()
	return c
}

// advance moves the cursor k of its pipeline's samples on.
func (c *relCursor) advance(k int) {
	for range k * c.stride {
		c.t = c.r.Next()
	}
}
