package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/internal/outdir"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// envWorker makes the test binary act as vdexec itself: transport tcp
// re-executes os.Executable() (the test binary) as `vdexec worker ...`.
const envWorker = "VDEXEC_TEST_AS_MAIN"

// envWorkerHang, with envWorker, makes the test binary's `vdexec worker`
// hang before joining (TestRunInterruptedDuringStartup).
const envWorkerHang = "VDEXEC_TEST_WORKER_HANG"

func TestMain(m *testing.M) {
	if os.Getenv(envWorker) == "1" {
		if os.Getenv(envWorkerHang) == "1" && len(os.Args) > 1 && os.Args[1] == "worker" {
			select {} // a worker that never joins: start-up lasts until it is killed
		}
		os.Exit(cliutil.Main(newApp(os.Stdout, os.Stderr), os.Args, os.Stderr))
	}
	os.Exit(m.Run())
}

// planFile is the tiny CPU plan of the repository (the test runs in cmd/vdexec).
var planFile = filepath.Join("..", "..", "configs", defaultPlanName)

// runApp runs vdexec with args in-process and returns its stdout, stderr
// and error.
func runApp(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	err := newApp(&out, &errw).Run(append([]string{"vdexec"}, args...))
	return out.String(), errw.String(), err
}

// needORT loads the ONNX Runtime library (found without $VDPP_ORT_LIB
// after `make ort`), or fails the test (skips it with VDPP_ORT_OPTIONAL=1).
func needORT(t *testing.T) {
	t.Helper()
	ort.NeedForTest(t)
}

// writePlan writes a copy of the tiny plan into a temporary folder with
// its model paths made absolute and the given replacements applied.
func writePlan(t *testing.T, replace ...string) string {
	t.Helper()
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	models, err := filepath.Abs(filepath.Join("..", "..", "models"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(data), "../models", models)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("plan has no %q to replace", replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewAppFlagsHaveEnv(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range app.Commands {
		for _, f := range c.Flags {
			if e, ok := f.(interface{ GetEnvVars() []string }); ok {
				if len(e.GetEnvVars()) == 0 || !strings.HasPrefix(e.GetEnvVars()[0], envPrefix+"_") {
					t.Errorf("%s --%s: environment variables %v, want %s_...", c.Name, f.Names()[0], e.GetEnvVars(), envPrefix)
				}
			}
		}
	}
}

// TestBadInput checks that bad flags, plans and arguments give a clear
// error (naming the problem) before any work, without ONNX Runtime.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	missingModels := writePlan(t, "unet: ", "unet: "+filepath.Join(dir, "none")+"/")
	svd := filepath.Join("..", "..", "configs", "svd-14f-320x576-2xa5000.yaml")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing plan", []string{"run", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "no such file"}},
		{"unknown flag", []string{"run", "--bogus"}, []string{"bogus", "vdexec run --help"}},
		{"unknown flag after plan", []string{"run", planFile, "--bogus", "3"}, []string{"--bogus", "not defined"}},
		{"flag without value after plan", []string{"validate", planFile, "--samples"}, []string{"--samples", "needs an argument"}},
		{"bad number after plan", []string{"run", planFile, "--samples", "many"}, []string{"many", "--samples"}},
		{"zero samples", []string{"run", planFile, "--samples", "0"}, []string{"samples must be at least 1"}},
		{"two plans", []string{"run", planFile, planFile}, []string{"want one plan file"}},
		{"on-interrupt", []string{"run", planFile, "--on-interrupt", "later"}, []string{"--on-interrupt", "finish", "abandon"}},
		{"timeout", []string{"run", planFile, "--timeout", "0s"}, []string{"--timeout"}},
		{"reps", []string{"profile", planFile, "--reps", "0"}, []string{"--reps 0"}},
		{"warmup", []string{"profile", planFile, "--warmup", "-1"}, []string{"--warmup -1"}},
		{"svd family", []string{"run", svd}, []string{"model.family svd", "tiny"}},
		{"missing model file", []string{"validate", missingModels}, []string{"model.onnx.unet", "not found", "none/"}},
		{"missing model file run", []string{"run", missingModels, "--out", filepath.Join(dir, "out")}, []string{"model.onnx.unet", "not found"}},
		{"worker without device", []string{"worker", "--plan", planFile}, []string{"--device and --coordinator are required"}},
		{"worker unknown device", []string{"worker", "--plan", planFile, "--device", "gpu9", "--rendezvous", "127.0.0.1:1"}, []string{`"gpu9"`, "runs no stage", "cpu0, cpu1"}},
		{"missing library", []string{"validate", planFile, "--ort-lib", filepath.Join(dir, "libonnxruntime.so")}, []string{"libonnxruntime.so"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runApp(t, tc.args...)
			if err == nil {
				t.Fatalf("vdexec %s: no error", strings.Join(tc.args, " "))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("vdexec %s: error %q does not mention %q", strings.Join(tc.args, " "), err, w)
				}
			}
		})
	}
}

