package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vdpp/vdpp/plan"
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

// TestProfileMemoryLabel: on the CPU plan every device's memory comes from
// the host's resident set, and both the profile's notes and the summary
// say so, device by device.
func TestProfileMemoryLabel(t *testing.T) {
	needORT(t)
	path := filepath.Join(t.TempDir(), "profile.yaml")
	out, _, err := runApp(t, "profile", planFile, "-o", path, "--samples", "2", "--steps", "2", "--reps", "1", "--warmup", "0")
	if err != nil {
		t.Fatal(err)
	}
	prof, err := plan.LoadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if hasCUDA(p) {
		t.Fatalf("%s has cuda devices; this test wants a CPU plan", planFile)
	}
	for _, d := range p.Devices {
		w := d.Name + " memory: host RSS (CPU)"
		if !strings.Contains(prof.Provenance.Notes, w) || !strings.Contains(out, w) {
			t.Errorf("profile notes or summary lack %q:\nnotes:\n%s\nsummary:\n%s", w, prof.Provenance.Notes, out)
		}
	}
	if strings.Contains(prof.Provenance.Notes, "NVML") {
		t.Errorf("a CPU plan's notes mention NVML:\n%s", prof.Provenance.Notes)
	}
}

// TestProfileSummaryMemory: the summary prints each kind's memory and the
// notes that say where each device's came from.
func TestProfileSummaryMemory(t *testing.T) {
	p, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	prof := &plan.Profile{
		Devices: map[string]plan.DeviceCosts{"a5000": {Memory: plan.MemoryCosts{Runtime: 2, ActivationsPerSample: 0.5}}},
		Provenance: plan.Provenance{Notes: "gpu0 unet batch 1: mean 1 ms\n" +
			"gpu0 memory: NVML used memory of GPU 3, this process's (nvmlDeviceGetComputeRunningProcesses), divided among its 1 stage(s)"},
	}
	var b strings.Builder
	writeProfileSummary(&b, p, prof)
	for _, w := range []string{"a5000: runtime 2 GiB, activations 0.5 GiB per sample", "  gpu0 memory: NVML used memory of GPU 3, this process's"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, b.String())
		}
	}
	if strings.Contains(b.String(), "  gpu0 unet batch 1") {
		t.Errorf("summary prints a note that is not about memory:\n%s", b.String())
	}
}

func TestHasCUDA(t *testing.T) {
	p := &plan.Plan{Devices: []plan.Device{{Name: "c", Provider: plan.ProviderCPU}}}
	if hasCUDA(p) {
		t.Error("a CPU plan has cuda devices")
	}
	p.Devices = append(p.Devices, plan.Device{Name: "g", Provider: plan.ProviderCUDA})
	if !hasCUDA(p) {
		t.Error("a plan with a cuda device has none")
	}
}
