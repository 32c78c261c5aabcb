package exec

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vdpp/vdpp/exec/nccl"
	"github.com/vdpp/vdpp/plan"
)

// ncclLink is the NCCL link: a micro-batch's bytes go from the sending
// stage's CUDA device to the receiving stage's with ncclSend/ncclRecv on
// the run's one communicator (exec/nccl: staged through pinned host
// memory, since ONNX Runtime's tensors are on the host here). Beside it,
// each hand-off keeps a TCP connection, as the tcp link has, for what is
// not bulk: the receiver's ready and ack (blocking hand-off), the end of
// the stream, and each micro-batch's length, which tells the receiver the
// size of the ncclRecv to post. The TCP connection also orders the two
// sides: a receive is posted only for a micro-batch whose send is posted
// or about to be, so no stage's NCCL work waits on a stage that has
// nothing to send (see exec/nccl for how a stage that both receives and
// sends keeps the two apart).
//
// The communicator is joined once per worker process, after the
// coordinator's assignment (which carries ncclGetUniqueId's bytes and the
// worker's rank) and before the stage connects its hand-offs: ranks are
// the plan's stages in order, pipeline by pipeline.
type ncclLink struct {
	tcp tcpLink

	mu         sync.Mutex
	ep         *nccl.Endpoint
	prev, next int // ranks of the stages before and after this one
}

func newNCCLLink(h handoff) link { return &ncclLink{tcp: tcpLink{h}, prev: -1, next: -1} }

func (l *ncclLink) listen() (inlet, error) {
	in, err := l.tcp.listen()
	if err != nil {
		return nil, err
	}
	ti := in.(*tcpInlet)
	ti.bulk = ncclPeer{l: l, prev: true}
	return ti, nil
}

func (l *ncclLink) dial(ctx context.Context, addr string) (outlet, error) {
	out, err := l.tcp.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	to := out.(*tcpOutlet)
	to.bulk = ncclPeer{l: l}
	return to, nil
}

// joiner is a link whose processes share a communicator: each worker
// joins it after its assignment, before it connects its hand-offs.
type joiner interface {
	join(ctx context.Context, p *plan.Plan, st plan.Stage, asg control) error
	// close leaves the communicator.
	close() error
}

// join joins the run's communicator as the rank the assignment names, on
// the CUDA device of the stage's plan device. All ranks join together:
// it returns when every one has, or when ctx ends.
func (l *ncclLink) join(ctx context.Context, p *plan.Plan, st plan.Stage, asg control) error {
	if len(asg.CommID) == 0 || asg.CommSize < 1 {
		return errors.New("exec: nccl: the coordinator's assignment has no communicator (a coordinator of another transport or version?)")
	}
	return l.joinAs(ctx, asg.CommID, asg.CommSize, asg.Rank, asg.PrevRank, asg.NextRank, p.Devices[st.DevIdx])
}

// joinAs joins communicator id of size ranks as rank, on dev's CUDA
// device, with the ranks of the stages before and after (-1: none).
func (l *ncclLink) joinAs(ctx context.Context, id []byte, size, rank, prev, next int, dev plan.Device) error {
	libs, err := nccl.Load("", "")
	if err != nil {
		return fmt.Errorf("exec: nccl: %w", err)
	}
	ep, err := libs.Join(ctx, nccl.Config{Device: dev.Index, ID: id, Ranks: size, Rank: rank})
	if err != nil {
		return fmt.Errorf("exec: nccl: join the run's communicator as rank %d of %d on cuda device %d (%s): %w", rank, size, dev.Index, dev.Name, err)
	}
	l.mu.Lock()
	l.ep, l.prev, l.next = ep, prev, next
	l.mu.Unlock()
	return nil
}

// ncclPair is an NCCL link between two ranks of this process, for the
// profile's hand-off measurement: its sending ends are rank 0's, on the
// CUDA device of from, its receiving ends rank 1's, on to's.
type ncclPair struct{ a, b *ncclLink }

