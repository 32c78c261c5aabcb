package exec

import (
	"bytes"
	"context"
	osexec "os/exec"
	"strings"
	"testing"
	"time"
)

// startExternal starts the worker process of device dev for the
// coordinator at addr, as a cluster's launcher would: this test binary,
// with the token in its environment (not from the coordinator).
func startExternal(t *testing.T, dev, addr, token string) (*osexec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := workerCmd(dev, addr, "blocking")
	cmd.Env = append(cmd.Env, EnvWorkerToken+"="+token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
}

// workerCmd is the command of workerCommand, with the test worker's
// environment.
func workerCmd(dev, addr, plan string) *osexec.Cmd {
	cmd, _ := workerCommand(plan)(dev, addr)
	return cmd
}

// TestExternalWorkers: a coordinator with external workers starts no
// process; it waits for the workers that someone else started, with the
// token it was given, and the run's outputs are those of an in-process
// run byte for byte. A worker with another token is refused and told why,
// and the run goes on.
func TestExternalWorkers(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	p := tcpPlan("blocking")
	inDir, extDir := t.TempDir(), t.TempDir()
	ip := tcpPlan("blocking")
	ip.Transport = "inproc"
	if _, err := runPlan(t, ip, fakeFactory(fakeModel{}), Options{OutDir: inDir}); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan string, 1)
	type done struct {
		res *Result
		err error
	}
	ran := make(chan done, 1)
	logged := make(chan string, 16)
	go func() {
		res, err := Run(context.Background(), p, nil, Options{
			OutDir: extDir, Images: fakeImages(p), ExternalWorkers: true, Token: token,
			Listen: "127.0.0.1:0", Timeout: 60 * time.Second,
			Listening: func(a string) { addrs <- a },
			Log: func(m string) {
				select {
				case logged <- m:
				default:
				}
			},
		})
		ran <- done{res, err}
	}()
	addr := <-addrs
	// A stranger with a wrong token, for a real device, first.
	bad, badErr := startExternal(t, "cpu0", addr, strings.Repeat("x", 32))
	if err := bad.Wait(); err == nil {
		t.Fatalf("a worker with a wrong token joined")
	}
	if !strings.Contains(badErr.String(), "refused this worker: wrong token") || strings.Contains(badErr.String(), token) {
		t.Errorf("wrong-token worker's stderr: %s", badErr)
	}
	select {
	case m := <-logged:
		if !strings.Contains(m, "lacks this run's token") || strings.Contains(m, token) {
			t.Errorf("coordinator logged %q", m)
		}
	case <-time.After(30 * time.Second):
		t.Error("the coordinator did not log the stranger")
	}
	var cmds []*osexec.Cmd
	for _, dev := range []string{"cpu0", "cpu1", "cpu2", "cpu3"} {
		cmd, _ := startExternal(t, dev, addr, token)
		cmds = append(cmds, cmd)
	}
	var d done
	select {
	case d = <-ran:
	case <-time.After(120 * time.Second):
		t.Fatal("the run with external workers did not end")
	}
	if d.err != nil {
		t.Fatal(d.err)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("worker %v: %v", c.Args, err)
		}
	}
	if d.res.Done != 5 {
		t.Errorf("done %d, want 5", d.res.Done)
	}
	in, got := readOutputs(t, inDir), readOutputs(t, extDir)
	if len(in) != 20 || len(got) != len(in) {
		t.Fatalf("%d files with external workers, %d in-process, want 20", len(got), len(in))
	}
	for k, v := range in {
		if !bytes.Equal(got[k], v) {
			t.Errorf("%s differs between external workers and in-process", k)
		}
	}
}

// TestExternalWorkersChecks: external workers need a token and exclude a
// worker command; a missing worker times out naming it and how to start it.
func TestExternalWorkersChecks(t *testing.T) {
	p := tcpPlan("blocking")
	_, err := Run(context.Background(), p, nil, Options{Images: fakeImages(p), ExternalWorkers: true})
	if err == nil || !strings.Contains(err.Error(), "need the run's token") {
		t.Errorf("external workers without a token: %v", err)
	}
	_, err = Run(context.Background(), p, nil, Options{Images: fakeImages(p), ExternalWorkers: true, Token: "t", WorkerCommand: workerCommand("blocking")})
	if err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("external workers with a worker command: %v", err)
	}
	_, err = Run(context.Background(), p, nil, Options{Images: fakeImages(p), ExternalWorkers: true, Token: "t", Timeout: 200 * time.Millisecond})
	for _, want := range []string{"timed out", "[cpu0 cpu1 cpu2 cpu3]", "start `vdexec worker`", "ranks 1 to 4"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no workers: error %v lacks %q", err, want)
		}
	}
}
