package sim

// relRun is k samples released at the same time t.
type relRun struct {
	t int64
	k int
}

// runQueue is a FIFO of release times, stored as runs of equal times, so
// that a batch workload of any size holds one run and memory does not grow
// with the sample count.
type runQueue struct {
	r ring[relRun]
}

// push appends one release at time t.
func (q *runQueue) push(t int64) { q.pushN(t, 1) }

// pushN appends k releases at time t.
func (q *runQueue) pushN(t int64, k int) {
	if n := q.r.len(); n > 0 {
		if last := q.r.ptr(n - 1); last.t == t {
			last.k += k
			return
		}
	}
	q.r.push(relRun{t, k})
}

// front is the earliest release time; the queue must not be empty.
func (q *runQueue) front() int64 { return q.r.at(0).t }

// pop removes and returns the earliest release time; the queue must not be
// empty.
func (q *runQueue) pop() int64 {
	f := q.r.ptr(0)
	t := f.t
	if f.k--; f.k == 0 {
		q.r.pop()
	}
	return t
}

// moveTo moves the k earliest releases to the back of dst, in order, or
// drops them when dst is nil; the queue must hold at least k.
func (q *runQueue) moveTo(dst *runQueue, k int) {
	for k > 0 {
		f := q.r.ptr(0)
		m := min(k, f.k)
		if dst != nil {
			dst.pushN(f.t, m)
		}
		if f.k -= m; f.k == 0 {
			q.r.pop()
		}
		k -= m
	}
}