// TestDefaultPlanFound checks that the embedded default plan's model
// paths resolve from a folder inside the repository (this one).
func TestDefaultPlanFound(t *testing.T) {
	dir := locateDefault()
	if _, err := os.Stat(filepath.Join(dir, "..", "models", "tiny", "unet.onnx")); err != nil {
		t.Fatalf("locateDefault() = %s: the tiny model is not next to it: %v", dir, err)
	}
}

func TestValidate(t *testing.T) {
	needORT(t)
	// Flags after the plan file apply: 3 samples instead of the plan's 12.
	out, _, err := runApp(t, "validate", planFile, "--samples", "3")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"3 samples", "stage 0 on cpu0", "stage 1 on cpu1", "unet+encoder opened", "unet+decoder opened", "ONNX Runtime", "ok\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("validate output lacks %q:\n%s", w, out)
		}
	}
	// The built-in plan.
	out, errOut, err := runApp(t, "validate")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "built-in plan") || !strings.HasSuffix(out, "ok\n") {
		t.Errorf("validate without a plan: stderr %q, stdout ends %q", errOut, out[max(0, len(out)-40):])
	}
}

// checkRunDir checks the files of a finished run of n samples.
func checkRunDir(t *testing.T, dir string, n int) runResult {
	t.Helper()
	tl, err := timeline.ReadFile(filepath.Join(dir, "timeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Samples) != n || tl.Meta.Source != "exec" {
		t.Errorf("timeline: %d samples from %q, want %d from exec", len(tl.Samples), tl.Meta.Source, n)
	}
	var trace map[string]any
	if data, err := os.ReadFile(filepath.Join(dir, "trace.json")); err != nil {
		t.Error(err)
	} else if err := json.Unmarshal(data, &trace); err != nil {
		t.Errorf("trace.json: %v", err)
	}
	f, err := os.Open(filepath.Join(dir, "gantt.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("gantt.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 50 {
		t.Errorf("gantt.png is %v", b)
	}
	var r runResult
	data, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	if r.Done != n || r.Total != n || r.Metrics.Samples != n || r.Metrics.Throughput <= 0 || r.Interrupted {
		t.Errorf("metrics.json: done %d of %d, %d samples, throughput %g, interrupted %v; want %d done", r.Done, r.Total, r.Metrics.Samples, r.Metrics.Throughput, r.Interrupted, n)
	}
	// The metrics are those of the timeline, computed by the shared code.
	if want := tl.Metrics(); r.Metrics.FirstLatencyNS != want.FirstLatencyNS || r.Metrics.MakespanNS != want.MakespanNS {
		t.Errorf("metrics.json first latency %d, makespan %d; the timeline says %d, %d", r.Metrics.FirstLatencyNS, r.Metrics.MakespanNS, want.FirstLatencyNS, want.MakespanNS)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	samples := 0
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "sample_") {
			samples++
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "video.gif")); err != nil {
				t.Errorf("%s: %v", e.Name(), err)
			}
		}
		if strings.HasPrefix(e.Name(), ".") && e.Name() != outdir.Manifest {
			t.Errorf("left-over temporary file %s", e.Name())
		}
	}
	if samples != n {
		t.Errorf("%d sample folders, want %d", samples, n)
	}
	return r
}

