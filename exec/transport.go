package exec

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vdpp/vdpp/plan"
)

// The transport seam. Two questions are kept apart:
//
//   - the link: how a micro-batch travels from a stage to the next
//     (channels inside one process, TCP, later NCCL). A stage worker sees
//     only the two ends of its links (source and sender), never the medium.
//   - the process layout: how many processes run the stages and who starts
//     them (one process; one worker process per device started by the
//     coordinator; later, workers on several hosts started by Slurm,
//     Kubernetes or torchrun).
//
// transports, below, is the one place where a plan's transport word picks
// both.

// transportSpec is what a plan's transport word selects.
type transportSpec struct {
	// link makes the transport's link for the given hand-off.
	link func(h handoff) link
	// layout runs the stages.
	layout layout
	// available, where set, says whether the transport can run on this
	// machine (the libraries it loads at run time are there): nil, or
	// why not.
	available func() error
	// commID, where set, makes the run's communicator, which the link's
	// ends join (joiner): the coordinator calls it once and hands its
	// bytes to every worker in the assignment.
	commID func() ([]byte, error)
}

// transports is the one place where a plan's transport word (plan.Transport)
// is turned into a link and a process layout. To add a transport, give it
// an entry here and a link implementation (see doc.go).
var transports = map[plan.Transport]transportSpec{
	plan.TransportInproc: {link: newChanLink, layout: oneProcess{}},
	plan.TransportTCP:    {link: newTCPLink, layout: processPerDevice{}},
	plan.TransportNCCL:   {link: newNCCLLink, layout: processPerDevice{}, available: ncclAvailable, commID: ncclCommID},
}

// transportFor returns what transport t selects, or why it cannot run
// here (unknown; its libraries do not load).
func transportFor(t plan.Transport) (transportSpec, error) {
	s, ok := transports[t]
	switch {
	case !ok:
		words := make([]string, 0, len(transports))
		for _, w := range t.Values() {
			words = append(words, string(w))
		}
		return transportSpec{}, fmt.Errorf("transport %q is unknown: want %s", t, strings.Join(words, ", "))
	case s.available != nil:
		if err := s.available(); err != nil {
			return transportSpec{}, fmt.Errorf("%w; or use transport: %s", err, strings.Join(otherTransports(t), " or "))
		}
	}
	return s, nil
}

// otherTransports lists the transports other than t that need nothing
// loaded at run time, with the process layout each runs in.
func otherTransports(t plan.Transport) []string {
	var use []string
	for _, w := range t.Values() {
		if a := transports[w]; w != t && a.available == nil {
			use = append(use, fmt.Sprintf("%s (%s)", w, a.layout.describe()))
		}
	}
	return use
}

// CheckTransport reports whether transport t can run here: nil, or an
// error that says why not (unknown; for nccl, NCCL or the CUDA runtime
// does not load) and which transports can (with the process layout each
// runs in).
func CheckTransport(t plan.Transport) error {
	_, err := transportFor(t)
	return err
}

// WorkerProcesses reports whether transport t runs its stages in worker
// processes that Run starts with Options.WorkerCommand (false: in this
// process, or t is unknown).
func WorkerProcesses(t plan.Transport) bool {
	s, ok := transports[t]
	return ok && s.layout.workers()
}

// newLink returns the link of the plan's transport, for the plan's
// hand-off mode; token is the run's secret where stages run in separate
// processes ("" within one). Its inlets listen on loopback.
func newLink(p *plan.Plan, token string) (link, error) {
	return newLinkAt(p, token, "")
}

// newLinkAt is newLink with inlets that listen on host ("": loopback).
func newLinkAt(p *plan.Plan, token, host string) (link, error) {
	s, err := transportFor(p.Transport)
	if err != nil {
		return nil, fmt.Errorf("exec: plan %s: %w", p.Name, err)
	}
	h := handoffOf(p)
	h.token, h.host = token, host
	return s.link(h), nil
}

