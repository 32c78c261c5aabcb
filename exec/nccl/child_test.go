package nccl

// The child roles: a rank in its own process (the test binary run again
// with roleEnv set). A child reads its parameters from the environment,
// prints result lines on stdout and exits 0, or prints why on stderr and
// exits 1.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	roleEnv   = "VDPP_NCCL_TEST_ROLE"
	idEnv     = "VDPP_NCCL_TEST_ID"
	ranksEnv  = "VDPP_NCCL_TEST_RANKS"
	rankEnv   = "VDPP_NCCL_TEST_RANK"
	deviceEnv = "VDPP_NCCL_TEST_DEVICE"
	argEnv    = "VDPP_NCCL_TEST_ARG"
	traceEnv  = "VDPP_FAKE_NCCL_TRACE"
)

// guard bounds every operation of a child: only a guard against hangs
// (a failing test), never a measured duration.
const guard = 30 * time.Second

type childEnv struct {
	cfg Config
	arg string
}

func child(role string) int {
	if err := runChild(role); err != nil {
		fmt.Fprintf(os.Stderr, "child %s rank %s: %v\n", role, os.Getenv(rankEnv), err)
		return 1
	}
	return 0
}

func runChild(role string) error {
	id, err := hex.DecodeString(os.Getenv(idEnv))
	if err != nil {
		return err
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	env := childEnv{cfg: Config{ID: id, Ranks: atoi(ranksEnv), Rank: atoi(rankEnv), Device: atoi(deviceEnv)}, arg: os.Getenv(argEnv)}
	l, err := Load("", "")
	if err != nil {
		return err
	}
	switch role {
	case "chain":
		return childChain(l, env)
	case "pair":
		return childPair(l, env)
	case "exchange":
		return childExchange(l, env)
	case "mismatch":
		return childMismatch(l, env)
	case "killed":
		return childKilled(l, env)
	case "cancel":
		return childCancel(l, env)
	case "alone":
		return childAlone(l, env)
	case "idle":
		return childIdle(l, env)
	}
	return fmt.Errorf("unknown role %q", role)
}

func join(l *Libs, env childEnv) (*Endpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	return l.Join(ctx, env.cfg)
}

// payload is message i of the test's seed: n bytes that both sides can
// compute.
func payload(seed uint64, i, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	b := make([]byte, n+7)
	for j := 0; j < n; j += 8 {
		binary.LittleEndian.PutUint64(b[j:], r.Uint64())
	}
	return b[:n]
}

// pairSizes are the sizes the pair role sends: small, growing past the
// staging buffers several times, shrinking, then random ones.
func pairSizes(seed uint64) []int {
	s := []int{1, 3, 1000, 64<<10 + 1, 5, 1<<20 + 7, 100, 3 << 20, 17}
	r := rand.New(rand.NewPCG(seed, 1<<40))
	for range 12 {
		s = append(s, 1+r.IntN(2<<20))
	}
	return s
}

// childPair: rank 0 sends each message to rank 1, which checks it and
// sends it back; rank 0 checks the echo. arg: seed, and ",churn" to keep
// other goroutines busy while Join runs on an unlocked goroutine.
func childPair(l *Libs, env childEnv) error {
	seedS, churn := strings.CutSuffix(env.arg, ",churn")
	seed, _ := strconv.ParseUint(seedS, 10, 64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if churn {
		// Other goroutines that keep waking up keep the scheduler moving
		// goroutines between threads: an engine that did not lock its
		// thread would be seen on several.
		runtime.GOMAXPROCS(4)
		for range 6 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Microsecond):
					}
				}
			})
		}
	}
	defer func() { close(stop); wg.Wait() }()
	type res struct {
		e   *Endpoint
		err error
	}
	ch := make(chan res)
	go func() { // a goroutine that never locked its thread
		e, err := join(l, env)
		ch <- res{e, err}
	}()
	r := <-ch
	if r.err != nil {
		return r.err
	}
	e := r.e
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	sizes := pairSizes(seed)
	peer := 1 - env.cfg.Rank
	for i, n := range sizes {
		want := payload(seed, i, n)
		got := make([]byte, n)
		if env.cfg.Rank == 0 {
			if err := e.Send(ctx, peer, want); err != nil {
				return err
			}
			if err := e.Recv(ctx, peer, got); err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("message %d (%d bytes) came back different", i, n)
			}
		} else {
			if err := e.Recv(ctx, peer, got); err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("message %d (%d bytes) arrived different", i, n)
			}
			if err := e.Send(ctx, peer, got); err != nil {
				return err
			}
		}
	}
	if err := e.Send(ctx, peer, nil); err != nil {
		return fmt.Errorf("a zero-length send: %v", err)
	}
	if err := e.Recv(ctx, peer, []byte{}); err != nil {
		return fmt.Errorf("a zero-length recv: %v", err)
	}
	fmt.Printf("staging send=%d recv=%d messages=%d\n", e.sendBuf.size, e.recvBuf.size, len(sizes))
	if err := e.Close(); err != nil {
		return err
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("second Close: %v", err)
	}
	err := e.Send(ctx, peer, []byte{1})
	fmt.Printf("send after close: %v closed=%v\n", err, errors.Is(err, ErrClosed))
	e.Abort(errors.New("after close")) // must return
	fmt.Println("done")
	return nil
}

