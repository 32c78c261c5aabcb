package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/exec"
)

// TestWatchSignals sends SIGINT, then SIGTERM, to this process twice each:
// the first cancels the run, the second exits with 128 + the signal number
// (130 for SIGINT, 143 for SIGTERM; exitNow stubbed).
func TestWatchSignals(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			codes := make(chan int, 1)
			old := exitNow
			exitNow = func(code int) { codes <- code }
			defer func() { exitNow = old }()
			var msgs bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr := newProgress(&msgs, false)
			w := watchSignals(cancel, pr, exec.InterruptAbandon)
			defer w.stop()
			if s := w.caught(); s != nil {
				t.Errorf("caught %v before any signal", s)
			}
			if err := syscall.Kill(os.Getpid(), tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Minute):
				t.Fatalf("the first %v did not cancel the run", tc.sig)
			}
			if s := w.caught(); s != tc.sig {
				t.Errorf("caught %v, want %v", s, tc.sig)
			}
			if err := syscall.Kill(os.Getpid(), tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-codes:
				if code != tc.code {
					t.Errorf("second %v exits %d, want %d", tc.sig, code, tc.code)
				}
			case <-time.After(time.Minute):
				t.Fatalf("the second %v did not exit", tc.sig)
			}
			pr.mu.Lock()
			s := msgs.String()
			pr.mu.Unlock()
			if !strings.Contains(s, "abandoning") || !strings.Contains(s, "again: exiting now") {
				t.Errorf("messages:\n%s", s)
			}
		})
	}
}

// TestInterruptedExit checks the exit status and message of a run stopped
// early: 143 "terminated" for SIGTERM, 130 "interrupted" for SIGINT or a
// run cancelled without a signal.
func TestInterruptedExit(t *testing.T) {
	res := &exec.Result{Done: 3, Total: 8, Interrupted: true}
	for _, tc := range []struct {
		sig  os.Signal
		code int
		word string
	}{
		{syscall.SIGTERM, 143, "run terminated: 3 of 8 samples"},
		{os.Interrupt, 130, "run interrupted: 3 of 8 samples"},
		{nil, 130, "run interrupted: 3 of 8 samples"},
	} {
		err := interruptedExit(tc.sig, res, exec.InterruptFinish)
		var ec cli.ExitCoder
		if !errors.As(err, &ec) {
			t.Fatalf("%v: %v is not a cli.ExitCoder", tc.sig, err)
		}
		if ec.ExitCode() != tc.code || !strings.Contains(err.Error(), tc.word) {
			t.Errorf("%v: exit %d %q, want %d and %q", tc.sig, ec.ExitCode(), err, tc.code, tc.word)
		}
	}
}
