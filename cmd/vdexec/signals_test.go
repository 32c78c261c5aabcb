package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vdpp/vdpp/exec"
)

// TestWatchSignals sends SIGINT to this process twice: the first cancels
// the run, the second exits with status 130 (exitNow stubbed).
func TestWatchSignals(t *testing.T) {
	codes := make(chan int, 1)
	old := exitNow
	exitNow = func(code int) { codes <- code }
	defer func() { exitNow = old }()
	var msgs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := newProgress(&msgs, false)
	stop := watchSignals(cancel, pr, exec.InterruptAbandon)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("the first SIGINT did not cancel the run")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-codes:
		if code != exitInterrupted {
			t.Errorf("second SIGINT exits %d, want %d", code, exitInterrupted)
		}
	case <-time.After(time.Minute):
		t.Fatal("the second SIGINT did not exit")
	}
	pr.mu.Lock()
	s := msgs.String()
	pr.mu.Unlock()
	if !strings.Contains(s, "abandoning") || !strings.Contains(s, "again: exiting now") {
		t.Errorf("messages:\n%s", s)
	}
}
