package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
)

// withSignal makes the next watcher receive sig as soon as it starts
// watching, as if the user pressed Ctrl-C (SIGINT) or the system sent
// SIGTERM.
func withSignal(t *testing.T, sig os.Signal) {
	t.Helper()
	notify, stop := notifySignals, stopSignals
	t.Cleanup(func() { notifySignals, stopSignals = notify, stop })
	notifySignals = func(c chan<- os.Signal) { c <- sig }
	stopSignals = func(chan<- os.Signal) {}
}

// A signal stops a long simulation: the exit status is the signal's, the
// message says how far it got, and nothing but the folder's manifest is
// written.
func TestInterrupt(t *testing.T) {
	for _, c := range []struct {
		sig  os.Signal
		name string
		code int
		args []string
	}{
		{os.Interrupt, "SIGINT", cliutil.ExitInterrupted, []string{"run", "--no-dp"}},
		{syscall.SIGTERM, "SIGTERM", cliutil.ExitTerminated, []string{"run"}},
		{syscall.SIGTERM, "SIGTERM", cliutil.ExitTerminated, []string{"sweep", "--devices", "1,2"}},
	} {
		withSignal(t, c.sig)
		dir := filepath.Join(t.TempDir(), "out")
		// Two million samples take seconds: far longer than the signal
		// takes to arrive.
		args := append(c.args, ref7, "--samples", "2000000", "--out", dir)
		code, out, errs := vdsim(t, args...)
		if code != c.code {
			t.Fatalf("%v: exit %d, want %d\n%s\n%s", args, code, c.code, out, errs)
		}
		if !regexp.MustCompile(`stopped by `+c.name+` while simulating .*after \d+ of its 2000000 samples`).MatchString(errs) ||
			!strings.Contains(errs, "no outputs were written") || out != "" {
			t.Errorf("%v: stdout %q, stderr:\n%s", args, out, errs)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != ".vdpp-outputs" {
			t.Errorf("%v: the output folder holds %v, want only the manifest", args, entries)
		}
	}
}

// --progress always prints where the work stands, at least once at the
// end; never prints nothing.
func TestProgressAlways(t *testing.T) {
	_, errs := mustRun(t, "run", ref7, "--samples", "20", "--no-dp", "--progress", "always")
	if !strings.Contains(errs, "vdsim: simulating the plan: 20 of 20 samples") {
		t.Errorf("no final progress line:\n%s", errs)
	}
	_, errs = mustRun(t, "run", ref7, "--samples", "20", "--no-dp", "--progress", "never")
	if strings.Contains(errs, "simulating") {
		t.Errorf("progress with --progress never:\n%s", errs)
	}
}
