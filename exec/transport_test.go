package exec

import (
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vdpp/vdpp/exec/nccl"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// TestTransportFor: the one table picks the link and the process layout
// of each transport, and refuses an unknown one, or nccl where its
// libraries do not load, with a message that says what to use instead.
func TestTransportFor(t *testing.T) {
	useFakeNCCL(t)
	h := handoff{blocking: true, capacity: 2}
	for _, c := range []struct {
		t      plan.Transport
		link   link
		layout layout
	}{
		{plan.TransportInproc, &chanLink{}, oneProcess{}},
		{plan.TransportTCP, tcpLink{}, processPerDevice{}},
		{plan.TransportNCCL, &ncclLink{}, processPerDevice{}},
	} {
		s, err := transportFor(c.t)
		if err != nil {
			t.Fatalf("%s: %v", c.t, err)
		}
		if got := s.link(h); reflect.TypeOf(got) != reflect.TypeOf(c.link) {
			t.Errorf("%s: link %T, want %T", c.t, got, c.link)
		}
		if reflect.TypeOf(s.layout) != reflect.TypeOf(c.layout) {
			t.Errorf("%s: layout %T, want %T", c.t, s.layout, c.layout)
		}
		if err := CheckTransport(c.t); err != nil {
			t.Errorf("CheckTransport(%s): %v", c.t, err)
		}
		if got, want := WorkerProcesses(c.t), c.t != plan.TransportInproc; got != want {
			t.Errorf("WorkerProcesses(%s) = %v, want %v", c.t, got, want)
		}
	}
	want := `transport "pigeon" is unknown: want inproc, tcp, nccl`
	if _, err := transportFor("pigeon"); err == nil || err.Error() != want {
		t.Errorf("transportFor(pigeon): %v, want %q", err, want)
	}
	if err := CheckTransport("pigeon"); err == nil || err.Error() != want {
		t.Errorf("CheckTransport(pigeon): %v, want %q", err, want)
	}
	if WorkerProcesses("pigeon") {
		t.Error("WorkerProcesses(pigeon) for an unknown transport")
	}
	// Without NCCL (TestNCCLMissingLibrary has the whole message), nccl is
	// refused, and still runs in worker processes where it can.
	t.Setenv(nccl.EnvNCCLLib, "/nonexistent/libnccl.so.2")
	if _, err := transportFor(plan.TransportNCCL); err == nil || !strings.HasSuffix(err.Error(), "; or use transport: inproc (one process) or tcp (one process per device)") {
		t.Errorf("transportFor(nccl) without NCCL: %v", err)
	}
	if !WorkerProcesses(plan.TransportNCCL) {
		t.Error("WorkerProcesses(nccl) without NCCL: false, want true (the layout does not depend on the library)")
	}
	// Every word of the plan's vocabulary has an entry.
	for _, tr := range plan.Transport("").Values() {
		if _, ok := transports[tr]; !ok {
			t.Errorf("transport %s has no entry in the table", tr)
		}
	}
}

// TestLinksCarryBatches: over every link of this build, in both hand-off
// modes, micro-batches arrive whole and in order, as copies, with a
// transfer interval on both ends, and the end of the stream arrives as
// io.EOF.
func TestLinksCarryBatches(t *testing.T) {
	useFakeNCCL(t)
	for _, tr := range []plan.Transport{plan.TransportInproc, plan.TransportTCP, plan.TransportNCCL} {
		for _, blocking := range []bool{true, false} {
			name := string(tr) + map[bool]string{true: "/blocking", false: "/buffered"}[blocking]
			t.Run(name, func(t *testing.T) {
				s, err := transportFor(tr)
				if err != nil {
					t.Fatal(err)
				}
				h := handoff{blocking: blocking, capacity: 4}
				if s.commID != nil {
					// Two ranks of one communicator in this process.
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					pair, err := newNCCLPair(ctx, h, plan.Device{Name: "a", Index: 0}, plan.Device{Name: "b", Index: 1})
					if err != nil {
						t.Fatal(err)
					}
					defer pair.close()
					carry(t, pair)
					return
				}
				carry(t, s.link(h))
			})
		}
	}
}

func carry(t *testing.T, l link) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, out, err := connect(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	carryOver(ctx, t, in, out)
}

// carryOver sends three micro-batches from out to in and checks that they
// arrive whole, in order, and copied.
func carryOver(ctx context.Context, t *testing.T, in inlet, out outlet) {
	defer in.close()
	defer out.close()
	clk := clock{start: time.Now()}
	snd, src := out.open(ctx, clk), in.open(ctx, clk)
	sent := make([]*batch, 3)
	for i := range sent {
		st := &models.State{Sample: i, Seed: 7, Next: 2, X: []float32{float32(i), 1.5}}
		st.Cond.Embedding = []float32{3}
		sent[i] = &batch{items: []*item{{id: i, release: int64(10 * i), state: st, timings: []StageTiming{{Stage: 0, Device: "cpu0", Start: 1, End: 2}}}}}
	}
	errc := make(chan error, 1)
	go func() {
		for _, b := range sent {
			if _, _, x, err := snd.send(ctx, b); err != nil || x.end < x.start {
				errc <- errors.Join(err, errors.New("bad transfer interval"))
				return
			}
		}
		errc <- snd.close()
	}()
	for i, want := range sent {
		got, xfer, err := src.next(ctx)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if xfer == nil || xfer.end < xfer.start {
			t.Errorf("batch %d: transfer %v", i, xfer)
		}
		if !sameBatch(got, want) {
			t.Errorf("batch %d: got %+v (state %+v), want %+v (state %+v)", i, got.items[0], got.items[0].state, want.items[0], want.items[0].state)
		}
		if got.items[0].state == want.items[0].state || &got.items[0].state.X[0] == &want.items[0].state.X[0] {
			t.Errorf("batch %d: the receiver shares the sender's state", i)
		}
	}
	if _, _, err := src.next(ctx); err != io.EOF {
		t.Errorf("after the last batch: %v, want io.EOF", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("sender: %v", err)
	}
}

// TestTCPLinkDropsStrangers: between processes a data link takes only the
// sender that knows the run's token. Strangers that connect first (one
// sending garbage, one a wrong token, one silent) are dropped and the
// hand-off still carries its micro-batches; with only strangers, accept
// gives up at its deadline instead of taking one.
func TestTCPLinkDropsStrangers(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	l := newTCPLink(handoff{blocking: true, capacity: 4, token: token})
	strangers := func(addr string) []net.Conn {
		var cs []net.Conn
		for _, hello := range []string{"GET / HTTP/1.0\r\n\r\n", string(linkHello("f" + token[1:])), ""} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte(hello))
			cs = append(cs, c)
		}
		return cs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := l.listen()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range strangers(in.addr()) {
		defer c.Close()
	}
	out, err := l.dial(ctx, in.addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.accept(ctx); err != nil {
		t.Fatalf("accept with strangers before the sender: %v", err)
	}
	carryOver(ctx, t, in, out)

	in, err = l.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	for _, c := range strangers(in.addr()) {
		defer c.Close()
	}
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if err := in.accept(short); err == nil {
		t.Fatal("accept with only strangers connected: took one")
	}
}

// sameBatch compares micro-batches by value (an empty slice equals nil).
func sameBatch(a, b *batch) bool {
	if len(a.items) != len(b.items) {
		return false
	}
	for i, x := range a.items {
		y := b.items[i]
		if x.id != y.id || x.release != y.release || !reflect.DeepEqual(x.timings, y.timings) || (x.state == nil) != (y.state == nil) {
			return false
		}
		if s, u := x.state, y.state; s != nil && (s.Sample != u.Sample || s.Seed != u.Seed || s.Next != u.Next ||
			!slices.Equal(s.X, u.X) || !slices.Equal(s.Cond.Embedding, u.Cond.Embedding) || !slices.Equal(s.Cond.ImageLatent, u.Cond.ImageLatent)) {
			return false
		}
	}
	return true
}

// TestChanLinkAddresses: the in-process link connects by name, once.
func TestChanLinkAddresses(t *testing.T) {
	l := newChanLink(handoff{blocking: true})
	in, err := l.listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.dial(ctx, "inproc:99"); err == nil || !strings.Contains(err.Error(), "nothing listens") {
		t.Errorf("dial of an unknown address: %v", err)
	}
	if _, err := l.dial(ctx, in.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.dial(ctx, in.addr()); err == nil || !strings.Contains(err.Error(), "already connected") {
		t.Errorf("second dial: %v", err)
	}
	if err := in.accept(ctx); err != nil {
		t.Errorf("accept after dial: %v", err)
	}
	other, _ := l.listen()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := other.accept(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("accept without a dial, cancelled: %v", err)
	}
}

// TestLayoutIndependentOfLink: the one-process layout runs the same plan
// over TCP links, and the outputs are those of the channel links, byte
// for byte: the stages do not know what carries their micro-batches.
func TestLayoutIndependentOfLink(t *testing.T) {
	for _, handoff := range []string{"blocking", "buffered"} {
		t.Run(handoff, func(t *testing.T) {
			p := tcpPlan(handoff)
			p.Transport = plan.TransportInproc
			chanDir, tcpDir := t.TempDir(), t.TempDir()
			if _, err := runPlan(t, p, fakeFactory(fakeModel{}), Options{OutDir: chanDir}); err != nil {
				t.Fatal(err)
			}
			opts := Options{OutDir: tcpDir, Images: fakeImages(p)}
			if _, err := check(p, fakeFactory(fakeModel{}), &opts); err != nil {
				t.Fatal(err)
			}
			s, _ := transportFor(plan.TransportTCP)
			l := s.link(handoffOf(p))
			res, err := runLocal(context.Background(), p, fakeFactory(fakeModel{}), l, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Done != p.Workload.Samples {
				t.Fatalf("%d of %d samples done", res.Done, p.Workload.Samples)
			}
			want, got := readOutputs(t, chanDir), readOutputs(t, tcpDir)
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("%d files over tcp links, %d over channels", len(got), len(want))
			}
			for k, v := range want {
				if string(got[k]) != string(v) {
					t.Errorf("%s differs between tcp and channel links", k)
				}
			}
		})
	}
}