// newNCCLPair joins a two-rank communicator in this process.
func newNCCLPair(ctx context.Context, h handoff, from, to plan.Device) (*ncclPair, error) {
	id, err := ncclCommID()
	if err != nil {
		return nil, err
	}
	l := &ncclPair{a: newNCCLLink(h).(*ncclLink), b: newNCCLLink(h).(*ncclLink)}
	// A rank that fails (a CUDA device this machine lacks) ends the
	// other's wait in ncclCommInitRank, which would otherwise wait for it
	// as long as ctx lasts.
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make(chan error, 2)
	join := func(l *ncclLink, rank, prev, next int, dev plan.Device) {
		err := l.joinAs(jctx, id, 2, rank, prev, next, dev)
		if err != nil {
			cancel(err)
		}
		errs <- err
	}
	go join(l.a, 0, -1, 1, from)
	go join(l.b, 1, 0, -1, to)
	first, second := <-errs, <-errs
	if first != nil || second != nil {
		l.close()
		// The rank that failed first says why; the other only gave up.
		return nil, cmp.Or(context.Cause(jctx), first, second)
	}
	return l, nil
}

func (l *ncclPair) listen() (inlet, error) { return l.b.listen() }

func (l *ncclPair) dial(ctx context.Context, addr string) (outlet, error) {
	return l.a.dial(ctx, addr)
}

// close leaves both ranks at once (each by abort, see ncclLink.close).
func (l *ncclPair) close() error {
	errc := make(chan error, 1)
	go func() { errc <- l.a.close() }()
	return errors.Join(l.b.close(), <-errc)
}

// errLeft is why a link's communicator was aborted when its worker left.
var errLeft = errors.New("exec: nccl: the worker left the run's communicator")

// close leaves the communicator by aborting it, whether the run ended
// cleanly or not: every operation of this rank is over by then, and
// ncclCommDestroy would wait for the other ranks (in recent NCCL), which
// may have died or left already.
func (l *ncclLink) close() error {
	l.mu.Lock()
	ep := l.ep
	l.ep = nil
	l.mu.Unlock()
	if ep == nil {
		return nil
	}
	ep.Abort(errLeft)
	return ep.Close()
}

// ncclPeer is one end of a hand-off's bulk path: to the next stage's rank,
// or (prev) from the previous stage's.
type ncclPeer struct {
	l    *ncclLink
	prev bool
}

func (p ncclPeer) endpoint() (*nccl.Endpoint, int, error) {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	peer := p.l.next
	if p.prev {
		peer = p.l.prev
	}
	if p.l.ep == nil || peer < 0 {
		return nil, 0, errors.New("exec: nccl: hand-off used before this worker joined the run's communicator, or after it left it")
	}
	return p.l.ep, peer, nil
}

func (p ncclPeer) send(ctx context.Context, b []byte) error {
	ep, peer, err := p.endpoint()
	if err != nil {
		return err
	}
	if err := ep.Send(ctx, peer, b); err != nil {
		return fmt.Errorf("exec: nccl: send %d bytes from rank %d to rank %d: %w", len(b), ep.Rank(), peer, err)
	}
	return nil
}

func (p ncclPeer) recv(ctx context.Context, b []byte) error {
	ep, peer, err := p.endpoint()
	if err != nil {
		return err
	}
	if err := ep.Recv(ctx, peer, b); err != nil {
		return fmt.Errorf("exec: nccl: receive %d bytes at rank %d from rank %d: %w", len(b), ep.Rank(), peer, err)
	}
	return nil
}

// ncclAvailable reports whether NCCL and the CUDA runtime load in this
// process.
func ncclAvailable() error {
	if _, err := nccl.Load("", ""); err != nil {
		return fmt.Errorf("transport nccl cannot run here: %w", err)
	}
	return nil
}

// ncclCommID is the coordinator's part of a run's communicator: the
// unique id every rank joins with. NCCL's bootstrap listens in this
// process until the ranks have joined.
func ncclCommID() ([]byte, error) {
	libs, err := nccl.Load("", "")
	if err != nil {
		return nil, fmt.Errorf("transport nccl cannot run here: %w", err)
	}
	id, err := libs.UniqueID()
	if err != nil {
		return nil, fmt.Errorf("exec: nccl: ncclGetUniqueId: %w", err)
	}
	return id, nil
}
