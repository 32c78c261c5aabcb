package nccl

// These tests run against internal/fakenccl, a test double of libnccl and
// libcudart (host memory and unix sockets, no GPU): they check this
// package's calls, threads, staging, grouping and error handling, not
// real NCCL. Ranks run as separate processes (this test binary run again
// in a child role, child_test.go).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdpp/vdpp/internal/fakenccl"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(child(role))
	}
	code := m.Run()
	fakenccl.Cleanup()
	os.Exit(code)
}

// fake builds the test double and loads it as both libraries.
func fake(t *testing.T) (string, *Libs) {
	t.Helper()
	lib := fakenccl.BuildForTest(t)
	l, err := Load(lib, lib)
	if err != nil {
		t.Fatal(err)
	}
	return lib, l
}

// newID is a fresh communicator id; the directory the double keeps its
// sockets in goes when the test ends (a killed rank leaves its socket).
func newID(t *testing.T, l *Libs) []byte {
	t.Helper()
	id, err := l.UniqueID()
	if err != nil {
		t.Fatal(err)
	}
	s := string(id[:bytes.IndexByte(id, 0)])
	dir, ok := strings.CutPrefix(s, "fakenccl:")
	if !ok {
		t.Fatalf("the double's id %q does not start with fakenccl:", s)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return id
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rank is one child process.
type rank struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, closed at EOF
	stderr syncBuffer
	done   chan struct{}
	err    error // the exit status, once done closed
	trace  string
}

// procGuard bounds how long the parent waits for a child: a guard against
// a hung test, not a measured duration.
const procGuard = 90 * time.Second

type spawnOpts struct {
	role             string
	id               []byte
	ranks, rank, dev int
	arg              string
	env              []string
}

func spawn(t *testing.T, lib string, o spawnOpts) *rank {
	t.Helper()
	r := &rank{
		t:     t,
		name:  fmt.Sprintf("%s rank %d", o.role, o.rank),
		lines: make(chan string, 1000),
		done:  make(chan struct{}),
		trace: filepath.Join(t.TempDir(), fmt.Sprintf("trace-%d", o.rank)),
	}
	r.cmd = exec.Command(os.Args[0], "-test.run=^$")
	r.cmd.Env = append(os.Environ(),
		roleEnv+"="+o.role, EnvNCCLLib+"="+lib, EnvCUDARTLib+"="+lib,
		idEnv+"="+hex.EncodeToString(o.id), ranksEnv+"="+strconv.Itoa(o.ranks),
		rankEnv+"="+strconv.Itoa(o.rank), deviceEnv+"="+strconv.Itoa(o.dev),
		argEnv+"="+o.arg, traceEnv+"="+r.trace)
	r.cmd.Env = append(r.cmd.Env, o.env...)
	r.cmd.Stderr = &r.stderr
	var err error
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// line waits for the child's next stdout line that starts with prefix.
func (r *rank) line(prefix string) string {
	r.t.Helper()
	timeout := time.After(procGuard)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				<-r.done
				r.t.Fatalf("%s ended (%v) without a line %q; stderr:\n%s", r.name, r.err, prefix, r.stderr.String())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			r.t.Fatalf("%s: no line %q after %s; stderr:\n%s", r.name, prefix, procGuard, r.stderr.String())
		}
	}
}

// wait waits for the child to exit and fails the test unless it exited 0.
func (r *rank) wait() {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(procGuard):
		r.cmd.Process.Kill()
		<-r.done
		r.t.Fatalf("%s still ran after %s; stderr:\n%s", r.name, procGuard, r.stderr.String())
	}
	if r.err != nil {
		r.t.Fatalf("%s: %v; stderr:\n%s", r.name, r.err, r.stderr.String())
	}
}

func (r *rank) kill() {
	r.t.Helper()
	if err := r.cmd.Process.Kill(); err != nil {
		r.t.Fatal(err)
	}
	<-r.done
}

// call is one line of the double's trace: the OS thread, the function
// and the thread's current device ("unset": it never set one).
type call struct{ tid, name, dev string }

