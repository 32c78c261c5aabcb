package exec

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vdpp/vdpp/exec/nccl"
	"github.com/vdpp/vdpp/internal/fakenccl"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// The NCCL tests run against internal/fakenccl, a test double of
// libnccl's and libcudart's C ABI built from Go: the real path down to
// the dlopen'd functions, but bytes move through host memory and unix
// sockets. They show that the link, the communicator's set-up and the
// failure handling work; they do not show that real NCCL or a GPU ran.

// useFakeNCCL points this process and the workers it starts at the test
// double.
func useFakeNCCL(t *testing.T) {
	t.Helper()
	lib := fakenccl.BuildForTest(t)
	t.Setenv(nccl.EnvNCCLLib, lib)
	t.Setenv(nccl.EnvCUDARTLib, lib)
}

// toNCCL makes p a plan of transport nccl: compute stays on the CPU
// provider, each device hands its latents through its own CUDA device.
func toNCCL(p *plan.Plan) {
	p.Transport = plan.TransportNCCL
	for i := range p.Devices {
		p.Devices[i].Index = i
	}
}

// ncclPlan is tcpPlan over nccl.
func ncclPlan(handoff string) *plan.Plan {
	p := tcpPlan(handoff)
	toNCCL(p)
	return p
}

func ncclWorkers(handoff string, extra ...string) func(dev, rdv string) (*osexec.Cmd, error) {
	return workerCommand(handoff, append([]string{envNCCL + "=1"}, extra...)...)
}

// TestNCCLMatchesInproc runs the TCP tests' plan (three uneven stages and
// a single-stage pipeline: four ranks) over NCCL, one worker process per
// device, and compares its outputs byte for byte with an in-process run.
func TestNCCLMatchesInproc(t *testing.T) {
	useFakeNCCL(t)
	for _, handoff := range []string{"blocking", "buffered"} {
		t.Run(handoff, func(t *testing.T) {
			p := ncclPlan(handoff)
			inDir, ncclDir := t.TempDir(), t.TempDir()
			ip := tcpPlan(handoff)
			ip.Transport = plan.TransportInproc
			if _, err := runPlan(t, ip, fakeFactory(fakeModel{}), Options{OutDir: inDir}); err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), p, nil, Options{OutDir: ncclDir, Images: fakeImages(p), WorkerCommand: ncclWorkers(handoff)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Done != 5 || len(res.Outputs) != 5 {
				t.Fatalf("done %d, outputs %d: want 5", res.Done, len(res.Outputs))
			}
			if err := timeline.ValidateSteps(res.Timeline, 6); err != nil {
				t.Errorf("cross-process timeline: %v", err)
			}
			kinds := map[timeline.Kind]int{}
			for _, s := range res.Timeline.Spans {
				kinds[s.Kind]++
			}
			if kinds[timeline.KindSend] != 6 || kinds[timeline.KindRecv] != 6 {
				t.Errorf("span kinds %v: want 6 send, 6 recv", kinds)
			}
			in, got := readOutputs(t, inDir), readOutputs(t, ncclDir)
			if len(in) != 20 || len(got) != len(in) {
				t.Fatalf("%d nccl files, %d in-process files, want 20", len(got), len(in))
			}
			for k, v := range in {
				if string(got[k]) != string(v) {
					t.Errorf("%s differs between nccl and in-process runs", k)
				}
			}
		})
	}
}

// TestNCCLWorkerKilled: a worker that dies mid-run (inside a UNet call)
// fails the run, naming it; no other rank hangs in NCCL (the run
// returns, and every worker process has exited).
func TestNCCLWorkerKilled(t *testing.T) {
	useFakeNCCL(t)
	p := ncclPlan("blocking")
	wc, cmdOf := recordingCommand(ncclWorkers("blocking", envCrashAt+"=cpu1:5"))
	_, err := Run(context.Background(), p, nil, Options{OutDir: t.TempDir(), Images: fakeImages(p), WorkerCommand: wc})
	if err == nil {
		t.Fatal("crashed worker: no error")
	}
	for _, want := range []string{"device cpu1", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("crashed worker: error %q does not say %q", err, want)
		}
	}
	for _, dev := range []string{"cpu0", "cpu1", "cpu2", "cpu3"} {
		if c := cmdOf(dev); c == nil || c.ProcessState == nil {
			t.Errorf("worker %s still running after the run returned", dev)
		}
	}
}

