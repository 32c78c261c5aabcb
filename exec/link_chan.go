package exec

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// chanLink is the in-process link: channels between the goroutines of one
// process. The micro-batch is deep-copied on the way, as a transfer
// between devices would (the receiver never shares memory with the
// sender). Addresses are names inside the link ("inproc:1", ...), so that
// both ends connect as they would over a network.
type chanLink struct {
	h      handoff
	mu     sync.Mutex
	inlets map[string]*chanInlet
}

func newChanLink(h handoff) link {
	return &chanLink{h: h, inlets: map[string]*chanInlet{}}
}

func (l *chanLink) listen() (inlet, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := &chanInlet{name: fmt.Sprintf("inproc:%d", len(l.inlets)+1), pipe: newChanPipe(l.h), dialled: make(chan struct{})}
	l.inlets[in.name] = in
	return in, nil
}

func (l *chanLink) dial(ctx context.Context, addr string) (outlet, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	in, ok := l.inlets[addr]
	if !ok {
		return nil, fmt.Errorf("exec: inproc: nothing listens at %q", addr)
	}
	if in.taken {
		return nil, fmt.Errorf("exec: inproc: %s is already connected", addr)
	}
	in.taken = true
	close(in.dialled)
	return chanOutlet{in.pipe}, nil
}

// chanInlet is the receiving end of an in-process hand-off.
type chanInlet struct {
	name    string
	pipe    *chanPipe
	dialled chan struct{} // closed by dial
	taken   bool          // under chanLink.mu
}

func (in *chanInlet) addr() string { return in.name }

func (in *chanInlet) accept(ctx context.Context) error {
	select {
	case <-in.dialled:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// open returns the pipe; both ends share the run's clock, set before the
// stages start.
func (in *chanInlet) open(_ context.Context, clk clock) source {
	in.pipe.now = clk.now
	return in.pipe
}

func (in *chanInlet) close() error { return nil }

// chanOutlet is the sending end of an in-process hand-off.
type chanOutlet struct{ pipe *chanPipe }

func (out chanOutlet) open(_ context.Context, clk clock) sender {
	out.pipe.now = clk.now
	return out.pipe
}

func (out chanOutlet) close() error { return nil }

// cloneBatch deep-copies the states of b, as a transfer between devices
// does: the receiver never shares memory with the sender.
func cloneBatch(b *batch) *batch {
	out := &batch{items: make([]*item, len(b.items))}
	for i, it := range b.items {
		c := *it
		c.timings = append([]StageTiming(nil), it.timings...)
		if it.state != nil {
			s := *it.state
			s.X = append([]float32(nil), s.X...)
			s.Cond.Embedding = append([]float32(nil), s.Cond.Embedding...)
			s.Cond.ImageLatent = append([]float32(nil), s.Cond.ImageLatent...)
			c.state = &s
		}
		out.items[i] = &c
	}
	return out
}

// chanPipe is one hand-off of the in-process link: both ends of it.
//
// Blocking: the receiver posts on ready when it is idle and waiting for
// input; the sender, after computing, takes that signal (waiting for it if
// needed), copies the micro-batch and delivers it; both record the copy as
// their send and recv spans. Buffered: the sender copies the micro-batch
// into the receiver's queue and continues; the receiver's recv span is that
// same copy, recorded when it dequeues it.
type chanPipe struct {
	blocking bool
	ready    chan struct{}
	data     chan delivery
	now      func() int64
	xfer     func(n int) // tests only (handoff.xfer)
}

type delivery struct {
	b    *batch
	xfer interval
}

func newChanPipe(h handoff) *chanPipe {
	l := &chanPipe{blocking: h.blocking, ready: make(chan struct{}, 1), xfer: h.xfer}
	if h.blocking {
		l.data = make(chan delivery)
	} else {
		l.data = make(chan delivery, h.capacity)
	}
	return l
}

func (l *chanPipe) send(ctx context.Context, b *batch) (int64, bool, interval, error) {
	var readyAt int64
	waited := false
	if l.blocking {
		select {
		case <-l.ready:
		default:
			waited = true
			select {
			case <-l.ready:
			case <-ctx.Done():
				return 0, true, interval{}, context.Cause(ctx)
			}
		}
		readyAt = l.now()
	}
	start := l.now()
	c := cloneBatch(b)
	if l.xfer != nil {
		l.xfer(len(b.items))
	}
	d := delivery{b: c, xfer: interval{start, l.now()}}
	select {
	case l.data <- d:
	case <-ctx.Done():
		return readyAt, waited, d.xfer, context.Cause(ctx)
	}
	return readyAt, waited, d.xfer, nil
}

func (l *chanPipe) close() error {
	close(l.data)
	return nil
}

func (l *chanPipe) next(ctx context.Context) (*batch, *interval, error) {
	if l.blocking {
		select {
		case l.ready <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		}
	}
	select {
	case d, ok := <-l.data:
		if !ok {
			return nil, nil, io.EOF
		}
		return d.b, &d.xfer, nil
	case <-ctx.Done():
		return nil, nil, context.Cause(ctx)
	}
}