func readTrace(t *testing.T, path string) []call {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var calls []call
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("trace line %q", l)
		}
		calls = append(calls, call{f[0], f[1], f[2]})
	}
	return calls
}

func count(calls []call, name string) int {
	n := 0
	for _, c := range calls {
		if c.name == name {
			n++
		}
	}
	return n
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not say %q", what, s, sub)
		}
	}
}

func TestVersionString(t *testing.T) {
	for code, want := range map[int]string{22803: "2.28.3", 22600: "2.26.0", 21003: "2.10.3", 2708: "2.7.8", 2406: "2.4.6"} {
		if got := ncclVersionString(code); got != want {
			t.Errorf("ncclVersionString(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestLoadMissingLibrary(t *testing.T) {
	lib := fakenccl.BuildForTest(t)
	t.Setenv(EnvNCCLLib, "")
	t.Setenv(EnvCUDARTLib, "")
	missing := filepath.Join(t.TempDir(), "libnccl.so.2")
	_, err := Load(missing, lib)
	if err == nil {
		t.Fatal("Load of a missing libnccl succeeded")
	}
	mustContain(t, "error", err.Error(), missing, "No such file", "--nccl-lib", "$"+EnvNCCLLib, "libnccl2", "nvidia-nccl-cu13")

	t.Setenv(EnvNCCLLib, missing+".env")
	_, err = Load("", lib)
	if err == nil {
		t.Fatal("Load of a missing libnccl from the environment succeeded")
	}
	mustContain(t, "error", err.Error(), missing+".env", "(from $"+EnvNCCLLib+")")

	t.Setenv(EnvNCCLLib, "")
	missingRT := filepath.Join(t.TempDir(), "libcudart.so.13")
	_, err = Load(lib, missingRT)
	if err == nil {
		t.Fatal("Load of a missing libcudart succeeded")
	}
	mustContain(t, "error", err.Error(), missingRT, "--cudart-lib", "$"+EnvCUDARTLib, "CUDA 13 runtime")

	// Nothing named: the sonames, each named in the error (unless this
	// machine has a CUDA runtime).
	if _, err := Load(lib, ""); err != nil {
		mustContain(t, "error", err.Error(), cudartSonames...)
	} else {
		t.Log("this machine has a CUDA runtime: the soname search found it")
	}
}

func TestLoadMissingSymbol(t *testing.T) {
	lib := fakenccl.BuildForTest(t)
	_, err := Load("libc.so.6", "libc.so.6")
	if err == nil {
		t.Fatal("Load took libc for libnccl")
	}
	mustContain(t, "error", err.Error(), "ncclGetVersion", "libc.so.6", "NCCL 2")
	_, err = Load(lib, "libc.so.6")
	if err == nil {
		t.Fatal("Load took libc for libcudart")
	}
	mustContain(t, "error", err.Error(), "cudaGetDeviceCount", "libc.so.6", "CUDA 13 runtime")
}

func TestLoadDouble(t *testing.T) {
	lib, l := fake(t)
	l2, err := Load(lib, lib)
	if err != nil {
		t.Fatal(err)
	}
	if l2 != l {
		t.Error("loading the same paths again gave another *Libs")
	}
	if v := l.Version(); v != "2.26.0" {
		t.Errorf("Version %q, want the double's 2.26.0", v)
	}
	if v := l.CUDAVersion(); v != "13.0" {
		t.Errorf("CUDAVersion %q, want the double's 13.0", v)
	}
	if n, c := l.Paths(); n != lib || c != lib {
		t.Errorf("Paths %q, %q, want %q for both", n, c, lib)
	}
	want := 8
	if s := os.Getenv("VDPP_FAKE_CUDA_DEVICES"); s != "" {
		want, _ = strconv.Atoi(s)
	}
	if n, err := l.Devices(); err != nil || n != want {
		t.Errorf("Devices %d, %v, want %d", n, err, want)
	}
	a, b := newID(t, l), newID(t, l)
	if len(a) != UniqueIDSize || bytes.Equal(a, b) {
		t.Errorf("two unique ids: %q and %q", a, b)
	}
}

func TestJoinRefused(t *testing.T) {
	_, l := fake(t)
	id := newID(t, l)
	ctx := context.Background()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{ID: id, Ranks: 2, Rank: 2}, "rank 2 of 2"},
		{Config{ID: id, Ranks: 2, Rank: -1}, "rank -1 of 2"},
		{Config{ID: id[:5], Ranks: 2, Rank: 0}, "5 bytes"},
		{Config{ID: id, Ranks: 2, Rank: 0, Device: 8}, "cudaSetDevice"},
	} {
		e, err := l.Join(ctx, c.cfg)
		if err == nil {
			e.Close()
			t.Errorf("Join %+v succeeded", c.cfg)
			continue
		}
		mustContain(t, "error", err.Error(), c.want)
	}
}

func TestJoinAlone(t *testing.T) {
	lib, l := fake(t)
	t.Run("ctx", func(t *testing.T) {
		r := spawn(t, lib, spawnOpts{role: "alone", id: newID(t, l), ranks: 2, rank: 0, arg: "ctx"})
		got := r.line("err")
		r.wait()
		mustContain(t, "Join's error", got, "deadline=true", "rank 0 of 2 (device 0)", "ncclCommInitRank", "some rank did not join")
	})
	t.Run("init", func(t *testing.T) {
		r := spawn(t, lib, spawnOpts{role: "alone", id: newID(t, l), ranks: 2, rank: 0, arg: "init",
			env: []string{"VDPP_FAKE_NCCL_INIT_TIMEOUT=300ms"}})
		got := r.line("err")
		r.wait()
		mustContain(t, "Join's error", got, "deadline=false", "ncclSystemError", "waited 300ms for ranks [1]")
	})
}

// TestChain joins communicators of 2 and 3 ranks and streams messages
// down the chain; with 3, the middle rank receives the next message while
// it sends the previous one.
func TestChain(t *testing.T) {
	lib, l := fake(t)
	for _, c := range []struct{ ranks, count int }{{2, 5}, {3, 200}} {
		t.Run(fmt.Sprint(c.ranks, "ranks"), func(t *testing.T) {
			seed := rand.Uint64()
			t.Logf("seed %d", seed)
			id := newID(t, l)
			rs := make([]*rank, c.ranks)
			for i := range rs {
				rs[i] = spawn(t, lib, spawnOpts{role: "chain", id: id, ranks: c.ranks, rank: i, dev: i, arg: fmt.Sprintf("%d,%d", seed, c.count)})
			}
			for _, r := range rs {
				r.line("done")
				r.wait()
			}
			if c.ranks == 3 {
				calls := readTrace(t, rs[1].trace)
				t.Logf("the middle rank issued %d sends and %d receives, %d of them in pairs in a group",
					count(calls, "ncclSend"), count(calls, "ncclRecv"), 2*count(calls, "ncclGroupStart"))
			}
		})
	}
}

// TestRoundTrip sends messages of many sizes, growing and shrinking, from
// rank 0 to rank 1 and back, byte for byte.
func TestRoundTrip(t *testing.T) {
	lib, l := fake(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	id := newID(t, l)
	rs := []*rank{
		spawn(t, lib, spawnOpts{role: "pair", id: id, ranks: 2, rank: 0, dev: 0, arg: fmt.Sprint(seed)}),
		spawn(t, lib, spawnOpts{role: "pair", id: id, ranks: 2, rank: 1, dev: 1, arg: fmt.Sprint(seed)}),
	}
	largest := 0
	sizes := pairSizes(seed)
	for _, n := range sizes {
		largest = max(largest, n)
	}
	for _, r := range rs {
		var snd, rcv, msgs int
		st := r.line("staging")
		if _, err := fmt.Sscanf(st, "staging send=%d recv=%d messages=%d", &snd, &rcv, &msgs); err != nil {
			t.Fatalf("%s: %q: %v", r.name, st, err)
		}
		if snd < largest || rcv < largest || msgs != len(sizes) {
			t.Errorf("%s: %q: staging smaller than the largest message (%d) or messages not %d", r.name, st, largest, len(sizes))
		}
		mustContain(t, r.name, r.line("send after close"), "closed=true")
		r.line("done")
		r.wait()
		calls := readTrace(t, r.trace)
		for _, p := range [][2]string{{"cudaMalloc", "cudaFree"}, {"cudaMallocHost", "cudaFreeHost"}} {
			a, f := count(calls, p[0]), count(calls, p[1])
			if a != f {
				t.Errorf("%s: %d %s, %d %s", r.name, a, p[0], f, p[1])
			}
			// Each buffer (send, receive) grows on some messages only and is
			// reused on the others.
			if a == 0 || a >= 2*len(sizes) {
				t.Errorf("%s: %d %s for %d messages each way", r.name, a, p[0], len(sizes))
			}
		}
		if count(calls, "ncclCommDestroy") != 1 || count(calls, "ncclCommAbort") != 0 {
			t.Errorf("%s: Close did not destroy the communicator (exactly once, without abort)", r.name)
		}
	}
}

// TestEngineThread: Join runs on a goroutine that never locked its thread,
// while other goroutines keep the scheduler busy; every CUDA and NCCL call
// of the endpoint must come from one OS thread whose current device is
// the rank's.
func TestEngineThread(t *testing.T) {
	lib, l := fake(t)
	id := newID(t, l)
	devs := []int{3, 5}
	rs := make([]*rank, 2)
	for i := range rs {
		rs[i] = spawn(t, lib, spawnOpts{role: "pair", id: id, ranks: 2, rank: i, dev: devs[i], arg: "7,churn"})
	}
	engine := map[string]bool{}
	for _, f := range strings.Fields(`cudaSetDevice cudaStreamCreateWithFlags ncclCommInitRank cudaMalloc cudaMallocHost
		cudaMemcpyAsync ncclSend ncclRecv ncclGroupStart ncclGroupEnd cudaStreamQuery ncclCommGetAsyncError
		ncclCommDestroy ncclCommAbort cudaFree cudaFreeHost cudaStreamDestroy`) {
		engine[f] = true
	}
	for i, r := range rs {
		r.line("done")
		r.wait()
		calls := readTrace(t, r.trace)
		var tid string
		seen := map[string]bool{}
		for _, c := range calls {
			if !engine[c.name] {
				continue
			}
			if tid == "" {
				tid = c.tid
				if c.name != "cudaSetDevice" {
					t.Errorf("%s: the endpoint's first call is %s, not cudaSetDevice", r.name, c.name)
				}
			}
			if c.tid != tid {
				t.Fatalf("%s: %s on thread %s, the endpoint's other calls on thread %s", r.name, c.name, c.tid, tid)
			}
			if c.dev != strconv.Itoa(devs[i]) {
				t.Fatalf("%s: %s with current device %s, want %d", r.name, c.name, c.dev, devs[i])
			}
			seen[c.name] = true
		}
		for _, f := range []string{"ncclCommInitRank", "ncclSend", "ncclRecv", "cudaMemcpyAsync", "cudaMalloc", "cudaStreamQuery", "ncclCommDestroy"} {
			if !seen[f] {
				t.Errorf("%s: no %s in the trace", r.name, f)
			}
		}
	}
}

// TestGroupedExchange: both ranks send to and receive from each other at
// once, with both operations queued when the engine takes work: each
// round must be one group (issued alone, the two sends would each wait
// for the other's receive).
func TestGroupedExchange(t *testing.T) {
	lib, l := fake(t)
	id := newID(t, l)
	const rounds = 20
	rs := make([]*rank, 2)
	for i := range rs {
		rs[i] = spawn(t, lib, spawnOpts{role: "exchange", id: id, ranks: 2, rank: i, dev: i, arg: fmt.Sprint(rounds)})
	}
	for _, r := range rs {
		r.line("done")
		r.wait()
		calls := readTrace(t, r.trace)
		if s, e := count(calls, "ncclGroupStart"), count(calls, "ncclGroupEnd"); s != rounds || e != rounds {
			t.Errorf("%s: %d ncclGroupStart, %d ncclGroupEnd for %d rounds", r.name, s, e, rounds)
		}
	}
}

// TestMismatchedSizes: a send of 4096 bytes meets a receive of 2048; both
// sides must fail with NCCL's asynchronous error, not their deadline.
func TestMismatchedSizes(t *testing.T) {
	lib, l := fake(t)
	id := newID(t, l)
	rs := make([]*rank, 2)
	for i := range rs {
		rs[i] = spawn(t, lib, spawnOpts{role: "mismatch", id: id, ranks: 2, rank: i, dev: i})
	}
	want := []string{"rank 0: send of 4096 bytes to rank 1", "rank 1: recv of 2048 bytes from rank 0"}
	for i, r := range rs {
		got := r.line("err")
		mustContain(t, r.name+"'s error", got, "deadline=false", "ncclInvalidUsage", want[i],
			"rank 0 sends 4096 x uint8 to rank 1, which posted a receive of 2048 x uint8")
		r.line("done")
		r.wait()
		if n := count(readTrace(t, r.trace), "ncclCommAbort"); n != 1 {
			t.Errorf("%s: %d ncclCommAbort, want 1", r.name, n)
		}
	}
}

// TestKilledPeer: a rank dies (SIGKILL) while the other has an operation
// with it pending (recv: after they had exchanged a message; send: before
// they ever connected). The survivor's operation fails with NCCL's remote
// error, and Abort and Close return.
func TestKilledPeer(t *testing.T) {
	lib, l := fake(t)
	for _, mode := range []string{"recv", "send"} {
		t.Run(mode, func(t *testing.T) {
			id := newID(t, l)
			survivor := spawn(t, lib, spawnOpts{role: "killed", id: id, ranks: 2, rank: 0, dev: 0, arg: mode})
			victim := spawn(t, lib, spawnOpts{role: "killed", id: id, ranks: 2, rank: 1, dev: 1, arg: mode})
			victim.line("ready")
			if mode == "recv" {
				survivor.line("pending")
			}
			victim.kill()
			if mode == "send" {
				fmt.Fprintln(survivor.stdin, "go")
			}
			got := survivor.line("err")
			mustContain(t, "the survivor's error", got, "deadline=false", "ncclRemoteError", "rank 1 closed its connection", "rank 0: "+mode)
			survivor.line("aborted")
			survivor.wait()
		})
	}
}

// TestCancelPendingRecv: the ctx of a receive the engine has issued ends;
// the receive fails with the ctx's cause, the communicator is aborted and
// a later send fails with the same cause.
func TestCancelPendingRecv(t *testing.T) {
	lib, l := fake(t)
	id := newID(t, l)
	r0 := spawn(t, lib, spawnOpts{role: "cancel", id: id, ranks: 2, rank: 0, dev: 0})
	r1 := spawn(t, lib, spawnOpts{role: "cancel", id: id, ranks: 2, rank: 1, dev: 1})
	r1.line("joined")
	mustContain(t, "the receive's error", r0.line("recv"), "wraps=true", errCancelTest.Error(), "rank 0: recv of 100 bytes from rank 1")
	mustContain(t, "the later send's error", r0.line("later"), "wraps=true", "endpoint aborted")
	r0.line("done")
	r0.wait()
	calls := readTrace(t, r0.trace)
	if n := count(calls, "ncclCommAbort"); n != 1 {
		t.Errorf("%d ncclCommAbort, want 1", n)
	}
	if n := count(calls, "ncclCommDestroy"); n != 0 {
		t.Errorf("ncclCommDestroy after ncclCommAbort")
	}
	r1.stdin.Close()
	r1.wait()
}