func TestRun(t *testing.T) {
	needORT(t)
	dir := filepath.Join(t.TempDir(), "run")
	// Flags after the plan file.
	out, errOut, err := runApp(t, "run", planFile, "--samples", "2", "--steps", "4", "--out", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	r := checkRunDir(t, dir, 2)
	// Steps 0..1 | 2..3, two samples: 4 UNet calls per device.
	if len(r.Overhead) != 2 {
		t.Fatalf("executor overhead for %d devices, want 2: %+v", len(r.Overhead), r.Overhead)
	}
	for _, o := range r.Overhead {
		if o.Calls != 4 || o.UNetNS <= 0 || o.UNetNS > o.StepNS {
			t.Errorf("%s: %d UNet calls taking %d ns of %d ns of steps; want 4 calls inside the steps", o.Device, o.Calls, o.UNetNS, o.StepNS)
		}
	}
	for _, w := range []string{"2 of 2 samples", "first-sample latency", "steady-state throughput", "cpu0", "cpu1", "executor overhead per step", filepath.Join(dir, "gantt.png")} {
		if !strings.Contains(out, w) {
			t.Errorf("run output lacks %q:\n%s", w, out)
		}
	}
	// Not a terminal: one plain line per finished sample.
	if n := strings.Count(errOut, "samples done at"); n != 2 || strings.Contains(errOut, "\r") {
		t.Errorf("stderr has %d progress lines (want 2, no \\r):\n%s", n, errOut)
	}
}

func TestRunJSON(t *testing.T) {
	needORT(t)
	dir := filepath.Join(t.TempDir(), "run")
	out, _, err := runApp(t, "run", "--json", "--samples", "1", "--steps", "2", "--out", dir, planFile)
	if err != nil {
		t.Fatal(err)
	}
	var r runResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("run --json: %v\n%s", err, out)
	}
	if r.Done != 1 || r.Source != "exec" || r.Layout != "pipeline 1×2" || r.Versions["onnxruntime"] == "" {
		t.Errorf("run --json: %+v", r)
	}
}

// TestRunTCP runs the plan with transport tcp: vdexec starts one worker
// process per device (this test binary, acting as vdexec).
func TestRunTCP(t *testing.T) {
	needORT(t)
	t.Setenv(envWorker, "1")
	p := writePlan(t, "transport: inproc", "transport: tcp")
	dir := filepath.Join(t.TempDir(), "run")
	out, errOut, err := runApp(t, "run", p, "--samples", "2", "--steps", "3", "--out", dir, "--timeout", "60s")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	checkRunDir(t, dir, 2)
	if !strings.Contains(out, "not measured with transport tcp") {
		t.Errorf("run output does not say the overhead was not measured:\n%s", out)
	}
}

