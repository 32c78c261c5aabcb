package ort

import (
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/vdpp/vdpp/models/tiny"
	"github.com/vdpp/vdpp/plan"
)

// TestSessionOptionsHandle: the OrtSessionOptions* that sessionOptionsHandle
// reads out of onnxruntime_go's SessionOptions is the one onnxruntime_go
// uses: an entry set through onnxruntime_go reads back through it, and
// one it never set is absent.
func TestSessionOptionsHandle(t *testing.T) {
	needORT(t)
	so, err := onnxruntime.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	if err := so.AddSessionConfigEntry("vdpp.test.handle", "pinned to v1.27.0"); err != nil {
		t.Fatal(err)
	}
	v, ok, err := sessionConfigEntry(so, "vdpp.test.handle")
	if err != nil || !ok || v != "pinned to v1.27.0" {
		t.Errorf("entry set through onnxruntime_go, read through the handle: %q, %v, %v; want \"pinned to v1.27.0\"", v, ok, err)
	}
	if v, ok, err := sessionConfigEntry(so, "vdpp.test.unset"); err != nil || ok {
		t.Errorf("entry never set: %q, %v, %v; want absent", v, ok, err)
	}
	if _, err := sessionOptionsHandle(nil); err == nil {
		t.Error("sessionOptionsHandle(nil): no error")
	}
}

// TestEPDevicesCPU: with no plugin registered, GetEpDevices lists the CPU
// provider on the CPU only, and GetAvailableProviders has the CPU provider
// (through the OrtApi table indexed with include/'s header).
func TestEPDevicesCPU(t *testing.T) {
	needORT(t)
	checkCPUDevices(t, mustEPDevices(t))
	providers, err := availableProviders()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(providers, "CPUExecutionProvider") {
		t.Errorf("available providers %v lack CPUExecutionProvider", providers)
	}
}