// TestNCCLInterrupted: a run cancelled while its stages exchange
// micro-batches over NCCL ends as interrupted, and its workers leave
// (abandoning their pending NCCL operations) instead of hanging.
func TestNCCLInterrupted(t *testing.T) {
	useFakeNCCL(t)
	p := ncclPlan("buffered")
	marker := t.TempDir() + "/started"
	wc, cmdOf := recordingCommand(ncclWorkers("buffered", envSlowAt+"=3:2000:"+marker))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; i < 6000; i++ {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	res, err := Run(ctx, p, nil, Options{OutDir: t.TempDir(), Images: fakeImages(p), WorkerCommand: wc, OnInterrupt: "abandon", Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("interrupted run: %v", err)
	}
	if res == nil || !res.Interrupted || res.Done >= 5 {
		t.Fatalf("result %+v: want an interrupted run with samples left", res)
	}
	for _, dev := range []string{"cpu0", "cpu1", "cpu2", "cpu3"} {
		if c := cmdOf(dev); c == nil || c.ProcessState == nil {
			t.Errorf("worker %s still running after the run returned", dev)
		}
	}
}

// TestNCCLMismatchedSizes: a receiver that posts a receive of another size
// than the sender's send (a corrupt length, a bug) fails on both sides
// with NCCL's invalid-usage error, within the operations' time limit,
// instead of hanging.
func TestNCCLMismatchedSizes(t *testing.T) {
	useFakeNCCL(t)
	p := ncclPlan("blocking")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pair, err := newNCCLPair(ctx, handoff{blocking: true}, p.Devices[0], p.Devices[1])
	if err != nil {
		t.Fatal(err)
	}
	defer pair.close()
	errs := make(chan error, 2)
	go func() { errs <- ncclPeer{l: pair.a}.send(ctx, make([]byte, 4096)) }()
	go func() { errs <- ncclPeer{l: pair.b, prev: true}.recv(ctx, make([]byte, 2048)) }()
	for range 2 {
		err := <-errs
		if err == nil || !strings.Contains(err.Error(), "invalid usage") && !strings.Contains(err.Error(), "ncclInvalidUsage") {
			t.Errorf("mismatched sizes: %v, want NCCL's invalid usage", err)
		}
	}
	if ctx.Err() != nil {
		t.Errorf("the operations ran into the test's limit (%v) instead of failing", ctx.Err())
	}
}

// TestNCCLMissingLibrary: where NCCL does not load, a plan of transport
// nccl is refused before any work, naming the library looked for and
// what to use instead.
func TestNCCLMissingLibrary(t *testing.T) {
	t.Setenv(nccl.EnvNCCLLib, "/nonexistent/libnccl.so.2")
	p := ncclPlan("blocking")
	err := CheckTransport(p.Transport)
	if err == nil {
		t.Fatal("CheckTransport: no error without NCCL")
	}
	for _, want := range []string{"transport nccl cannot run here", "/nonexistent/libnccl.so.2", "tcp (one process per device)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	started := false
	wc := func(dev, rdv string) (*osexec.Cmd, error) { started = true; return nil, errors.New("unreachable") }
	if _, err := Run(context.Background(), p, nil, Options{Images: fakeImages(p), WorkerCommand: wc}); err == nil || !strings.Contains(err.Error(), "/nonexistent/libnccl.so.2") {
		t.Errorf("Run without NCCL: %v", err)
	}
	if started {
		t.Error("a worker was started for a plan whose transport cannot run")
	}
}

// TestNCCLPairBadDevice: when one rank of the profile's pair cannot join
// (a CUDA device this machine lacks), the pair fails with that rank's
// error instead of leaving the other rank waiting in ncclCommInitRank
// for as long as the context lasts.
func TestNCCLPairBadDevice(t *testing.T) {
	useFakeNCCL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := newNCCLPair(ctx, handoff{blocking: true}, plan.Device{Name: "a", Index: 0}, plan.Device{Name: "far", Index: 99})
	if err == nil || !strings.Contains(err.Error(), "cudaSetDevice") || !strings.Contains(err.Error(), "cuda device 99 (far)") {
		t.Errorf("pair with a missing device: %v, want the failed rank's cudaSetDevice error", err)
	}
	if ctx.Err() != nil {
		t.Errorf("the pair waited for the test's limit (%v) instead of failing", ctx.Err())
	}
}

// TestPairRefused: the profile measures an nccl hand-off in its process
// only between two GPUs of one host, and says why not otherwise.
func TestPairRefused(t *testing.T) {
	a0 := plan.Device{Name: "a", Index: 0}
	for _, c := range []struct {
		from, to plan.Device
		ok       bool
		want     string
	}{
		{a0, plan.Device{Name: "b", Index: 1}, true, ""},
		{a0, a0, false, "no stage of the plan hands off"},
		{a0, plan.Device{Name: "b", Index: 0}, true, "stays on CUDA device 0 (a to b)"},
		{plan.Device{Name: "a", Host: "n1"}, plan.Device{Name: "b", Index: 1, Host: "n2"}, true, "from host n1 to host n2"},
	} {
		got := pairRefused(c.from, c.to, c.ok)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("pairRefused(%s/%d@%s, %s/%d@%s, %v) = %q, want %q", c.from.Name, c.from.Index, c.from.Host, c.to.Name, c.to.Index, c.to.Host, c.ok, got, c.want)
		}
	}
}