func TestProfile(t *testing.T) {
	needORT(t)
	path := filepath.Join(t.TempDir(), "sub", "profile.yaml")
	out, _, err := runApp(t, "profile", planFile, "-o", path, "--reps", "2", "--warmup", "1", "--date", "2025-01-02")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"UNet per micro-batch", "inproc", "vdsim run " + planFile + " --costs " + path} {
		if !strings.Contains(out, w) {
			t.Errorf("profile output lacks %q:\n%s", w, out)
		}
	}
	prof, err := plan.LoadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	pv := prof.Provenance
	if pv.Source != "measured" || pv.Date != "2025-01-02" || !strings.Contains(pv.Runtime, "onnxruntime "+ort.Version()+" cpu") || !strings.Contains(pv.Runtime, "intra-op 1") {
		t.Errorf("provenance %+v", pv)
	}
	// The simulator takes it for the same plan.
	p, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetProfile(path, prof); err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(p, sim.Options{Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Timeline.Metrics(); m.Samples != p.Workload.Samples || m.Throughput <= 0 {
		t.Errorf("simulated with the profile: %d samples, throughput %g", m.Samples, m.Throughput)
	}
}

func TestInterruptedExitCode(t *testing.T) {
	err := cli.Exit("x", cliutil.ExitInterrupted)
	var ec cli.ExitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 130 {
		t.Fatal("exit code of an interrupted run is not 130")
	}
	var buf bytes.Buffer
	if code := cliutil.Main(newApp(&buf, &buf), []string{"vdexec", "run", "--samples", "0"}, &buf); code == 0 {
		t.Errorf("a bad flag value exits 0:\n%s", buf.String())
	}
}

func TestProgress(t *testing.T) {
	ev := func(done int, s float64) exec.ProgressEvent {
		el := time.Duration(s * float64(time.Second))
		return exec.ProgressEvent{Done: done, Total: 4, Elapsed: el, Throughput: float64(done) / el.Seconds()}
	}
	var lines bytes.Buffer
	pr := newProgress(&lines, false)
	pr.update(ev(1, 2))
	pr.update(ev(2, 3))
	pr.end()
	got := strings.Split(strings.TrimSpace(lines.String()), "\n")
	// One sample per second since the first: 2 left, ETA 2s.
	if len(got) != 2 || !strings.Contains(got[0], "1/4 samples done at 2s") || !strings.Contains(got[1], "2/4") || !strings.Contains(got[1], "1 samples/s now, ETA 2s") {
		t.Errorf("plain progress:\n%s", lines.String())
	}
	var tty bytes.Buffer
	t.Setenv("COLUMNS", "200")
	pr = newProgress(&tty, true)
	pr.update(ev(1, 1))
	pr.update(ev(4, 2))
	pr.printf("note\n")
	pr.end()
	s := tty.String()
	if strings.Count(s, "\r[") != 2 || !strings.Contains(s, "[##############################] 4/4") || !strings.Contains(s, "ETA 0s") || !strings.Contains(s, "note\n") {
		t.Errorf("terminal progress: %q", s)
	}
}

// TestProgressWidth checks that the terminal progress line and its
// redraws fit in COLUMNS-1 characters, dropping the ETA first, then the
// rate, then the elapsed time.
func TestProgressWidth(t *testing.T) {
	for _, tc := range []struct {
		env  string
		cols int
	}{{"", 80}, {"abc", 80}, {"-3", 80}, {"57", 57}} {
		t.Setenv("COLUMNS", tc.env)
		if got := newProgress(io.Discard, true).cols; got != tc.cols {
			t.Errorf("COLUMNS=%q: %d columns, want %d", tc.env, got, tc.cols)
		}
	}
	events := []exec.ProgressEvent{
		{Done: 250, Total: 1000, Elapsed: 95 * time.Second, Throughput: 2.63},
		{Done: 251, Total: 1000, Elapsed: 95*time.Second + 400*time.Millisecond, Throughput: 2.64},
	}
	draw := func(cols int) []string {
		t.Setenv("COLUMNS", strconv.Itoa(cols))
		var buf bytes.Buffer
		pr := newProgress(&buf, true)
		for _, e := range events {
			pr.update(e)
		}
		pr.printf("note\n")
		return strings.Split(strings.TrimPrefix(buf.String(), "\r"), "\r")
	}
	full := draw(500)[1]
	if !strings.Contains(full, "[#######.......................] 251/1000 samples") || !strings.Contains(full, "samples/s") || !strings.Contains(full, "elapsed 1m35s") || !strings.Contains(full, "ETA ") {
		t.Fatalf("wide line %q", full)
	}
	fullLen := utf8.RuneCountInString(strings.TrimRight(full, " "))
	if fullLen < 80 {
		t.Fatalf("wide line %q is %d long: too short to test", full, fullLen)
	}
	prevParts, rateNoETA := 4, false
	for cols := 120; cols >= 1; cols-- {
		segs := draw(cols)
		for _, seg := range segs {
			if n := utf8.RuneCountInString(seg); n > cols-1 && seg != "note\n" {
				t.Errorf("COLUMNS=%d: %q is %d long", cols, seg, n)
			}
		}
		line := strings.TrimRight(segs[1], " ")
		eta, rate, elapsed := strings.Contains(line, "ETA"), strings.Contains(line, "samples/s"), strings.Contains(line, "elapsed")
		if (eta && !rate) || (rate && !elapsed) {
			t.Errorf("COLUMNS=%d: %q drops a more important part first", cols, line)
		}
		if eta != (cols-1 >= fullLen) {
			t.Errorf("COLUMNS=%d: ETA shown %v in %q", cols, eta, line)
		}
		if cols >= 22 && !strings.Contains(line, "251/1000 samples") {
			t.Errorf("COLUMNS=%d: no count in %q", cols, line)
		}
		parts := 1
		for _, b := range []bool{eta, rate, elapsed} {
			if b {
				parts++
			}
		}
		if parts > prevParts {
			t.Errorf("COLUMNS=%d: %q shows more than a wider terminal", cols, line)
		}
		prevParts = parts
		rateNoETA = rateNoETA || (rate && !eta)
	}
	if !rateNoETA {
		t.Error("no width drops the ETA but keeps the rate")
	}
}