// childChain: rank 0 streams messages down the chain of ranks; each
// middle rank receives the next while it sends the previous on (its
// receiving and sending goroutines call Recv and Send concurrently); the
// last rank checks them. arg: seed,count.
func childChain(l *Libs, env childEnv) error {
	var seed uint64
	var count int
	if _, err := fmt.Sscanf(env.arg, "%d,%d", &seed, &count); err != nil {
		return err
	}
	e, err := join(l, env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	size := func(i int) int { return 1 + rand.New(rand.NewPCG(seed, uint64(i)+1<<32)).IntN(256<<10) }
	me, last := env.cfg.Rank, env.cfg.Ranks-1
	switch {
	case me == 0:
		for i := range count {
			if err := e.Send(ctx, 1, payload(seed, i, size(i))); err != nil {
				return err
			}
		}
	case me < last:
		msgs := make(chan []byte, 1)
		errc := make(chan error, 2)
		go func() {
			defer close(msgs)
			for i := range count {
				b := make([]byte, size(i))
				if err := e.Recv(ctx, me-1, b); err != nil {
					errc <- err
					return
				}
				msgs <- b
			}
		}()
		go func() {
			for b := range msgs {
				if err := e.Send(ctx, me+1, b); err != nil {
					errc <- err
					for range msgs {
					}
					return
				}
			}
			errc <- nil
		}()
		if err := <-errc; err != nil {
			return err
		}
	default:
		for i := range count {
			b := make([]byte, size(i))
			if err := e.Recv(ctx, me-1, b); err != nil {
				return err
			}
			if !bytes.Equal(b, payload(seed, i, len(b))) {
				return fmt.Errorf("message %d (%d bytes) arrived different", i, len(b))
			}
		}
	}
	if err := e.Close(); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

// childExchange: both ranks send to each other and receive from each
// other at the same time, round after round; the engine is made to wait
// until both operations are queued before it takes work, so each round
// must be issued as one group (two sends issued alone would wait for each
// other's receive for ever). arg: rounds.
func childExchange(l *Libs, env childEnv) error {
	rounds, _ := strconv.Atoi(env.arg)
	testHookPick = func(e *Endpoint) {
		deadline := time.Now().Add(guard)
		for time.Now().Before(deadline) {
			e.mu.Lock()
			n := len(e.queue)
			e.mu.Unlock()
			if n >= 2 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	e, err := join(l, env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	me, peer := env.cfg.Rank, 1-env.cfg.Rank
	for i := range rounds {
		out := payload(uint64(me), i, 1000+i)
		in := make([]byte, 1000+i)
		errc := make(chan error, 1)
		go func() { errc <- e.Send(ctx, peer, out) }()
		if err := e.Recv(ctx, peer, in); err != nil {
			return err
		}
		if err := <-errc; err != nil {
			return err
		}
		if !bytes.Equal(in, payload(uint64(peer), i, len(in))) {
			return fmt.Errorf("round %d: the message arrived different", i)
		}
	}
	if err := e.Close(); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

// report prints an operation's error for the parent: its text, and
// whether it is a deadline.
func report(what string, err error) {
	fmt.Printf("%s deadline=%v: %v\n", what, errors.Is(err, context.DeadlineExceeded), err)
}

// childMismatch: rank 0 sends 4096 bytes, rank 1 posts a receive of 2048.
func childMismatch(l *Libs, env childEnv) error {
	e, err := join(l, env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if env.cfg.Rank == 0 {
		err = e.Send(ctx, 1, make([]byte, 4096))
	} else {
		err = e.Recv(ctx, 0, make([]byte, 2048))
	}
	if err == nil {
		return errors.New("the mismatched operation succeeded")
	}
	report("err", err)
	if err := e.Close(); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

// childKilled: arg "recv": rank 1 sends one message to rank 0, says
// "ready" and waits to be killed; rank 0 receives it, says "pending" and
// posts another receive from rank 1. arg "send": rank 1 says "ready"
// right after joining; rank 0 waits for a line on stdin, then sends to
// rank 1.
func childKilled(l *Libs, env childEnv) error {
	e, err := join(l, env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if env.cfg.Rank == 1 {
		if env.arg == "recv" {
			if err := e.Send(ctx, 0, []byte("hello")); err != nil {
				return err
			}
		}
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n') // until killed
		return errors.New("not killed")
	}
	if env.arg == "recv" {
		b := make([]byte, 5)
		if err := e.Recv(ctx, 1, b); err != nil {
			return err
		}
		fmt.Println("pending")
		err = e.Recv(ctx, 1, b)
	} else {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
		err = e.Send(ctx, 1, make([]byte, 1000))
	}
	if err == nil {
		return errors.New("the operation with a dead peer succeeded")
	}
	report("err", err)
	cause := errors.New("the peer died")
	e.Abort(cause)
	e.Abort(nil)
	if err := e.Close(); err != nil {
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	fmt.Println("aborted")
	return nil
}

// errCancelTest is the cause the cancel role cancels with.
var errCancelTest = errors.New("the test cancelled the receive")

// childCancel: rank 0 posts a receive from rank 1, which never sends;
// once the fake has seen ncclRecv (the trace says so), rank 0 cancels the
// receive's ctx with errCancelTest.
func childCancel(l *Libs, env childEnv) error {
	e, err := join(l, env)
	if err != nil {
		return err
	}
	if env.cfg.Rank == 1 {
		fmt.Println("joined")
		bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
		return e.Close()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		deadline := time.Now().Add(guard)
		for time.Now().Before(deadline) {
			if b, _ := os.ReadFile(os.Getenv(traceEnv)); bytes.Contains(b, []byte(" ncclRecv ")) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		cancel(errCancelTest)
	}()
	err = e.Recv(ctx, 1, make([]byte, 100))
	fmt.Printf("recv wraps=%v: %v\n", errors.Is(err, errCancelTest), err)
	later := e.Send(context.Background(), 1, []byte{1})
	fmt.Printf("later wraps=%v: %v\n", errors.Is(later, errCancelTest), later)
	if err := e.Close(); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

// childAlone: rank 0 of 2 joins alone. arg "ctx": Join's ctx ends first
// (after 300ms); arg "init": the fake's ncclCommInitRank gives up first
// ($VDPP_FAKE_NCCL_INIT_TIMEOUT, set by the parent).
func childAlone(l *Libs, env childEnv) error {
	d := guard
	if env.arg == "ctx" {
		d = 300 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	e, err := l.Join(ctx, env.cfg)
	if err == nil {
		e.Close()
		return errors.New("a rank joined a communicator of 2 alone")
	}
	report("err", err)
	return nil
}

// childIdle joins, says "joined" and closes its endpoint when stdin
// closes.
func childIdle(l *Libs, env childEnv) error {
	e, err := join(l, env)
	if err != nil {
		return err
	}
	fmt.Println("joined")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return e.Close()
}
