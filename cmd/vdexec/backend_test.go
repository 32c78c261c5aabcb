package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/nccl"
	"github.com/vdpp/vdpp/internal/fakenccl"
	"github.com/vdpp/vdpp/plan"
)

// --backend's words: nccl and gloo name a transport; auto is nccl when
// every device's provider is cuda and NCCL loads, else tcp, and says why.
// NCCL is not loaded for a plan with a cpu device.
func TestChooseBackend(t *testing.T) {
	gpus, err := plan.Load(filepath.Join("..", "..", "configs", "svd-14f-320x576-2xa5000.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	mixed := gpus.Clone()
	mixed.Devices[1].Provider = plan.ProviderCPU
	loads := func() (string, error) {
		return "NCCL 9.9.9 (/x/libnccl.so.2) and the CUDA runtime 13.0 (/x/libcudart.so.13) load", nil
	}
	fails := func() (string, error) {
		return "", errors.New("nccl: NCCL does not load: libnccl.so.2: cannot open shared object file\nsecond line")
	}
	for _, tc := range []struct {
		name, word string
		p          *plan.Plan
		load       func() (string, error)
		want       plan.Transport
		why        string // "" for none
		loaded     bool
	}{
		{"nccl", backendNCCL, cpus, fails, plan.TransportNCCL, "", false},
		{"gloo", backendGloo, gpus, loads, plan.TransportTCP, "", false},
		{"auto, cuda, loads", backendAuto, gpus, loads, plan.TransportNCCL, "every device's provider is cuda, and NCCL 9.9.9 (/x/libnccl.so.2)", true},
		{"auto, cuda, no NCCL", backendAuto, gpus, fails, plan.TransportTCP, "every device's provider is cuda, but NCCL does not load: nccl: NCCL does not load: libnccl.so.2: cannot open shared object file", true},
		{"auto, cpu", backendAuto, cpus, loads, plan.TransportTCP, "not every device's provider is cuda: cpu0 (provider cpu), cpu1 (provider cpu)", false},
		{"auto, one cpu", backendAuto, mixed, loads, plan.TransportTCP, "not every device's provider is cuda: gpu1 (provider cpu)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			got, why := chooseBackend(tc.word, tc.p, func() (string, error) { called = true; return tc.load() })
			if got != tc.want {
				t.Errorf("transport %s, want %s", got, tc.want)
			}
			if (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) || strings.Contains(why, "\n") {
				t.Errorf("why %q, want one line with %q", why, tc.why)
			}
			if called != tc.loaded {
				t.Errorf("NCCL load called %v, want %v", called, tc.loaded)
			}
		})
	}
}

// vdexec launch puts the transport --backend chose into every rank's
// command line, never auto, and says why auto chose it; a plan whose
// transport runs in one process becomes a cluster job with --backend.
func TestLaunchBackend(t *testing.T) {
	inproc := writePlan(t) // transport inproc
	for _, tc := range []struct {
		word, want, note string
	}{
		{"gloo", "--backend=gloo", ""},
		{"auto", "--backend=gloo", "vdexec: launch --backend auto: transport tcp: not every device's provider is cuda: cpu0 (provider cpu), cpu1 (provider cpu)"},
	} {
		out := filepath.Join(t.TempDir(), "job.sh")
		_, errOut, err := runApp(t, "launch", inproc, "--emit", "slurm", "-o", out, "--backend", tc.word)
		if err != nil {
			t.Fatalf("--backend %s: %v\n%s", tc.word, err, errOut)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), " rank ") || !strings.Contains(string(data), tc.want) || strings.Contains(string(data), "--backend=auto") {
			t.Errorf("--backend %s: the job does not run the ranks with %s:\n%s", tc.word, tc.want, data)
		}
		if tc.note != "" && !strings.Contains(errOut, tc.note) {
			t.Errorf("--backend %s: stderr %q lacks %q", tc.word, errOut, tc.note)
		}
		if tc.note == "" && strings.Contains(errOut, "--backend auto") {
			t.Errorf("--backend %s printed an auto note: %q", tc.word, errOut)
		}
	}
	// nccl: a cluster job where this build runs transport nccl in worker
	// processes, else the usage error that says which transports do.
	out := filepath.Join(t.TempDir(), "job.sh")
	_, errOut, err := runApp(t, "launch", inproc, "--emit", "torchrun", "-o", out, "--backend", "nccl")
	if exec.WorkerProcesses(plan.TransportNCCL) {
		data, rerr := os.ReadFile(out)
		if err != nil || rerr != nil || !strings.Contains(string(data), "--backend=nccl") {
			t.Errorf("--backend nccl: %v %v\n%s\n%s", err, rerr, errOut, data)
		}
	} else if err == nil || !strings.Contains(err.Error(), "has transport nccl, whose stages run in one process") {
		t.Errorf("--backend nccl without NCCL worker processes: %v", err)
	}
}

