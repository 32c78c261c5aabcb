package sim

// evKind is what an event does when it fires.
type evKind uint8

const (
	evRelease evKind = iota // release the samples due now
	evPhase                 // a device finishes its current compute phase
	evXfer                  // a hand-off transfer completes (a = the sending device)
)

// event is a value in the engine's queue: 16 bytes, so that heap moves are
// cheap. Events are ordered by time, then by the sequence number given
// when they were scheduled, so that events at the same instant fire in the
// order they were created (the order never depends on heap internals).
// key packs the sequence number (high 36 bits), the kind (2 bits) and the
// argument (low 26 bits: a device index); sequence numbers are
// unique, so comparing keys compares sequence numbers.
type event struct {
	t   int64
	key uint64
}

const (
	argBits  = 26
	kindBits = 2
	maxArg   = 1<<argBits - 1
	maxSeq   = 1<<(64-argBits-kindBits) - 1
)

func mkEvent(t int64, seq uint64, k evKind, a int32) event {
	return event{t: t, key: seq<<(argBits+kindBits) | uint64(k)<<argBits | uint64(a)}
}

func (x event) kind() evKind { return evKind(x.key>>argBits) & (1<<kindBits - 1) }
func (x event) arg() int32   { return int32(x.key & maxArg) }
func (x event) seq() uint64  { return x.key >> (argBits + kindBits) }

func (x event) before(y event) bool {
	return x.t < y.t || (x.t == y.t && x.key < y.key)
}

// eventHeap is a binary min-heap of event values. It is written out for the
// event type (no container/heap, no interface boxing) because it is the
// engine's hot path. push and pop update the slice in place, as
// h = append(h, x) and h = h[:n], which the compiler turns into a store
// of the length alone (the pointer is stored only when append grows the
// array), so they cost no write barrier while the garbage collector runs.
type eventHeap []event

func (h *eventHeap) push(x event) {
	*h = append(*h, x)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].before(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

// pop removes and returns the earliest event; the heap must not be empty.
func (h *eventHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	*h = (*h)[:n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].before(s[l]) {
			m = r
		}
		if !s[m].before(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	return top
}

// queue is a FIFO of waiters on a growable circular buffer whose size is
// a power of two (indices wrap with a mask, not a division).
type queue struct {
	buf  []waiter
	head int
	n    int
}

func (q *queue) len() int { return q.n }

func (q *queue) push(w waiter) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = w
	q.n++
}

func (q *queue) grow() {
	nb := make([]waiter, max(8, 2*len(q.buf)))
	for i := 0; i < q.n; i++ {
		nb[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = nb, 0
}

// front returns the front element; the queue must not be empty.
func (q *queue) front() waiter { return q.buf[q.head] }

// pop removes and returns the front element; the queue must not be empty.
func (q *queue) pop() waiter {
	w := q.buf[q.head]
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return w
}
