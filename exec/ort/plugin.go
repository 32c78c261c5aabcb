package ort

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

// EnvCUDAPlugin names the CUDA execution provider library to register as
// a plugin when the loaded ONNX Runtime has no CUDA provider built in.
// Unset, it is libonnxruntime_providers_cuda.so in the loaded library's
// folder (where `make ort-gpu` puts it). It must come from the same ONNX
// Runtime release as the loaded library.
const EnvCUDAPlugin = "VDPP_ORT_CUDA_PLUGIN"

const (
	// cudaPluginFile is the CUDA provider library's name in a release.
	cudaPluginFile = "libonnxruntime_providers_cuda.so"
	// cudaEP is the CUDA execution provider's name, in
	// GetAvailableProviders and on its OrtEpDevices.
	cudaEP = "CUDAExecutionProvider"
	// cudaRegistration is the name this package registers the plugin
	// under.
	cudaRegistration = "vdpp_cuda"
	// cudaNotAvailable starts every error of a cuda provider that cannot
	// be used (scripts/gpu-check.sh looks for it).
	cudaNotAvailable = "CUDA execution provider not available"
	// cudaNeeds is what the CUDA provider needs beyond the libraries it
	// links (listed from its ELF header where it can be read).
	cudaNeeds = "cuDNN 9 for CUDA 13 (libcudnn.so.9, loaded when a session is created) and a GPU of " +
		"compute capability ≥ 7.5 with an NVIDIA driver for CUDA 13 (≥ 580)"
)

// cudaPlugin is the process's registration of a CUDA provider plugin: a
// library is registered (or tried) once, and a process registers one.
var cudaPlugin struct {
	sync.Mutex
	path  string // the library registered or tried; "" before
	err   error  // the registration's error
	inUse bool   // registered without error
}

// cudaPluginPath is the CUDA provider library to register: $VDPP_ORT_CUDA_PLUGIN,
// else libonnxruntime_providers_cuda.so next to the loaded library. fromEnv
// says which.
func cudaPluginPath() (path string, fromEnv bool) {
	if p := os.Getenv(EnvCUDAPlugin); p != "" {
		return p, true
	}
	return filepath.Join(filepath.Dir(Library()), cudaPluginFile), false
}

// appendCUDA adds the CUDA execution provider on CUDA device `device` to
// so. A library built with CUDA (CUDAExecutionProvider among its
// available providers, such as the 1.24.3 of `make ort`, which then needs
// its provider libraries next to it) gets it through
// AppendExecutionProviderCUDA, unless $VDPP_ORT_CUDA_PLUGIN is set. Any
// other, such as the CPU-only core of `make ort-gpu`, reaches CUDA only
// through the CUDA provider library registered as a plugin execution
// provider: it is registered once per process (RegisterExecutionProviderLibrary),
// its OrtEpDevice for the device is looked up (GetEpDevices) and appended
// with device_id (SessionOptionsAppendExecutionProvider_V2). Each failure
// says which step failed, ONNX Runtime's message and what to install.
func appendCUDA(so *onnxruntime.SessionOptions, device int) error {
	providers, err := availableProviders()
	if err != nil {
		return cudaStepError("list the library's execution providers", err, "")
	}
	path, fromEnv := cudaPluginPath()
	if !fromEnv && slices.Contains(providers, cudaEP) {
		return appendBuiltinCUDA(so, device)
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		where := "next to it"
		if fromEnv {
			where = "($" + EnvCUDAPlugin + ")"
		}
		return fmt.Errorf("%s in %s: this ONNX Runtime build has no CUDA provider built in (its providers: %s) "+
			"and no CUDA provider plugin: %s %s does not exist; use provider: cpu, or run `make ort-gpu` and pass "+
			"--ort-lib third_party/onnxruntime-gpu-1.29.0/libonnxruntime.so (or set %s to it), or set %s to the %s "+
			"of the ONNX Runtime release of %s",
			cudaNotAvailable, Library(), strings.Join(providers, ", "), path, where, EnvLib, EnvCUDAPlugin,
			cudaPluginFile, Library())
	}
	if err := registerCUDAPlugin(path); err != nil {
		return err
	}
	devs, err := epDevices()
	if err != nil {
		return cudaStepError("list the execution provider devices", err, path)
	}
	dev, err := pickCUDADevice(devs, device)
	if err != nil {
		return cudaStepError(fmt.Sprintf("find CUDA device %d", device), err, path)
	}
	if err := appendEP(so, dev, map[string]string{"device_id": strconv.Itoa(device)}); err != nil {
		return cudaStepError(fmt.Sprintf("append the CUDA provider for device %d (%s, SessionOptionsAppendExecutionProvider_V2)", device, dev), err, path)
	}
	return nil
}

// appendBuiltinCUDA adds the CUDA provider of a library built with CUDA.
func appendBuiltinCUDA(so *onnxruntime.SessionOptions, device int) error {
	cu, err := onnxruntime.NewCUDAProviderOptions()
	if err != nil {
		return cudaError(err)
	}
	defer cu.Destroy()
	if err := cu.Update(map[string]string{"device_id": strconv.Itoa(device)}); err != nil {
		return fmt.Errorf("device %d: %w", device, cudaError(err))
	}
	if err := so.AppendExecutionProviderCUDA(cu); err != nil {
		return cudaError(err)
	}
	return nil
}

