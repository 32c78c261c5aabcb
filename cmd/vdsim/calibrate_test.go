package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// TestCalibrate fits the reference plan's profile to runs simulated from
// a known profile with 1% noise (testdata/calibrate/runs.csv, and one of
// its runs as a vdexec metrics.json), writes it, refuses to overwrite it
// without --replace, and predicts with it.
func TestCalibrate(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	// runs.csv:3 (pipeline on 2 devices, 10 samples) as vdexec writes it.
	metrics := `{"plan": "svd-14f-320x576-7xa5000", "layout": "pipeline 1×2", "source": "exec", "done": 10, "total": 10, "interrupted": false,
 "metrics": {"samples": 10, "first_latency_ns": 11713200000, "throughput_per_s": 0.19449, "throughput_too_few_samples": false, "makespan_ns": 58652500000}}`
	if err := os.WriteFile(filepath.Join(run, "metrics.json"), []byte(metrics), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "calibrated.yaml")
	args := []string{"calibrate", ref7, "testdata/calibrate/runs.csv", run, "--out", out, "--date", "2026-12-01"}
	stdout, stderr := mustRun(t, args...)
	for _, want := range []string{"runs.csv:5", "runs.csv:18", "metrics.json", "first_sample_s", "steady_s_per_sample", "makespan_s",
		"step cost", "per-hop cost", "set-up per rank", "wrote " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "no timeline.json beside it") {
		t.Errorf("stderr does not say the metrics.json's steps were assumed:\n%s", stderr)
	}
	prof, err := plan.LoadProfile(out)
	if err != nil {
		t.Fatalf("the written profile does not load: %v", err)
	}
	pv := prof.Provenance
	if pv.Source != "calibrated" || pv.Date != "2026-12-01" || !strings.Contains(pv.Reference, "runs.csv") || !strings.Contains(pv.Reference, "metrics.json") {
		t.Errorf("provenance %+v", pv)
	}
	// The true step cost is 310 ms (see runs.csv); 1% noise leaves it
	// within 3%.
	if got := prof.Devices["a5000"].UNetMS[1]; got < 310*0.97 || got > 310*1.03 {
		t.Errorf("fitted unet_ms 1 = %g, true 310", got)
	}
	if code, _, errs := vdsim(t, args...); code != 1 || !strings.Contains(errs, "already exists; pass --replace") {
		t.Errorf("second write without --replace: exit %d, %s", code, errs)
	}
	mustRun(t, append(args, "--replace")...)
	mustRun(t, "run", ref7, "--costs", out, "--no-dp")
}

// TestCalibrateOneSizeCLI: runs on one device count say plainly that
// per-hop and per-sample cost cannot be separated.
func TestCalibrateOneSizeCLI(t *testing.T) {
	stdout, _ := mustRun(t, "calibrate", ref7, "testdata/calibrate/runs-2gpu.csv")
	for _, want := range []string{"NOT IDENTIFIABLE", "per-hop cost: not identifiable from these runs", "one run size cannot separate per-hop from per-sample cost", "no --out"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}
