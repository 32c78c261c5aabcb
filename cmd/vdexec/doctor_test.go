package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec/gpu"
	"github.com/vdpp/vdpp/exec/gpu/gpumock"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/plan"
)

// runDoctor runs `vdexec doctor ARGS` with NVML answered by lib and the
// CUDA libraries all loading (or, with libsMissing, none), through
// cliutil.Main; it returns stdout, stderr and the exit status.
func runDoctor(t *testing.T, lib gpu.NVML, libsMissing bool, args ...string) (string, string, int) {
	t.Helper()
	deps := doctorDeps{
		nvml: func(string) gpu.NVML { return lib },
		libs: func() []gpu.LibraryStatus {
			var out []gpu.LibraryStatus
			for _, l := range gpu.CUDALibraries {
				st := gpu.LibraryStatus{Library: l, Checked: true, Path: "/usr/lib/" + l.Name}
				if libsMissing {
					st.Path, st.Err = "", os.ErrNotExist
				}
				out = append(out, st)
			}
			return out
		},
	}
	var out, errw bytes.Buffer
	app := cliutil.NewApp("vdexec", "test", &out, &errw)
	app.Commands = []*cli.Command{doctorCommandWith(deps)}
	if err := cliutil.Finish(app); err != nil {
		t.Fatal(err)
	}
	code := cliutil.Main(app, append([]string{"vdexec", "doctor"}, args...), &errw)
	return out.String(), errw.String(), code
}

func oneGPU(freeGiB float64) *mock.Interface {
	return gpumock.Mock([]gpumock.Fake{{Name: "NVIDIA RTX A5000", TotalGiB: 24, FreeGiB: freeGiB, CC: [2]int{8, 6}, Gen: 4, Width: 16, NUMA: 0}}, nil, nil)
}

// gpuORT is a folder that looks like `make ort-gpu`'s: the loaded ONNX
// Runtime library (a link to it, so ort.Init accepts it in this process)
// and a CUDA provider library beside it.
func gpuORT(t *testing.T) string {
	t.Helper()
	needORT(t)
	found := ort.Library()
	dir := t.TempDir()
	lib := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.Symlink(found, lib); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cudaProviderLib), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return lib
}

