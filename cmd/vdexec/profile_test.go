package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProfileRefusesFIFO: `vdexec profile -o /dev/null` once replaced
// /dev/null with a regular file (the profile renamed over the device). A
// path that is not a regular file is refused before measuring now, and
// left as it was; a FIFO stands in for the device here.
func TestProfileRefusesFIFO(t *testing.T) {
	needORT(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := runApp(t, "profile", planFile, "-o", fifo, "--samples", "2", "--steps", "2", "--reps", "1", "--warmup", "0")
	if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("profile -o FIFO: error %v; want one naming it, not a regular file", err)
	}
	if strings.Contains(errOut, "profiling") {
		t.Errorf("profile -o FIFO measured before refusing:\n%s", errOut)
	}
	fi, err := os.Lstat(fifo)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: mode %v", fi.Mode())
	}
}

// TestCheckDate: --date may be today or earlier (with a day's grace), not
// later; an
// explicitly empty one is refused, a missing one means today.
func TestCheckDate(t *testing.T) {
	now := time.Date(2026, 3, 31, 23, 59, 0, 0, time.Local)
	for _, tc := range []struct {
		s   string
		set bool
		ok  bool
	}{
		{"", false, true},
		{"", true, false},
		{"2026-03-31", true, true},
		{"2025-12-31", true, true},
		{"2026-04-01", true, true}, // a day's grace for a time zone ahead (plan.CheckDate)
		{"2026-04-02", true, false},
		{"2027-01-01", true, false},
	} {
		err := checkDate(tc.s, tc.set, now)
		if (err == nil) != tc.ok {
			t.Errorf("checkDate(%q, set %v): %v; want ok %v", tc.s, tc.set, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--date") {
			t.Errorf("checkDate(%q): %v does not name --date", tc.s, err)
		}
	}
}
