package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vdpp/vdpp/timeline"
)

// startVdexec starts this test binary as vdexec with args, its stderr
// read line by line into lines (closed at EOF), and returns the command.
func startVdexec(t *testing.T, env []string, args ...string) (*osexec.Cmd, <-chan string, *strings.Builder) {
	t.Helper()
	cmd := osexec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), envWorker+"=1"), env...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	all := &strings.Builder{}
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, lines, all
}

// waitLine reads lines (keeping them in all) until one holds want; false
// at EOF or after a minute.
func waitLine(lines <-chan string, all *strings.Builder, want string) bool {
	deadline := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return false
			}
			all.WriteString(l + "\n")
			if strings.Contains(l, want) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// drain keeps the rest of lines in all until EOF.
func drain(lines <-chan string, all *strings.Builder) {
	for l := range lines {
		all.WriteString(l + "\n")
	}
}

// children lists the processes whose parent is pid, with their command
// lines (from /proc).
func children(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to find the worker processes: %v", err)
	}
	out := map[int]string{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; cut after ')'.
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat)[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[p] = strings.ReplaceAll(string(cmdline), "\x00", " ")
	}
	return out
}

// waitExit waits (at most two minutes) for cmd and returns its exit code.
func waitExit(t *testing.T, cmd *osexec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *osexec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("vdexec did not exit")
	}
	return -1
}

// readMetrics reads dir/metrics.json.
func readMetrics(t *testing.T, dir string) runResult {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r runResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	return r
}

// TestRunTCPWorkerKilled kills the worker process that decodes and writes
// the samples (cpu1) once two samples are done. vdexec must exit 1 and
// still write a timeline and metrics that agree with the sample folders
// on disk, with the failure recorded; before, metrics.json said done 0,
// no error, beside the folders written.
func TestRunTCPWorkerKilled(t *testing.T) {
	needORT(t)
	p := writePlan(t, "transport: inproc", "transport: tcp")
	dir := filepath.Join(t.TempDir(), "run")
	cmd, lines, all := startVdexec(t, nil, "run", p, "--samples", "6", "--steps", "12", "--out", dir, "--timeout", "60s")
	if !waitLine(lines, all, "2/6 samples done") {
		drain(lines, all)
		t.Fatalf("no progress to 2 samples:\n%s", all)
	}
	killed := false
	for pid, cl := range children(t, cmd.Process.Pid) {
		if strings.Contains(cl, " worker ") && strings.Contains(cl, "--device cpu1") {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatalf("no worker process for cpu1 among %v", children(t, cmd.Process.Pid))
	}
	drain(lines, all)
	if code := waitExit(t, cmd); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, all)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	folders := 0
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "sample_") {
			folders++
		}
	}
	r := readMetrics(t, dir)
	if r.Done != folders || folders < 2 || r.Total != 6 || r.Interrupted {
		t.Errorf("metrics.json: done %d of %d, interrupted %v; %d sample folders on disk: want done = folders ≥ 2", r.Done, r.Total, r.Interrupted, folders)
	}
	if !strings.Contains(r.Error, "device cpu1") || !strings.Contains(r.Error, "exited before reporting") {
		t.Errorf("metrics.json error %q does not name the dead worker", r.Error)
	}
	if r.Metrics.Samples != r.Done {
		t.Errorf("metrics of %d samples, done %d", r.Metrics.Samples, r.Done)
	}
	tl, err := timeline.ReadFile(filepath.Join(dir, "timeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Samples) != folders || !strings.Contains(tl.Meta.Error, "device cpu1") || tl.Meta.PlannedSamples != 6 {
		t.Errorf("timeline.json: %d samples, error %q, planned %d: want %d, the dead worker, 6", len(tl.Samples), tl.Meta.Error, tl.Meta.PlannedSamples, folders)
	}
}

// TestRunInterruptedDuringStartup sends SIGINT to vdexec while its tcp
// workers are starting (they never join here): it must stop them, write
// the (empty) timeline and metrics as its message promises, and exit 130.
// Before, it exited 1 with "context canceled" and wrote nothing.
func TestRunInterruptedDuringStartup(t *testing.T) {
	needORT(t)
	p := writePlan(t, "transport: inproc", "transport: tcp")
	dir := filepath.Join(t.TempDir(), "run")
	cmd, lines, all := startVdexec(t, []string{envWorkerHang + "=1"}, "run", p, "--samples", "3", "--steps", "2", "--out", dir, "--timeout", "60s")
	// The workers are started inside the run, after the signal watch.
	var workers map[int]string
	for i := 0; i < 6000 && len(workers) < 2; i++ {
		time.Sleep(10 * time.Millisecond)
		workers = children(t, cmd.Process.Pid)
	}
	if len(workers) < 2 {
		t.Fatalf("worker processes %v, want 2", workers)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	drain(lines, all)
	if code := waitExit(t, cmd); code != 130 {
		t.Fatalf("exit %d, want 130:\n%s", code, all)
	}
	if !strings.Contains(all.String(), "run interrupted: 0 of 3 samples") {
		t.Errorf("stderr:\n%s", all)
	}
	r := readMetrics(t, dir)
	if !r.Interrupted || r.Done != 0 || r.Total != 3 || r.Error != "" {
		t.Errorf("metrics.json: %+v: want interrupted, 0 of 3 done, no error", r)
	}
	if tl, err := timeline.ReadFile(filepath.Join(dir, "timeline.json")); err != nil || !tl.Meta.Interrupted || len(tl.Samples) != 0 {
		t.Errorf("timeline.json: %v, %+v: want an empty timeline marked interrupted", err, tl)
	}
	for pid := range workers {
		if err := syscall.Kill(pid, 0); err == nil {
			// A zombie is gone too once reaped; give it a moment.
			time.Sleep(100 * time.Millisecond)
			if syscall.Kill(pid, 0) == nil {
				stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				if !strings.Contains(string(stat), ") Z") {
					t.Errorf("worker %d still runs after the interrupt", pid)
				}
			}
		}
	}
}
