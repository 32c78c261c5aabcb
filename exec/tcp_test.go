package exec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdpp/vdpp/internal/fakenccl"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// Worker processes of the TCP tests are this test binary, re-executed with
// these environment variables set.
const (
	envWorker  = "VDPP_EXEC_TEST_WORKER"   // device name
	envRdv     = "VDPP_EXEC_TEST_RDV"      // rendezvous address
	envPlan    = "VDPP_EXEC_TEST_PLAN"     // handoff mode of tcpPlan, or "other"
	envCrashAt = "VDPP_EXEC_TEST_CRASH_AT" // device:call — exit(3) at that UNet call
	envSlowAt  = "VDPP_EXEC_TEST_SLOW_AT"  // call:ms:path — at that UNet call, create path, then sleep ms
	envNCCL    = "VDPP_EXEC_TEST_NCCL"     // set: the plan's transport is nccl (ncclPlan)
	envHost    = "VDPP_EXEC_TEST_HOST"     // device:host — the plan puts that device on that host
)

func TestMain(m *testing.M) {
	if dev := os.Getenv(envWorker); dev != "" {
		os.Exit(workerMain(dev))
	}
	// Everything the tests and their worker processes leave in the
	// temporary directory (the NCCL test double's socket folders, which a
	// killed rank cannot remove) goes into one folder, removed at the end.
	tmp, err := os.MkdirTemp("", "vdpp-exec-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	fakenccl.Cleanup()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// tcpPlan is the plan of the TCP tests: 3 uneven stages and a second
// single-stage pipeline (a hybrid), 5 samples.
func tcpPlan(handoff string) *plan.Plan {
	p := testPlan("tcp", 6, 5, 1, [][2]int{{0, 0}, {1, 4}, {5, 5}}, [][2]int{{0, 5}})
	p.Layout.Handoff = plan.Handoff(handoff)
	p.Transport = "tcp"
	return p
}

func workerMain(dev string) int {
	name := os.Getenv(envPlan)
	p := tcpPlan(name)
	switch name {
	case "other":
		p = tcpPlan("blocking")
		p.Workload.Seed++
	case "single":
		p = singleTCPPlan()
	case "idle":
		p = idleTCPPlan()
	}
	if os.Getenv(envNCCL) != "" {
		toNCCL(p)
	}
	if c := os.Getenv(envHost); c != "" {
		putOnHost(p, c)
	}
	f := fakeFactory(fakeModel{})
	if c := os.Getenv(envSlowAt); c != "" {
		var at, ms int
		var path string
		fmt.Sscanf(strings.Replace(c, ":", " ", 2), "%d %d %s", &at, &ms, &path)
		inner := f
		f = func(d plan.Device, st plan.Stage) (models.Model, error) {
			m, err := inner(d, st)
			return &slowModel{Model: m, at: at, sleep: time.Duration(ms) * time.Millisecond, marker: path}, err
		}
	}
	if c := os.Getenv(envCrashAt); c != "" {
		var cdev string
		var at int
		fmt.Sscanf(strings.Replace(c, ":", " ", 1), "%s %d", &cdev, &at)
		inner := f
		f = func(d plan.Device, st plan.Stage) (models.Model, error) {
			m, err := inner(d, st)
			if d.Name == cdev {
				return &crashModel{Model: m, at: at}, err
			}
			return m, err
		}
	}
	err := RunWorker(context.Background(), WorkerConfig{Plan: p, Device: dev, Rendezvous: os.Getenv(envRdv), Factory: f, Images: fakeImages(p)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// putOnHost applies a "device:host" setting to p.
func putOnHost(p *plan.Plan, c string) {
	dev, host, _ := strings.Cut(c, ":")
	for i := range p.Devices {
		if p.Devices[i].Name == dev {
			p.Devices[i].Host = host
		}
	}
}

// TestTCPWorkerOnWrongHost: a plan that puts a device on another host is
// refused before any worker starts when the coordinator would start the
// workers here; with external workers, a worker that joins from a host
// other than its device's is refused, naming both. A worker on the named
// host (here: this one's name) joins.
func TestTCPWorkerOnWrongHost(t *testing.T) {
	here, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	elsewhere := "not-" + here
	p := singleTCPPlan()
	putOnHost(p, "cpu0:"+elsewhere)
	started := false
	wc := func(dev, rdv string) (*osexec.Cmd, error) { started = true; return workerCommand("single")(dev, rdv) }
	_, err = Run(context.Background(), p, nil, Options{Images: fakeImages(p), WorkerCommand: wc})
	if err == nil || !strings.Contains(err.Error(), "device cpu0 runs on host "+elsewhere) || !strings.Contains(err.Error(), "external workers") || started {
		t.Errorf("coordinator-started workers for another host: started %v, %v", started, err)
	}

	const token = "0123456789abcdef0123456789abcdef"
	addrs := make(chan string, 1)
	go func() {
		addr := <-addrs
		cmd, _ := workerCommand("single", envHost+"=cpu0:"+elsewhere, EnvWorkerToken+"="+token)("cpu0", addr)
		cmd.Run()
	}()
	_, err = Run(context.Background(), p, nil, Options{Images: fakeImages(p), ExternalWorkers: true, Token: token,
		Listen: "127.0.0.1:0", Timeout: time.Minute, Listening: func(a string) { addrs <- a }})
	if err == nil {
		t.Fatal("an external worker on the wrong host joined")
	}
	for _, want := range []string{"device cpu0", fmt.Sprintf("from host %q", here), "on host " + elsewhere} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// On its device's host, named or by address (loopback is one of this
	// machine's), a worker joins.
	for _, host := range []string{here, "127.0.0.1"} {
		p = singleTCPPlan()
		putOnHost(p, "cpu0:"+host)
		if _, err := Run(context.Background(), p, nil, Options{OutDir: t.TempDir(), Images: fakeImages(p), WorkerCommand: workerCommand("single", envHost+"=cpu0:"+host)}); err != nil {
			t.Errorf("a worker on its device's host %s: %v", host, err)
		}
	}
}

// crashModel kills its process at its at-th UNet call, as a crashed
// runtime would.
type crashModel struct {
	models.Model
	at, calls int
}

func (m *crashModel) UNet(in models.UNetInput, out []float32) error {
	m.calls++
	if m.calls == m.at {
		fmt.Fprintln(os.Stderr, "crash model: dying")
		os.Exit(3)
	}
	return m.Model.UNet(in, out)
}

// slowModel, at its at-th UNet call, creates the file marker (telling the
// test that the call has started) and then sleeps.
type slowModel struct {
	models.Model
	at, calls int
	sleep     time.Duration
	marker    string
}

func (m *slowModel) UNet(in models.UNetInput, out []float32) error {
	m.calls++
	if m.calls == m.at {
		if err := os.WriteFile(m.marker, nil, 0o644); err != nil {
			return err
		}
		time.Sleep(m.sleep)
	}
	return m.Model.UNet(in, out)
}

// singleTCPPlan is one single-stage pipeline (one worker process), 2
// steps, 3 samples released together.
func singleTCPPlan() *plan.Plan {
	p := testPlan("single", 2, 3, 1, [][2]int{{0, 1}})
	p.Transport = "tcp"
	return p
}

func workerCommand(plan string, extra ...string) func(dev, rdv string) (*osexec.Cmd, error) {
	return func(dev, rdv string) (*osexec.Cmd, error) {
		cmd := osexec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envWorker+"="+dev, envRdv+"="+rdv, envPlan+"="+plan)
		cmd.Env = append(cmd.Env, extra...)
		return cmd, nil
	}
}

// TestTCPMatchesInproc runs the same plan with one worker process per
// device over loopback TCP and in-process, and compares the outputs byte
// for byte.
func TestTCPMatchesInproc(t *testing.T) {
	for _, handoff := range []string{"blocking", "buffered"} {
		t.Run(handoff, func(t *testing.T) {
			p := tcpPlan(handoff)
			inDir, tcpDir := t.TempDir(), t.TempDir()
			ip := tcpPlan(handoff)
			ip.Transport = "inproc"
			if _, err := runPlan(t, ip, fakeFactory(fakeModel{}), Options{OutDir: inDir}); err != nil {
				t.Fatal(err)
			}
			var progress []int
			res, err := Run(context.Background(), p, nil, Options{
				OutDir: tcpDir, Images: fakeImages(p), WorkerCommand: workerCommand(handoff),
				Progress: func(e ProgressEvent) { progress = append(progress, e.Done) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Done != 5 || len(res.Outputs) != 5 || len(progress) != 5 || progress[4] != 5 {
				t.Fatalf("done %d, outputs %d, progress %v: want 5 each", res.Done, len(res.Outputs), progress)
			}
			// Spans come from four processes, on clocks aligned through
			// the host's wall clock: causality must hold across them.
			if err := timeline.ValidateSteps(res.Timeline, 6); err != nil {
				t.Errorf("cross-process timeline: %v", err)
			}
			kinds := map[timeline.Kind]int{}
			for _, s := range res.Timeline.Spans {
				kinds[s.Kind]++
			}
			// 3 samples cross 2 links in pipeline 0: 6 sends and 6 recvs.
			if kinds[timeline.KindSend] != 6 || kinds[timeline.KindRecv] != 6 || kinds[timeline.KindStep] != 3*3+2 {
				t.Errorf("span kinds %v: want 6 send, 6 recv, 11 step", kinds)
			}
			in, got := readOutputs(t, inDir), readOutputs(t, tcpDir)
			if len(in) != 20 || len(got) != len(in) {
				t.Fatalf("%d tcp files, %d in-process files, want 20", len(got), len(in))
			}
			for k, v := range in {
				if string(got[k]) != string(v) {
					t.Errorf("%s differs between tcp and in-process runs", k)
				}
			}
		})
	}
}

// TestTCPFailures: a worker that dies names its stage and samples; a
// worker with another plan is refused at the rendezvous.
func TestTCPFailures(t *testing.T) {
	p := tcpPlan("blocking")
	dir := t.TempDir()
	_, err := Run(context.Background(), p, nil, Options{OutDir: dir, Images: fakeImages(p),
		// cpu1 runs steps 1..4 (4 UNet calls a sample) for pipeline 0, which
		// gets samples 0, 2, 4: its 5th call is the first of sample 2.
		WorkerCommand: workerCommand("blocking", envCrashAt+"=cpu1:5")})
	if err == nil {
		t.Fatal("crashed worker: no error")
	}
	for _, want := range []string{"device cpu1", "stage 1 of pipeline 0", "exit status 3", "samples [2]", "crash model: dying"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("crashed worker: error %q does not say %q", err, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("partial output %s", e.Name())
		}
	}

	_, err = Run(context.Background(), p, nil, Options{Images: fakeImages(p), WorkerCommand: workerCommand("other")})
	if err == nil || !strings.Contains(err.Error(), "plan mismatch") {
		t.Errorf("mismatched plan: %v", err)
	}
}

// TestTCPRendezvousTimeout: workers that never join fail the run clearly
// once the timeout passes.
func TestTCPRendezvousTimeout(t *testing.T) {
	p := tcpPlan("blocking")
	_, err := Run(context.Background(), p, nil, Options{Images: fakeImages(p), Timeout: 200 * time.Millisecond,
		WorkerCommand: func(dev, rdv string) (*osexec.Cmd, error) { return osexec.Command("sleep", "10"), nil }})
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") || !strings.Contains(err.Error(), "cpu0") {
		t.Errorf("error %v, want a rendezvous timeout naming the missing devices", err)
	}
}

// TestTCPStopTimeout: Options.Timeout bounds the rendezvous and an
// abandon, not the samples an interrupt in finish mode lets complete. In
// both modes sample 1 is admitted when its first UNet call starts (the
// test then cancels), and that call lasts longer than the timeout: finish
// completes it; abandon cannot stop the worker within the timeout, which
// is killed, and the error says so.
func TestTCPStopTimeout(t *testing.T) {
	for _, mode := range []string{InterruptFinish, InterruptAbandon} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := singleTCPPlan()
			marker := filepath.Join(t.TempDir(), "started")
			const timeout = time.Second
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					if _, err := os.Stat(marker); err == nil {
						cancel()
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			slow := fmt.Sprintf("%s=3:%d:%s", envSlowAt, (timeout + 500*time.Millisecond).Milliseconds(), marker)
			res, err := Run(ctx, p, nil, Options{Images: fakeImages(p), Timeout: timeout, OnInterrupt: mode,
				WorkerCommand: workerCommand("single", slow)})
			if mode == InterruptAbandon {
				for _, want := range []string{"did not stop within 1s", "killed", "cpu0 (stage 0 of pipeline 0, samples [1])"} {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("stuck worker: error %v does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("finish after an interrupt: %v", err)
			}
			if !res.Interrupted || res.Done != 2 {
				t.Errorf("interrupted %v, %d samples done: want interrupted, samples 0 and 1 done", res.Interrupted, res.Done)
			}
		})
	}
}

// idleTCPPlan is singleTCPPlan with samples released a minute apart: after
// sample 0 its worker sits idle, waiting for sample 1.
func idleTCPPlan() *plan.Plan {
	p := singleTCPPlan()
	p.Name = "idle"
	p.Workload.Arrival = plan.Arrival{Kind: "interval", IntervalMS: 60000}
	return p
}

// TestTCPIdleWorkerDeath: a worker killed while idle, after it finished a
// micro-batch, is reported as holding no samples (not the last micro-batch
// it took). The test kills it from the progress callback of sample 0: the
// worker reports itself idle before the sample's done message.
func TestTCPIdleWorkerDeath(t *testing.T) {
	p := idleTCPPlan()
	var mu sync.Mutex
	cmds := map[string]*osexec.Cmd{}
	wc := workerCommand("idle")
	var progress []int
	_, err := Run(context.Background(), p, nil, Options{Images: fakeImages(p),
		WorkerCommand: func(dev, rdv string) (*osexec.Cmd, error) {
			cmd, err := wc(dev, rdv)
			mu.Lock()
			cmds[dev] = cmd
			mu.Unlock()
			return cmd, err
		},
		Progress: func(e ProgressEvent) {
			progress = append(progress, e.Done)
			mu.Lock()
			cmds["cpu0"].Process.Kill()
			mu.Unlock()
		}})
	if err == nil {
		t.Fatal("killed worker: no error")
	}
	if len(progress) != 1 {
		t.Errorf("progress %v, want sample 0 only", progress)
	}
	for _, want := range []string{"device cpu0", "stage 0 of pipeline 0", "before reporting", "killed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("idle worker killed: error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "samples") {
		t.Errorf("idle worker killed: error %q names samples, but the worker held none", err)
	}
}

// recordingCommand wraps a worker command, keeping each command it makes.
func recordingCommand(wc func(dev, rdv string) (*osexec.Cmd, error)) (func(dev, rdv string) (*osexec.Cmd, error), func(dev string) *osexec.Cmd) {
	var mu sync.Mutex
	cmds := map[string]*osexec.Cmd{}
	return func(dev, rdv string) (*osexec.Cmd, error) {
			cmd, err := wc(dev, rdv)
			mu.Lock()
			cmds[dev] = cmd
			mu.Unlock()
			return cmd, err
		}, func(dev string) *osexec.Cmd {
			mu.Lock()
			defer mu.Unlock()
			return cmds[dev]
		}
}

// TestTCPDecodeWorkerKilled: the worker that decodes and writes the
// outputs is killed mid-run (inside the UNet call of sample 2, after
// samples 0 and 1 were written and reported). The run fails naming it,
// and its result counts the two samples whose folders are on disk (it
// said 0 done before: the dead worker's records were lost with it).
func TestTCPDecodeWorkerKilled(t *testing.T) {
	p := singleTCPPlan()
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "started")
	// 2 steps a sample: call 5 is sample 2's first step; it then sleeps.
	slow := fmt.Sprintf("%s=5:60000:%s", envSlowAt, marker)
	wc, cmdOf := recordingCommand(workerCommand("single", slow))
	done := make(chan int, 8)
	killed := make(chan error, 1)
	go func() {
		// Bounded waits: two done messages, then the marker.
		for n := 0; n < 2; {
			select {
			case n = <-done:
			case <-time.After(time.Minute):
				killed <- fmt.Errorf("no progress")
				return
			}
		}
		for i := 0; ; i++ {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if i > 6000 {
				killed <- fmt.Errorf("sample 2 never started")
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		killed <- cmdOf("cpu0").Process.Kill()
	}()
	res, err := Run(context.Background(), p, nil, Options{OutDir: dir, Images: fakeImages(p), WorkerCommand: wc,
		Progress: func(e ProgressEvent) { done <- e.Done }})
	if kerr := <-killed; kerr != nil {
		t.Fatal(kerr)
	}
	if err == nil {
		t.Fatal("killed worker: no error")
	}
	for _, want := range []string{"device cpu0", "before reporting", "samples [2]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if res == nil {
		t.Fatal("no result with the error")
	}
	entries, _ := os.ReadDir(dir)
	var onDisk []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "sample_") {
			onDisk = append(onDisk, filepath.Join(dir, e.Name()))
		}
	}
	if res.Done != 2 || len(onDisk) != 2 || len(res.Outputs) != 2 || len(res.Timeline.Samples) != 2 {
		t.Fatalf("done %d, outputs %v, records %d, folders on disk %v: want samples 0 and 1 in each", res.Done, res.Outputs, len(res.Timeline.Samples), onDisk)
	}
	for i, d := range onDisk {
		if res.Outputs[i] != d || res.Timeline.Samples[i].ID != i {
			t.Errorf("output %d: %s (record of sample %d), on disk %s", i, res.Outputs[i], res.Timeline.Samples[i].ID, d)
		}
	}
}

// TestTCPInterruptedDuringStartup: a run cancelled while its workers are
// still starting (here they never join) is an interrupted run with an
// empty timeline, not a failure; the workers are stopped.
func TestTCPInterruptedDuringStartup(t *testing.T) {
	p := tcpPlan("blocking")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wc, cmdOf := recordingCommand(func(dev, rdv string) (*osexec.Cmd, error) { return osexec.Command("sleep", "60"), nil })
	res, err := Run(ctx, p, nil, Options{Images: fakeImages(p), WorkerCommand: wc})
	if err != nil {
		t.Fatalf("interrupted start-up: %v", err)
	}
	if res == nil || res.Timeline == nil || !res.Interrupted || res.Done != 0 || res.Total != 5 || len(res.Timeline.Spans) != 0 {
		t.Fatalf("result %+v: want interrupted, 0 of 5 done, an empty timeline", res)
	}
	if res.Timeline.Meta.Plan != p.Name {
		t.Errorf("timeline metadata %+v", res.Timeline.Meta)
	}
	for _, dev := range []string{"cpu0", "cpu3"} {
		if st := cmdOf(dev).ProcessState; st == nil || st.Success() {
			t.Errorf("worker %s: state %v, want killed", dev, st)
		}
	}
}

// TestTCPStrangersAtRendezvous: local processes that connect to the
// rendezvous before the workers (one sends garbage, one stays silent, one
// says hello with a wrong token for a real device) are dropped and logged;
// the run succeeds. Before, the garbage aborted the run at once, the
// silent one after the timeout, and the wrong token took cpu0's place.
// The token reaches the workers in their environment, never their
// command line.
func TestTCPStrangersAtRendezvous(t *testing.T) {
	p := singleTCPPlan()
	var mu sync.Mutex
	var logged []string
	var strangers []net.Conn
	defer func() {
		for _, c := range strangers {
			c.Close()
		}
	}()
	wc, cmdOf := recordingCommand(func(dev, rdv string) (*osexec.Cmd, error) {
		if len(strangers) == 0 {
			// Before any worker starts: the strangers come first.
			for _, send := range [][]byte{
				[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
				nil, // silent
				mustHello(t, control{Type: "hello", Device: "cpu0", PlanHash: p.Hash(), Token: strings.Repeat("ab", 32)}),
			} {
				c, err := net.Dial("tcp", rdv)
				if err != nil {
					return nil, err
				}
				strangers = append(strangers, c)
				if send != nil {
					if _, err := c.Write(send); err != nil {
						return nil, err
					}
				}
			}
		}
		return workerCommand("single")(dev, rdv)
	})
	res, err := Run(context.Background(), p, nil, Options{Images: fakeImages(p), WorkerCommand: wc, Timeout: 3 * time.Second,
		Log: func(m string) {
			mu.Lock()
			logged = append(logged, m)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatalf("strangers at the rendezvous failed the run: %v", err)
	}
	if res.Done != 3 {
		t.Errorf("%d samples done, want 3", res.Done)
	}
	mu.Lock()
	log := strings.Join(logged, "\n")
	mu.Unlock()
	for _, want := range []string{"bad frame length", "lacks this run's token"} {
		if !strings.Contains(log, want) || !strings.Contains(log, "dropped a connection from 127.0.0.1:") {
			t.Errorf("log does not say %q:\n%s", want, log)
		}
	}
	cmd := cmdOf("cpu0")
	var token string
	for _, e := range cmd.Env {
		if v, ok := strings.CutPrefix(e, EnvWorkerToken+"="); ok {
			token = v
		}
	}
	if len(token) != 64 {
		t.Fatalf("worker environment has token %q, want 64 hex digits", token)
	}
	if strings.Contains(strings.Join(cmd.Args, " "), token) {
		t.Errorf("the token is on the worker's command line %q", cmd.Args)
	}
}

// mustHello is a control frame with message m.
func mustHello(t *testing.T, m control) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := newControlConn(nopConn{&buf}).send(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nopConn is a net.Conn that only writes, into w.
type nopConn struct{ w *bytes.Buffer }

func (c nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c nopConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c nopConn) Close() error                     { return nil }
func (c nopConn) LocalAddr() net.Addr              { return nil }
func (c nopConn) RemoteAddr() net.Addr             { return nil }
func (c nopConn) SetDeadline(time.Time) error      { return nil }
func (c nopConn) SetReadDeadline(time.Time) error  { return nil }
func (c nopConn) SetWriteDeadline(time.Time) error { return nil }