// --nccl-lib and --cudart-lib set $VDPP_NCCL_LIB and $VDPP_CUDART_LIB for
// the process (and so for the workers it starts); a name without a slash
// is a soname for the loader and not looked for as a file.
func TestNCCLLibFlagsSetEnv(t *testing.T) {
	t.Setenv(nccl.EnvNCCLLib, "unset-by-test")
	t.Setenv(nccl.EnvCUDARTLib, "unset-by-test")
	os.Unsetenv(nccl.EnvNCCLLib)
	os.Unsetenv(nccl.EnvCUDARTLib)
	lib := filepath.Join(t.TempDir(), "libnccl.so.2")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// --backend bogus stops the command after the libraries are set.
	_, _, err := runApp(t, "profile", planFile, "--nccl-lib", lib, "--cudart-lib", "libcudart.so.12", "--backend", "bogus")
	if err == nil || !strings.Contains(err.Error(), `--backend "bogus": want auto, nccl or gloo`) {
		t.Fatalf("profile --backend bogus: %v", err)
	}
	if got := os.Getenv(nccl.EnvNCCLLib); got != lib {
		t.Errorf("$%s = %q, want %q", nccl.EnvNCCLLib, got, lib)
	}
	if got := os.Getenv(nccl.EnvCUDARTLib); got != "libcudart.so.12" {
		t.Errorf("$%s = %q, want libcudart.so.12", nccl.EnvCUDARTLib, got)
	}
}

// A stale $VDPP_NCCL_LIB or $VDPP_CUDART_LIB (a file that is gone) does not
// stop a plan that never loads NCCL; the same path given as --nccl-lib is
// checked (the case file run-nccl-lib-env-missing has the nccl side).
func TestStaleNCCLEnvIgnoredWithoutNCCL(t *testing.T) {
	needORT(t)
	gone := filepath.Join(t.TempDir(), "gone", "libnccl.so.2")
	t.Setenv(nccl.EnvNCCLLib, gone)
	t.Setenv(nccl.EnvCUDARTLib, gone)
	if _, stderr, err := runApp(t, "validate", planFile); err != nil {
		t.Errorf("validate of a CPU plan with stale NCCL variables: %v\n%s", err, stderr)
	}
	_, _, err := runApp(t, "run", planFile, "--nccl-lib", gone, "--out", filepath.Join(t.TempDir(), "out"))
	if err == nil || !strings.Contains(err.Error(), "--nccl-lib") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("run --nccl-lib with a missing file: %v", err)
	}
}

// vdexec run --backend gloo runs a plan written with transport inproc
// over tcp: the worker processes it starts get the same transport (else
// they would load another plan and the coordinator would refuse them),
// and the videos are those of the plan's own transport.
func TestRunBackendGloo(t *testing.T) {
	needORT(t)
	t.Setenv(envWorker, "1")
	p := writePlan(t)
	dirTCP := filepath.Join(t.TempDir(), "tcp")
	_, errOut, err := runApp(t, "run", p, "--samples", "2", "--steps", "3", "--out", dirTCP, "--timeout", "60s", "--backend", "gloo")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "transport tcp") {
		t.Errorf("the run does not say transport tcp:\n%s", errOut)
	}
	dirIn := filepath.Join(t.TempDir(), "inproc")
	if _, errOut, err := runApp(t, "run", p, "--samples", "2", "--steps", "3", "--out", dirIn); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	sameSamples(t, dirIn, dirTCP, 2)
}

// sameSamples checks that the sample folders of got hold byte for byte
// the outputs of want's (frames, GIF, final latent's hash), n samples of
// 8 frames each.
func sameSamples(t *testing.T, want, got string, n int) {
	t.Helper()
	w, g := sampleOutputs(t, want), sampleOutputs(t, got)
	if len(w) != n*10 || len(g) != len(w) {
		t.Fatalf("%d outputs in %s, %d in %s; want %d in each", len(g), got, len(w), want, n*10)
	}
	if differ := differingOutputs(w, g); len(differ) > 0 {
		t.Errorf("%s differs from %s in %s", got, want, strings.Join(differ, ", "))
	}
}

// --backend auto with NCCL present (the test double, as $VDPP_NCCL_LIB and
// $VDPP_CUDART_LIB name it) chooses nccl for a plan of cuda devices, and
// says which libraries loaded.
func TestChooseBackendLoadsNCCL(t *testing.T) {
	lib, err := fakenccl.Build(t.TempDir())
	if errors.Is(err, fakenccl.ErrNoCgo) {
		t.Skipf("the NCCL test double cannot be built: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	t.Setenv(nccl.EnvNCCLLib, lib)
	t.Setenv(nccl.EnvCUDARTLib, lib)
	gpus, err := plan.Load(filepath.Join("..", "..", "configs", "svd-14f-320x576-2xa5000.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, why := chooseBackend(backendAuto, gpus, loadNCCL)
	if got != plan.TransportNCCL || !strings.Contains(why, "every device's provider is cuda, and NCCL ") || !strings.Contains(why, lib) {
		t.Errorf("auto with NCCL loading: %s, %q; want nccl, naming %s", got, why, lib)
	}
}