// maxQueued bounds the micro-batches a buffered receiver's queue holds
// (as the TCP receiver's does): a sender that runs that far ahead waits,
// so memory does not grow with the sample count.
const maxQueued = 64

// handoffOf is the hand-off of the plan's layout; a buffered receiver's
// queue holds up to maxQueued micro-batches (fewer for a short workload).
func handoffOf(p *plan.Plan) handoff {
	return handoff{blocking: p.Layout.Handoff == plan.HandoffBlocking, capacity: min(p.Workload.Samples, maxQueued) + 1}
}

// handoff is how a link hands a micro-batch over.
type handoff struct {
	// blocking: the sender waits until the receiver is idle and takes the
	// micro-batch (plan.HandoffBlocking); otherwise the micro-batch goes
	// into the receiver's queue.
	blocking bool
	// capacity bounds a buffered receiver's queue where the link keeps one.
	capacity int
	// token is the run's secret between processes (EnvWorkerToken): a TCP
	// receiver takes only a sender whose first bytes carry it, and drops
	// any other connection. Empty within one process.
	token string
	// host is the IP address a TCP inlet listens on: the one this
	// process reaches its coordinator from, so that workers on other
	// hosts reach it too; "" is loopback (127.0.0.1).
	host string
	// xfer, set only by tests (testHooks), runs inside an in-process
	// transfer of n samples.
	xfer func(n int)
}

// clock is a run's time base: integer nanoseconds since its start, on this
// process's monotonic clock.
type clock struct{ start time.Time }

func (c clock) now() int64 { return int64(time.Since(c.start)) }

// at is the run's time of t.
func (c clock) at(t time.Time) int64 { return int64(t.Sub(c.start)) }

// link is a transport between stages: it connects the sending end of a
// stage's hand-off to the receiving end of the next stage's, wherever the
// two stages run. Ends are connected before a run starts (listen, dial,
// accept: a rendezvous may carry the address between processes) and
// opened for it once its clock has started.
type link interface {
	// listen opens the receiving end of the hand-off into a stage; the
	// stage before dials its address.
	listen() (inlet, error)
	// dial connects to the inlet at addr and returns the sending end.
	dial(ctx context.Context, addr string) (outlet, error)
}

// inlet is the receiving end of a link.
type inlet interface {
	// addr is what the stage before dials.
	addr() string
	// accept waits, until ctx ends, for the stage before to dial.
	accept(ctx context.Context) error
	// open starts receiving for a run that ends with ctx, timed by clk.
	open(ctx context.Context, clk clock) source
	// close releases the inlet (an opened source releases itself when its
	// run ends).
	close() error
}

// outlet is the sending end of a link.
type outlet interface {
	// open starts sending for a run that ends with ctx, timed by clk.
	open(ctx context.Context, clk clock) sender
	// close releases the outlet (an opened sender releases itself when
	// closed or when its run ends).
	close() error
}

// layout is a process layout: where the stages of a run execute and who
// starts them. It runs every stage, each hand-off over the plan's link.
type layout interface {
	// describe names the layout in messages ("one process").
	describe() string
	// workers reports whether the stages run in worker processes started
	// with Options.WorkerCommand.
	workers() bool
	// check refuses, before any work, what the layout cannot run.
	check(p *plan.Plan, f Factory, opts *Options) error
	// run runs every stage of a checked plan and returns what they
	// measured.
	run(ctx context.Context, p *plan.Plan, f Factory, opts Options) (*Result, error)
}

// connect connects the hand-off from one stage to the next over l, in one
// process: the receiving end listens, the sending end dials it.
func connect(ctx context.Context, l link) (inlet, outlet, error) {
	in, err := l.listen()
	if err != nil {
		return nil, nil, err
	}
	out, err := l.dial(ctx, in.addr())
	if err != nil {
		in.close()
		return nil, nil, err
	}
	if err := in.accept(ctx); err != nil {
		in.close()
		out.close()
		return nil, nil, err
	}
	return in, out, nil
}