// registerCUDAPlugin registers the CUDA provider library at path, once per
// process; the error of the first try is kept.
func registerCUDAPlugin(path string) error {
	cudaPlugin.Lock()
	defer cudaPlugin.Unlock()
	if cudaPlugin.path != "" {
		if !samePath(path, cudaPlugin.path) {
			return fmt.Errorf("%s in %s: this process already registered the CUDA provider plugin %s, not %s",
				cudaNotAvailable, Library(), cudaPlugin.path, path)
		}
		return cudaPlugin.err
	}
	cudaPlugin.path = path
	if err := registerEPLibrary(cudaRegistration, path); err != nil {
		why := ""
		if lib := missingLibrary(err.Error()); lib != "" {
			why = fmt.Sprintf(" (%s is missing)", lib)
		}
		needs := "the CUDA libraries it links"
		if libs := cudaLibraries(path); len(libs) > 0 {
			needs = strings.Join(libs, ", ")
		}
		cudaPlugin.err = fmt.Errorf("%s in %s: register the CUDA provider plugin %s (RegisterExecutionProviderLibrary) failed%s: %v; "+
			"it needs %s (the CUDA 13 toolkit or its library packages, and the NVIDIA driver) where the dynamic loader "+
			"finds them (ldconfig's paths or LD_LIBRARY_PATH), then %s; or use provider: cpu",
			cudaNotAvailable, Library(), path, why, err, needs, cudaNeeds)
		return cudaPlugin.err
	}
	cudaPlugin.inUse = true
	return nil
}

// cudaPluginInUse returns the CUDA provider plugin this process registered,
// or "".
func cudaPluginInUse() string {
	cudaPlugin.Lock()
	defer cudaPlugin.Unlock()
	if cudaPlugin.inUse {
		return cudaPlugin.path
	}
	return ""
}

// pickCUDADevice finds the CUDA provider's OrtEpDevice for CUDA device
// index: the one whose default options say device_id=index (the CUDA
// provider numbers the NVIDIA GPUs it is given), else, where none says, the
// index-th in order. The device_id option passed with it (appendCUDA)
// picks the GPU the provider runs on.
func pickCUDADevice(devs []epDevice, index int) (epDevice, error) {
	var cuda []epDevice
	var all []string
	for _, d := range devs {
		all = append(all, d.String())
		if d.EP == cudaEP {
			cuda = append(cuda, d)
		}
	}
	if len(cuda) == 0 {
		return epDevice{}, fmt.Errorf("the CUDA provider lists no GPU (devices: %s): ONNX Runtime looks for GPUs under "+
			"/sys/class/drm (1.29 also /sys/bus/pci); check that the NVIDIA driver is loaded (nvidia-smi) and the GPU is visible here",
			strings.Join(all, "; "))
	}
	want := strconv.Itoa(index)
	numbered := false
	var ids []string
	for _, d := range cuda {
		if id, ok := d.EPOptions["device_id"]; ok {
			numbered = true
			ids = append(ids, id)
			if id == want {
				return d, nil
			}
		}
	}
	if !numbered && index < len(cuda) {
		return cuda[index], nil
	}
	if !numbered {
		return epDevice{}, fmt.Errorf("the CUDA provider lists %d GPU(s), none with index %d", len(cuda), index)
	}
	sort.Strings(ids)
	return epDevice{}, fmt.Errorf("the CUDA provider lists GPUs with device_id %s, not %d", strings.Join(ids, ", "), index)
}

// cudaStepError is the error of a step of appendCUDA after registration.
func cudaStepError(step string, err error, plugin string) error {
	via := ""
	if plugin != "" {
		via = " (CUDA provider plugin " + plugin + ")"
	}
	return fmt.Errorf("%s in %s%s: %s: %w", cudaNotAvailable, Library(), via, step, err)
}

// cudaSessionError is the error of creating a session with the cuda
// provider.
func cudaSessionError(err error) error {
	if p := cudaPluginInUse(); p != "" {
		return fmt.Errorf("%s in %s (CUDA provider plugin %s): create the session: %w; the CUDA provider needs %s",
			cudaNotAvailable, Library(), p, err, cudaNeeds)
	}
	return cudaError(err)
}

// missingLibrary is the library a dynamic loader error names as missing
// ("libcublasLt.so.13: cannot open shared object file"), or "".
func missingLibrary(msg string) string {
	m := missingLibRE.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return m[1]
}

var missingLibRE = regexp.MustCompile(`([A-Za-z0-9_.+-]+\.so(?:\.[0-9]+)*): cannot open shared object file`)

// cudaLibraries lists the CUDA and NVIDIA libraries the ELF file at path
// links (DT_NEEDED): libcublasLt.so.13, libcudart.so.13, libcuda.so.1, ...
// Nil when it cannot be read.
func cudaLibraries(path string) []string {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range libs {
		if strings.HasPrefix(l, "libcu") || strings.HasPrefix(l, "libnv") {
			out = append(out, l)
		}
	}
	return out
}