func mustEPDevices(t *testing.T) []epDevice {
	t.Helper()
	devs, err := epDevices()
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

func checkCPUDevices(t *testing.T, devs []epDevice) {
	t.Helper()
	if len(devs) == 0 {
		t.Fatal("GetEpDevices lists no device")
	}
	for _, d := range devs {
		t.Logf("EP device: %s, EP vendor %q, EP metadata %v, hardware metadata %v", d, d.EPVendor, d.EPMetadata, d.HWMetadata)
		if d.EP != "CPUExecutionProvider" || d.Type != hwCPU {
			t.Errorf("EP device %s: want only CPUExecutionProvider on cpu", d)
		}
	}
}

// TestAppendEPOptions: SessionOptionsAppendExecutionProvider_V2 with the
// CPU provider's device puts the options in the session config as
// "ep.cpuexecutionprovider.<key>", as ONNX Runtime documents.
func TestAppendEPOptions(t *testing.T) {
	needORT(t)
	devs := mustEPDevices(t)
	so, err := onnxruntime.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	if err := appendEP(so, devs[0], map[string]string{"vdpp_probe": "42", "another": "x"}); err != nil {
		t.Fatalf("append %s: %v", devs[0], err)
	}
	for k, want := range map[string]string{"ep.cpuexecutionprovider.vdpp_probe": "42", "ep.cpuexecutionprovider.another": "x"} {
		if v, ok, err := sessionConfigEntry(so, k); err != nil || !ok || v != want {
			t.Errorf("config %s: %q, %v, %v; want %q", k, v, ok, err, want)
		}
	}
}

func TestPickCUDADevice(t *testing.T) {
	cpu := epDevice{EP: "CPUExecutionProvider", Type: hwCPU}
	gpu := func(id string, pci uint32) epDevice {
		d := epDevice{EP: cudaEP, Type: hwGPU, VendorID: 0x10de, DeviceID: pci}
		if id != "" {
			d.EPOptions = map[string]string{"device_id": id}
		}
		return d
	}
	numbered := []epDevice{cpu, gpu("1", 0xb), gpu("0", 0xa)}
	for _, c := range []struct {
		devs  []epDevice
		index int
		pci   uint32 // 0: an error
		err   string
	}{
		{numbered, 0, 0xa, ""},
		{numbered, 1, 0xb, ""},
		{numbered, 2, 0, "device_id 0, 1, not 2"},
		{[]epDevice{cpu, gpu("", 0xa), gpu("", 0xb)}, 1, 0xb, ""},
		{[]epDevice{cpu, gpu("", 0xa)}, 1, 0, "lists 1 GPU(s), none with index 1"},
		{[]epDevice{cpu}, 0, 0, "lists no GPU (devices: CPUExecutionProvider on cpu"},
	} {
		d, err := pickCUDADevice(c.devs, c.index)
		switch {
		case c.pci == 0 && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("pick %d of %v: %v, %v; want an error with %q", c.index, c.devs, d, err, c.err)
		case c.pci != 0 && (err != nil || d.DeviceID != c.pci):
			t.Errorf("pick %d of %v: %v, %v; want the device %x", c.index, c.devs, d, err, c.pci)
		}
	}
}

func TestMissingLibrary(t *testing.T) {
	for msg, want := range map[string]string{
		"Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory": "libcublasLt.so.13",
		"libcudnn.so.9: cannot open shared object file": "libcudnn.so.9",
		"some other failure":                            "",
	} {
		if got := missingLibrary(msg); got != want {
			t.Errorf("missingLibrary(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestCUDAWithoutPlugin: a plan device on provider cuda, with a library
// whose CUDA provider cannot load and that has no plugin next to it (the
// 1.24.3 of `make ort`: a build whose CUDA provider needs libraries it
// does not ship), fails with what to do: provider: cpu or `make ort-gpu`;
// in a CPU build, also the plugin that is missing and $VDPP_ORT_CUDA_PLUGIN.
// With $VDPP_ORT_CUDA_PLUGIN naming a missing file, it names that file.
func TestCUDAWithoutPlugin(t *testing.T) {
	needORT(t)
	providers, err := availableProviders()
	if err != nil {
		t.Fatal(err)
	}
	beside := filepath.Join(filepath.Dir(Library()), cudaPluginFile)
	if _, err := os.Stat(beside); err == nil {
		t.Skipf("skipped: %s has a CUDA provider library next to it", Library())
	}
	t.Setenv(EnvCUDAPlugin, "")
	p, err := plan.Load(filepath.Join("..", "..", "configs", "tiny-cpu-2stage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st := p.Pipelines[0].Stages[0]
	d := p.Devices[st.DevIdx]
	d.Provider, d.Index, d.Threads = plan.ProviderCUDA, 0, 0
	m, err := Factory(p, false)(d, st)
	if err == nil {
		if c, ok := m.(interface{ Close() error }); ok {
			c.Close()
		}
		t.Fatal("a cuda device opened with no CUDA provider library")
	}
	t.Logf("cuda device without a CUDA provider library (providers %v): %v", providers, err)
	say := []string{cudaNotAvailable, "device " + d.Name, Library(), "make ort-gpu", "provider: cpu"}
	if !slices.Contains(providers, cudaEP) {
		say = append(say, beside, EnvCUDAPlugin, "CPUExecutionProvider")
	}
	for _, s := range say {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}

	missing := filepath.Join(t.TempDir(), cudaPluginFile)
	t.Setenv(EnvCUDAPlugin, missing)
	cfg := tiny.DefaultConfig()
	if m, err := Open(tinyFiles(committed), cfg.Shape(1), Options{Provider: plan.ProviderCUDA}); err == nil {
		m.Close()
		t.Fatalf("opened with %s=%s", EnvCUDAPlugin, missing)
	} else if !strings.Contains(err.Error(), missing+" ($"+EnvCUDAPlugin+") does not exist") {
		t.Errorf("with %s=%s: error %q does not name it", EnvCUDAPlugin, missing, err)
	}
}

// Environment of the children of the plugin tests, which load another
// library or register a plugin (both once per process): the library to
// load and the file to write the childReport to.
const (
	envChildLib = "VDPP_TEST_ORT_CHILD_LIB"
	envChildOut = "VDPP_TEST_ORT_CHILD_OUT"
)

// childReport is what a child saw.
type childReport struct {
	Version string
	Devices []string          // GetEpDevices, described
	CUDA    int               // how many of them are CUDAExecutionProvider on a gpu
	Errs    map[string]string // by what was tried: "" when it worked
}

// inChild runs f and writes its report when this process is a child of
// the test (its library loaded), and says whether it was.
func inChild(t *testing.T, f func(r *childReport)) bool {
	t.Helper()
	lib := os.Getenv(envChildLib)
	if lib == "" {
		return false
	}
	if err := Init(lib); err != nil {
		t.Fatal(err)
	}
	r := childReport{Version: Version(), Errs: map[string]string{}}
	f(&r)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(envChildOut), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return true
}

// listDevices fills r.Devices and r.CUDA.
func (r *childReport) listDevices() {
	devs, err := epDevices()
	r.Errs["devices"] = errString(err)
	for _, d := range devs {
		r.Devices = append(r.Devices, d.String())
		if d.EP == cudaEP && d.Type == hwGPU {
			r.CUDA++
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runChild runs the current test again in a child process that loads lib,
// with env added, and returns its report.
func runChild(t *testing.T, lib string, env ...string) childReport {
	t.Helper()
	var r childReport
	childJSON(t, lib, &r, env...)
	return r
}

// childJSON runs the current test again in a child process that loads
// lib (envChildLib), with env added, and reads into v the JSON the child
// wrote to envChildOut.
func childJSON(t *testing.T, lib string, v any, env ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "child.json")
	cmd := osexec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envChildLib+"="+lib, EnvLib+"="+lib, envChildOut+"="+out)
	cmd.Env = append(cmd.Env, env...)
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child with %s: %v\n%s", lib, err, log)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("child with %s wrote nothing: %v\n%s", lib, err, log)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// gpuLibrary is the core library `make ort-gpu` fetched, or "" (the test
// is then skipped, saying why).
func gpuLibrary(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join("..", "..", gpuLibGlob))
	if len(matches) == 0 {
		t.Skipf("skipped: no %s: run `make ort-gpu` in the repository to fetch ONNX Runtime with its CUDA provider (about 330 MB)", gpuLibGlob)
	}
	lib, err := filepath.Abs(matches[len(matches)-1])
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

// TestCUDAPlugin129: with the core library of `make ort-gpu` (1.29, a CPU
// build), GetEpDevices lists the CPU provider only before any plugin is
// registered, and a cuda device registers the CUDA provider library next
// to it as a plugin. Where that library's CUDA dependencies are missing
// (here: no CUDA 13), the error names the library the loader could not
// find and what to install; where they load, it opens on the GPU or says
// which later step failed. Skipped when `make ort-gpu` has not run.
func TestCUDAPlugin129(t *testing.T) {
	if inChild(t, func(r *childReport) {
		r.listDevices()
		cfg := tiny.DefaultConfig()
		m, err := Open(tinyFiles(committed), cfg.Shape(1), Options{Provider: plan.ProviderCUDA})
		if err == nil {
			m.Close()
		}
		r.Errs["open"] = errString(err)
	}) {
		return
	}
	lib := gpuLibrary(t)
	r := runChild(t, lib, EnvCUDAPlugin+"=")
	t.Logf("%s (ONNX Runtime %s): EP devices %v", lib, r.Version, r.Devices)
	if r.Errs["devices"] != "" {
		t.Fatalf("GetEpDevices: %s", r.Errs["devices"])
	}
	if len(r.Devices) == 0 || r.CUDA != 0 {
		t.Errorf("before registering a plugin: EP devices %v, want CPUExecutionProvider only", r.Devices)
	}
	for _, d := range r.Devices {
		if !strings.HasPrefix(d, "CPUExecutionProvider on cpu") {
			t.Errorf("before registering a plugin: EP device %q, want CPUExecutionProvider on cpu only", d)
		}
	}
	plugin := filepath.Join(filepath.Dir(lib), cudaPluginFile)
	open := r.Errs["open"]
	if open == "" {
		t.Logf("cuda device 0: the tiny model opened through the CUDA provider plugin %s", plugin)
		return
	}
	t.Logf("cuda device 0: %s", open)
	for _, say := range []string{cudaNotAvailable, lib, plugin} {
		if !strings.Contains(open, say) {
			t.Errorf("error %q does not say %q", open, say)
		}
	}
	if strings.Contains(open, "RegisterExecutionProviderLibrary") {
		missing := missingLibrary(open)
		if missing == "" || !slices.Contains(cudaLibraries(plugin), missing) {
			t.Errorf("registration error %q names no library %s links (%v)", open, plugin, cudaLibraries(plugin))
		}
		for _, say := range []string{"(" + missing + " is missing)", "libcudart.so.13", "libcublasLt.so.13", "cuDNN 9", "LD_LIBRARY_PATH", "provider: cpu"} {
			if !strings.Contains(open, say) {
				t.Errorf("registration error %q does not say %q", open, say)
			}
		}
	}
}

// fakePlugin builds testdata/fake_cuda_ep.c, a plugin execution provider
// that calls itself CUDAExecutionProvider and offers two virtual NVIDIA
// GPUs, or skips the test when there is no C compiler.
func fakePlugin(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		if out, err := osexec.Command("go", "env", "CC").Output(); err == nil {
			cc = strings.TrimSpace(string(out))
		}
	}
	if cc == "" {
		cc = "cc"
	}
	if _, err := osexec.LookPath(cc); err != nil {
		t.Skipf("skipped: no C compiler (%s) to build testdata/fake_cuda_ep.c: %v", cc, err)
	}
	so := filepath.Join(t.TempDir(), "libfake_cuda_ep.so")
	cmd := osexec.Command(cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-Iinclude", "-o", so, filepath.Join("testdata", "fake_cuda_ep.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the fake CUDA plugin: %v\n%s", err, out)
	}
	return so
}

// TestCUDAPluginRoute follows appendCUDA's plugin route to the end on a
// machine without a GPU, with a fake CUDA provider plugin whose two
// virtual GPUs are listed device_id 1 first, and whose CreateEp fails
// saying what ONNX Runtime gave it. A cuda device with index i reaches
// CreateEp with GPU i and device_id=i: the registration (once, for both),
// the device lookup, SessionOptionsAppendExecutionProvider_V2 and the
// session that onnxruntime_go creates in the same OrtEnv all work. An
// index the plugin does not list fails at the lookup. A library
// registered through onnxruntime_go's own OrtEnv shows in this package's
// GetEpDevices (one OrtEnv per process). It runs with the 1.24.3 library,
// and with `make ort-gpu`'s 1.29 core where that is present.
func TestCUDAPluginRoute(t *testing.T) {
	if inChild(t, func(r *childReport) {
		if os.Getenv("VDPP_TEST_ORT_GO_REGISTER") != "" {
			r.Errs["go register"] = errString(onnxruntime.RegisterExecutionProviderLibrary("go_fake", os.Getenv(EnvCUDAPlugin)))
			r.listDevices()
			return
		}
		cfg := tiny.DefaultConfig()
		for _, i := range []int{0, 1, 2} {
			m, err := Open(Files{UNet: tinyFiles(committed).UNet}, cfg.Shape(1), Options{Provider: plan.ProviderCUDA, CUDADevice: i})
			if err == nil {
				m.Close()
			}
			r.Errs[string(rune('0'+i))] = errString(err)
		}
		r.listDevices()
	}) {
		return
	}
	needORT(t)
	plugin := fakePlugin(t)
	libs := []string{Library()}
	if matches, _ := filepath.Glob(filepath.Join("..", "..", gpuLibGlob)); len(matches) > 0 {
		if lib, err := filepath.Abs(matches[len(matches)-1]); err == nil {
			libs = append(libs, lib)
		}
	} else {
		t.Logf("only %s: no %s (`make ort-gpu`)", Library(), gpuLibGlob)
	}
	for _, lib := range libs {
		r := runChild(t, lib, EnvCUDAPlugin+"="+plugin)
		t.Logf("%s (ONNX Runtime %s): EP devices %v", lib, r.Version, r.Devices)
		if r.CUDA != 2 {
			t.Errorf("%s: EP devices %v, want the fake plugin's 2 GPUs", lib, r.Devices)
		}
		for i, want := range []string{"hardware device 0x2330, option device_id=0", "hardware device 0x2331, option device_id=1"} {
			err := r.Errs[string(rune('0'+i))]
			t.Logf("cuda device %d: %s", i, err)
			for _, say := range []string{cudaNotAvailable, "create the session", "fake CUDA EP: CreateEp on 1 device(s), " + want, plugin, "cuDNN 9"} {
				if !strings.Contains(err, say) {
					t.Errorf("%s, cuda device %d: error %q does not say %q", lib, i, err, say)
				}
			}
		}
		err := r.Errs["2"]
		t.Logf("cuda device 2: %s", err)
		if !strings.Contains(err, "find CUDA device 2: the CUDA provider lists GPUs with device_id 0, 1, not 2") {
			t.Errorf("%s, cuda device 2: error %q", lib, err)
		}

		r = runChild(t, lib, EnvCUDAPlugin+"="+plugin, "VDPP_TEST_ORT_GO_REGISTER=1")
		if r.Errs["go register"] != "" || r.CUDA != 2 {
			t.Errorf("%s: registered through onnxruntime_go (%q), this package's GetEpDevices lists %v, want the fake plugin's 2 GPUs",
				lib, r.Errs["go register"], r.Devices)
		}
	}
}