// gpuPlan writes the one-A5000 SVD plan with transport inproc, its
// costs made absolute.
func gpuPlan(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "configs", "svd-14f-320x576-1xa5000.yaml")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	costs, err := filepath.Abs(filepath.Join("..", "..", "configs", "profiles", "a5000-svd-14f-320x576.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "costs: profiles/a5000-svd-14f-320x576.yaml", "costs: "+costs, 1)
	s = strings.Replace(s, "transport: nccl", "transport: inproc", 1)
	if s == string(data) {
		t.Fatal("the plan's costs or transport lines changed; update gpuPlan")
	}
	p := filepath.Join(t.TempDir(), "gpu.yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDoctorThisMachine runs the real probes with an NVML library that is
// not there: no driver, and the tiny CPU plan can run (exit 0).
func TestDoctorThisMachine(t *testing.T) {
	needORT(t)
	missing := "/nonexistent/libnvidia-ml.so.1"
	var out, errw bytes.Buffer
	code := cliutil.Main(newApp(&out, &errw), []string{"vdexec", "doctor", planFile, "--nvml-lib", missing}, &errw)
	if code != 0 {
		t.Fatalf("exit %d; want 0\n%s\n%s", code, out.String(), errw.String())
	}
	for _, want := range []string{
		"no NVIDIA driver (" + missing + " not found): CPU plans can run; GPU plans cannot",
		"libcudart.so.13", "libcudnn.so.9", "libnccl.so.2",
		"cpu0: provider cpu", "plan tiny-cpu-2stage can run here",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestDoctorGPUPlan: a GPU plan on a mock A5000 fits with 23 GiB free and
// every library present (exit 0), and does not fit with 2 GiB free: exit
// 1 naming the device and the GPU. Without a driver it fails naming it.
func TestDoctorGPUPlan(t *testing.T) {
	ortLib := gpuORT(t)
	planPath := gpuPlan(t)
	out, errOut, code := runDoctor(t, oneGPU(23), false, planPath, "--ort-lib", ortLib)
	if code != 0 {
		t.Fatalf("fits: exit %d; want 0\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"GPU 0: NVIDIA RTX A5000, 24.00 GiB total, 23.00 GiB free, compute capability 8.6, PCIe gen 4 ×16, NUMA node 0",
		"gpu0: provider cuda on GPU 0 (NVIDIA RTX A5000): ok, needs", "CUDA provider: " + filepath.Dir(ortLib)} {
		if !strings.Contains(out, want) {
			t.Errorf("fits: output lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = runDoctor(t, oneGPU(2), false, planPath, "--ort-lib", ortLib)
	if code != 1 || !strings.Contains(errOut, "gpu0: needs") || !strings.Contains(errOut, "GPU 0 (NVIDIA RTX A5000)") ||
		!strings.Contains(errOut, "2.00 GiB free of 24.00 GiB") || !strings.Contains(errOut, "lower micro_batch") {
		t.Errorf("2 GiB free: exit %d; want 1 naming gpu0, GPU 0 and its free memory\n%s\n%s", code, out, errOut)
	}

	noDriver := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	_, errOut, code = runDoctor(t, noDriver, true, planPath, "--ort-lib", ortLib)
	for _, want := range []string{"gpu0 (cuda device 0): no NVIDIA driver", "install the NVIDIA driver", "needs libcudart.so.13", "needs libcudnn.so.9"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("no driver: exit %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	if strings.Contains(errOut, "libnccl") {
		t.Errorf("no driver: NCCL named as a need of the CUDA provider:\n%s", errOut)
	}
}

// TestDoctorDeviceIndex: a cuda device whose index is not on the machine.
func TestDoctorDeviceIndex(t *testing.T) {
	ortLib := gpuORT(t)
	data, err := os.ReadFile(gpuPlan(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "idx.yaml")
	s := strings.Replace(string(data), "devices: {count: 1, kind: a5000, memory_gb: 24, numa: 0}",
		"devices: [{name: g3, kind: a5000, memory_gb: 24, index: 3}]", 1)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runDoctor(t, oneGPU(23), false, p, "--ort-lib", ortLib)
	if code != 1 || !strings.Contains(errOut, "g3: cuda device 3 does not exist: this machine has 1 GPU (index 0); change devices[0].index") {
		t.Errorf("index 3 on one GPU: exit %d\n%s", code, errOut)
	}
}

// emitted is the part of a plan that --emit-devices writes.
type emitted struct {
	Devices []plan.Device `yaml:"devices"`
	Links   plan.Links    `yaml:"links"`
}

func emit(t *testing.T, lib gpu.NVML) (emitted, string) {
	t.Helper()
	out, errOut, code := runDoctor(t, lib, false, "--emit-devices")
	if code != 0 {
		t.Fatalf("--emit-devices: exit %d\n%s", code, errOut)
	}
	var e emitted
	if err := yaml.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("--emit-devices wrote YAML that does not parse: %v\n%s", err, out)
	}
	// It is a plan's devices and links: a plan made of them loads.
	tiny, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc []string
	skip := false
	for _, l := range strings.Split(string(tiny), "\n") {
		if strings.HasPrefix(l, "devices:") || strings.HasPrefix(l, "links:") {
			skip = true
			continue
		}
		if skip && strings.HasPrefix(l, " ") {
			continue
		}
		skip = false
		if !strings.HasPrefix(l, "transport:") {
			doc = append(doc, l)
		}
	}
	text := strings.Join(doc, "\n") + "\ntransport: inproc\n" + out
	text = strings.ReplaceAll(text, "../models/", filepath.Join("..", "..", "models")+"/")
	if _, err := plan.Parse([]byte(text), "emitted.yaml"); err != nil {
		t.Errorf("a plan with the emitted devices and links does not load: %v\n%s", err, text)
	}
	return e, out
}

func TestEmitDevicesSevenGPUs(t *testing.T) {
	e, out := emit(t, gpumock.SevenGPUs())
	if len(e.Devices) != 7 {
		t.Fatalf("%d devices; want 7\n%s", len(e.Devices), out)
	}
	for i, d := range e.Devices {
		if d.Name != "gpu"+string(rune('0'+i)) || d.Kind != "a5000" || d.MemoryGB != 24 || d.Index != i || d.Provider != plan.ProviderCUDA || d.NUMA != i/4 {
			t.Errorf("device %d: %+v", i, d)
		}
	}
	if e.Links.Default != gpu.LinkCrossSocket {
		t.Errorf("links.default %q; want %s (12 of 21 pairs)", e.Links.Default, gpu.LinkCrossSocket)
	}
	kinds := map[string]int{}
	for _, o := range e.Links.Overrides {
		kinds[o.Kind]++
		if o.Between == [2]string{"gpu4", "gpu5"} && o.Kind != gpu.LinkPCIeSwitch {
			t.Errorf("gpu4–gpu5: %s; want %s", o.Kind, gpu.LinkPCIeSwitch)
		}
	}
	if len(e.Links.Overrides) != 9 || kinds[gpu.LinkPCIeSwitch] != 3 || kinds[gpu.LinkPCIeHost] != 6 {
		t.Errorf("overrides %v; want 3 %s and 6 %s\n%s", kinds, gpu.LinkPCIeSwitch, gpu.LinkPCIeHost, out)
	}
}

func TestEmitDevicesNVLink(t *testing.T) {
	gpus := make([]gpumock.Fake, 4)
	for i := range gpus {
		gpus[i] = gpumock.Fake{Name: "NVIDIA H100 80GB HBM3", TotalGiB: 79.6, FreeGiB: 79, CC: [2]int{9, 0}, Gen: 5, Width: 16, NUMA: -1}
	}
	lib := gpumock.Mock(gpus, func(i, j int) nvml.GpuTopologyLevel { return nvml.TOPOLOGY_SYSTEM }, func(i, j int) bool { return i/2 == j/2 })
	e, out := emit(t, lib)
	if len(e.Devices) != 4 || e.Devices[0].Kind != "h100-80gb-hbm3" || e.Devices[0].MemoryGB != 79.6 || !strings.Contains(out, "NUMA node not reported") {
		t.Errorf("devices %+v\n%s", e.Devices, out)
	}
	want := map[[2]string]bool{{"gpu0", "gpu1"}: true, {"gpu2", "gpu3"}: true}
	if e.Links.Default != gpu.LinkCrossSocket || len(e.Links.Overrides) != 2 {
		t.Fatalf("links %+v; want default cross-socket, 2 NVLink overrides\n%s", e.Links, out)
	}
	for _, o := range e.Links.Overrides {
		if !want[o.Between] || o.Kind != gpu.LinkNVLink {
			t.Errorf("override %+v; want NVLink between gpu0–gpu1 and gpu2–gpu3", o)
		}
	}
}

func TestEmitDevicesOneGPUAndNone(t *testing.T) {
	e, out := emit(t, oneGPU(23))
	if len(e.Devices) != 1 || e.Devices[0].Name != "gpu0" || e.Links.Default == "" || len(e.Links.Overrides) != 0 {
		t.Errorf("one GPU: %+v\n%s", e, out)
	}
	noDriver := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	out, errOut, code := runDoctor(t, noDriver, true, "--emit-devices")
	if code != 1 || out != "" || !strings.Contains(errOut, "no NVIDIA driver") || !strings.Contains(errOut, "no GPUs to describe") {
		t.Errorf("no driver: exit %d, stdout %q, stderr %q; want 1, nothing, no driver", code, out, errOut)
	}
	_, errOut, code = runDoctor(t, oneGPU(23), false, "--emit-devices", planFile)
	if code != 2 || !strings.Contains(errOut, "takes no plan file") {
		t.Errorf("--emit-devices with a plan: exit %d %q; want 2", code, errOut)
	}
}
