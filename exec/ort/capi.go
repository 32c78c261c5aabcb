package ort

// This file calls the parts of ONNX Runtime's C API that onnxruntime_go
// v1.27.0 does not wrap: plugin execution providers (GetEpDevices and
// SessionOptionsAppendExecutionProvider_V2, API ≥ 22), the providers a
// build has (GetAvailableProviders) and session config entries. It takes
// the OrtApi table from the library Init loaded (dlopen with RTLD_NOLOAD:
// the same mapping, never a second copy) and indexes it with the API 24
// header in include/ (see include/README.md).

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo LDFLAGS: -ldl

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "onnxruntime_c_api.h"

static const OrtApi *vdpp_api;

typedef const OrtApiBase *(*vdpp_api_base_fn)(void);

// vdpp_load takes the OrtApi of the library at path, which must already be
// loaded in this process. It returns 0, else 1 (not loaded), 2 (no
// OrtGetApiBase) or 3 (the library does not serve ORT_API_VERSION), with
// why set for 1 and 2.
static int vdpp_load(const char *path, char *why, size_t why_len) {
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (!h) {
		const char *e = dlerror();
		snprintf(why, why_len, "%s", e ? e : "not loaded");
		return 1;
	}
	vdpp_api_base_fn base_fn = (vdpp_api_base_fn)dlsym(h, "OrtGetApiBase");
	if (!base_fn) {
		const char *e = dlerror();
		snprintf(why, why_len, "%s", e ? e : "no OrtGetApiBase");
		return 2;
	}
	const OrtApiBase *base = base_fn();
	const OrtApi *api = base ? base->GetApi(ORT_API_VERSION) : NULL;
	if (!api) return 3;
	vdpp_api = api;
	return 0;
}

static const char *vdpp_status_message(OrtStatus *s) { return vdpp_api->GetErrorMessage(s); }
static void vdpp_status_release(OrtStatus *s) { vdpp_api->ReleaseStatus(s); }

static OrtStatus *vdpp_env(OrtEnv **out) {
	return vdpp_api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "vdpp", out);
}
static void vdpp_env_release(OrtEnv *env) { vdpp_api->ReleaseEnv(env); }

static OrtStatus *vdpp_available_providers(char ***out, int *n) {
	return vdpp_api->GetAvailableProviders(out, n);
}
static OrtStatus *vdpp_release_available_providers(char **p, int n) {
	return vdpp_api->ReleaseAvailableProviders(p, n);
}
static char *vdpp_string_at(char **p, int i) { return p[i]; }

static OrtStatus *vdpp_register(OrtEnv *env, const char *name, const char *path) {
	return vdpp_api->RegisterExecutionProviderLibrary(env, name, path);
}

static OrtStatus *vdpp_ep_devices(const OrtEnv *env, const OrtEpDevice *const **devs, size_t *n) {
	return vdpp_api->GetEpDevices(env, devs, n);
}
static const OrtEpDevice *vdpp_ep_device_at(const OrtEpDevice *const *devs, size_t i) { return devs[i]; }
static const char *vdpp_ep_name(const OrtEpDevice *d) { return vdpp_api->EpDevice_EpName(d); }
static const char *vdpp_ep_vendor(const OrtEpDevice *d) { return vdpp_api->EpDevice_EpVendor(d); }
static const OrtKeyValuePairs *vdpp_ep_metadata(const OrtEpDevice *d) { return vdpp_api->EpDevice_EpMetadata(d); }
static const OrtKeyValuePairs *vdpp_ep_options(const OrtEpDevice *d) { return vdpp_api->EpDevice_EpOptions(d); }
static const OrtHardwareDevice *vdpp_ep_hardware(const OrtEpDevice *d) { return vdpp_api->EpDevice_Device(d); }
static int vdpp_hw_type(const OrtHardwareDevice *h) { return (int)vdpp_api->HardwareDevice_Type(h); }
static uint32_t vdpp_hw_vendor_id(const OrtHardwareDevice *h) { return vdpp_api->HardwareDevice_VendorId(h); }
static const char *vdpp_hw_vendor(const OrtHardwareDevice *h) { return vdpp_api->HardwareDevice_Vendor(h); }
static uint32_t vdpp_hw_device_id(const OrtHardwareDevice *h) { return vdpp_api->HardwareDevice_DeviceId(h); }
static const OrtKeyValuePairs *vdpp_hw_metadata(const OrtHardwareDevice *h) { return vdpp_api->HardwareDevice_Metadata(h); }

static size_t vdpp_kv_count(const OrtKeyValuePairs *kv, const char *const **keys, const char *const **values) {
	size_t n = 0;
	*keys = NULL;
	*values = NULL;
	if (kv) vdpp_api->GetKeyValuePairs(kv, keys, values, &n);
	return n;
}
static const char *vdpp_cstr_at(const char *const *p, size_t i) { return p[i]; }

static OrtStatus *vdpp_append_ep(OrtSessionOptions *so, OrtEnv *env, const OrtEpDevice *dev,
		const char *const *keys, const char *const *values, size_t n) {
	const OrtEpDevice *devs[1] = {dev};
	return vdpp_api->SessionOptionsAppendExecutionProvider_V2(so, env, devs, 1, keys, values, n);
}

static OrtStatus *vdpp_has_config(const OrtSessionOptions *so, const char *key, int *out) {
	return vdpp_api->HasSessionConfigEntry(so, key, out);
}
static OrtStatus *vdpp_get_config(const OrtSessionOptions *so, const char *key, char *value, size_t *size) {
	return vdpp_api->GetSessionConfigEntry(so, key, value, size);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unsafe"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

// capi is the OrtApi table and the OrtEnv of the loaded library, taken
// once per process (a process holds one library).
var capi struct {
	sync.Mutex
	env *C.OrtEnv
	lib string
	err error
}

// ortEnv returns the process's OrtEnv, after loading the OrtApi table of
// the library Init loaded. ONNX Runtime keeps one OrtEnv per process
// (OrtEnv::GetInstance): CreateEnv returns the instance onnxruntime_go
// created and counts a reference, which this package keeps for the life
// of the process, so that the OrtEpDevice values the env owns stay valid.
func ortEnv() (*C.OrtEnv, error) {
	capi.Lock()
	defer capi.Unlock()
	if capi.env != nil || capi.err != nil {
		return capi.env, capi.err
	}
	lib := Library()
	if lib == "" {
		return nil, errors.New("ort: ONNX Runtime is not loaded (Init has not succeeded)")
	}
	capi.lib = lib
	clib := C.CString(lib)
	defer C.free(unsafe.Pointer(clib))
	var why [512]C.char
	switch rc := C.vdpp_load(clib, &why[0], C.size_t(len(why))); rc {
	case 0:
	case 3:
		capi.err = fmt.Errorf("ort: %s does not serve ONNX Runtime C API %d", lib, C.ORT_API_VERSION)
		return nil, capi.err
	default:
		capi.err = fmt.Errorf("ort: take the C API of %s: %s", lib, C.GoString(&why[0]))
		return nil, capi.err
	}
	var env *C.OrtEnv
	if err := statusError(C.vdpp_env(&env)); err != nil {
		capi.err = fmt.Errorf("ort: get the ONNX Runtime environment: %w", err)
		return nil, capi.err
	}
	capi.env = env
	return env, nil
}

// statusError turns an OrtStatus into an error with ONNX Runtime's
// message, and releases it; nil for nil.
func statusError(s *C.OrtStatus) error {
	if s == nil {
		return nil
	}
	msg := strings.TrimSpace(C.GoString(C.vdpp_status_message(s)))
	C.vdpp_status_release(s)
	return errors.New(msg)
}

// availableProviders lists the execution providers built into the loaded
// library (GetAvailableProviders): CPUExecutionProvider, and
// CUDAExecutionProvider in a build with CUDA; plugin providers are not
// among them.
func availableProviders() ([]string, error) {
	if _, err := ortEnv(); err != nil {
		return nil, err
	}
	var p **C.char
	var n C.int
	if err := statusError(C.vdpp_available_providers(&p, &n)); err != nil {
		return nil, fmt.Errorf("ort: GetAvailableProviders: %w", err)
	}
	out := make([]string, int(n))
	for i := range out {
		out[i] = C.GoString(C.vdpp_string_at(p, C.int(i)))
	}
	if err := statusError(C.vdpp_release_available_providers(p, n)); err != nil {
		return nil, fmt.Errorf("ort: ReleaseAvailableProviders: %w", err)
	}
	return out, nil
}

// registerEPLibrary registers the execution provider library at path
// under name (RegisterExecutionProviderLibrary): ONNX Runtime loads it and
// adds the devices its factories support to GetEpDevices.
func registerEPLibrary(name, path string) error {
	env, err := ortEnv()
	if err != nil {
		return err
	}
	cn, cp := C.CString(name), C.CString(path)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cp))
	return statusError(C.vdpp_register(env, cn, cp))
}

// Hardware device types (OrtHardwareDeviceType).
const (
	hwCPU = "cpu"
	hwGPU = "gpu"
	hwNPU = "npu"
)

// epDevice is one OrtEpDevice of GetEpDevices: an execution provider and
// a hardware device it can use.
type epDevice struct {
	ptr        *C.OrtEpDevice
	EP         string // execution provider name: CPUExecutionProvider, CUDAExecutionProvider
	EPVendor   string
	EPMetadata map[string]string
	EPOptions  map[string]string // the provider's default options for this device (CUDA: device_id)
	Type       string            // hwCPU, hwGPU, hwNPU
	VendorID   uint32            // PCI vendor id (0x10de: NVIDIA)
	Vendor     string
	DeviceID   uint32 // PCI device id (not the CUDA device index)
	HWMetadata map[string]string
}

// String describes d for error messages:
// "CUDAExecutionProvider on gpu 10de:2335 (device_id=0)".
func (d epDevice) String() string {
	s := fmt.Sprintf("%s on %s %04x:%04x", d.EP, d.Type, d.VendorID, d.DeviceID)
	if d.Vendor != "" {
		s += " " + d.Vendor
	}
	if len(d.EPOptions) > 0 {
		s += " (" + kvString(d.EPOptions) + ")"
	}
	return s
}

func kvString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, " ")
}

func kvMap(kv *C.OrtKeyValuePairs) map[string]string {
	var keys, values **C.char
	n := C.vdpp_kv_count(kv, &keys, &values)
	m := make(map[string]string, int(n))
	for i := C.size_t(0); i < n; i++ {
		m[C.GoString(C.vdpp_cstr_at(keys, i))] = C.GoString(C.vdpp_cstr_at(values, i))
	}
	return m
}

// epDevices lists the OrtEpDevices of the process's environment
// (GetEpDevices): the CPU provider's, and those of the registered plugin
// libraries.
func epDevices() ([]epDevice, error) {
	env, err := ortEnv()
	if err != nil {
		return nil, err
	}
	var devs **C.OrtEpDevice
	var n C.size_t
	if err := statusError(C.vdpp_ep_devices(env, &devs, &n)); err != nil {
		return nil, fmt.Errorf("ort: GetEpDevices: %w", err)
	}
	out := make([]epDevice, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		p := C.vdpp_ep_device_at(devs, i)
		d := epDevice{
			ptr:        p,
			EP:         C.GoString(C.vdpp_ep_name(p)),
			EPVendor:   C.GoString(C.vdpp_ep_vendor(p)),
			EPMetadata: kvMap(C.vdpp_ep_metadata(p)),
			EPOptions:  kvMap(C.vdpp_ep_options(p)),
		}
		if hw := C.vdpp_ep_hardware(p); hw != nil {
			switch t := int(C.vdpp_hw_type(hw)); t {
			case int(C.OrtHardwareDeviceType_CPU):
				d.Type = hwCPU
			case int(C.OrtHardwareDeviceType_GPU):
				d.Type = hwGPU
			case int(C.OrtHardwareDeviceType_NPU):
				d.Type = hwNPU
			default:
				d.Type = fmt.Sprintf("type %d", t)
			}
			d.VendorID = uint32(C.vdpp_hw_vendor_id(hw))
			d.Vendor = C.GoString(C.vdpp_hw_vendor(hw))
			d.DeviceID = uint32(C.vdpp_hw_device_id(hw))
			d.HWMetadata = kvMap(C.vdpp_hw_metadata(hw))
		}
		out = append(out, d)
	}
	return out, nil
}

// appendEP appends the execution provider of dev to so for dev
// (SessionOptionsAppendExecutionProvider_V2) with the provider options
// opts, which win over the device's default EPOptions. ONNX Runtime keeps
// them in so's config as "ep.<provider name in lower case>.<key>".
func appendEP(so *onnxruntime.SessionOptions, dev epDevice, opts map[string]string) error {
	env, err := ortEnv()
	if err != nil {
		return err
	}
	h, err := sessionOptionsHandle(so)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := len(keys)
	var ck, cv **C.char
	if n > 0 {
		size := C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))
		ck, cv = (**C.char)(C.malloc(size)), (**C.char)(C.malloc(size))
		defer C.free(unsafe.Pointer(ck))
		defer C.free(unsafe.Pointer(cv))
		ks, vs := unsafe.Slice(ck, n), unsafe.Slice(cv, n)
		for i, k := range keys {
			ks[i], vs[i] = C.CString(k), C.CString(opts[k])
			defer C.free(unsafe.Pointer(ks[i]))
			defer C.free(unsafe.Pointer(vs[i]))
		}
	}
	return statusError(C.vdpp_append_ep(h, env, dev.ptr, ck, cv, C.size_t(n)))
}

// sessionConfigEntry reads key from so's config (HasSessionConfigEntry,
// GetSessionConfigEntry): its value and whether it is set.
func sessionConfigEntry(so *onnxruntime.SessionOptions, key string) (string, bool, error) {
	if _, err := ortEnv(); err != nil {
		return "", false, err
	}
	h, err := sessionOptionsHandle(so)
	if err != nil {
		return "", false, err
	}
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	var has C.int
	if err := statusError(C.vdpp_has_config(h, ckey, &has)); err != nil {
		return "", false, fmt.Errorf("ort: HasSessionConfigEntry %q: %w", key, err)
	}
	if has == 0 {
		return "", false, nil
	}
	var size C.size_t
	if err := statusError(C.vdpp_get_config(h, ckey, nil, &size)); err != nil {
		return "", false, fmt.Errorf("ort: GetSessionConfigEntry %q: %w", key, err)
	}
	buf := (*C.char)(C.malloc(size + 1))
	defer C.free(unsafe.Pointer(buf))
	if err := statusError(C.vdpp_get_config(h, ckey, buf, &size)); err != nil {
		return "", false, fmt.Errorf("ort: GetSessionConfigEntry %q: %w", key, err)
	}
	return C.GoString(buf), true, nil
}

// sessionOptionsHandle returns the OrtSessionOptions* that so wraps.
//
// onnxruntime_go v1.27.0 keeps it as the only field of SessionOptions
// (`type SessionOptions struct { o *C.OrtSessionOptions }`, unexported)
// and has no accessor, yet SessionOptionsAppendExecutionProvider_V2 needs
// it. So it is read through unsafe, from that layout: this is the one
// place that does so. The size check refuses a SessionOptions that is no
// longer one pointer; TestSessionOptionsHandle proves the pointer is the
// one onnxruntime_go uses (a config entry set through onnxruntime_go reads
// back through it). Check both when onnxruntime_go is upgraded.
func sessionOptionsHandle(so *onnxruntime.SessionOptions) (*C.OrtSessionOptions, error) {
	if so == nil {
		return nil, errors.New("ort: nil session options")
	}
	if unsafe.Sizeof(*so) != unsafe.Sizeof(uintptr(0)) {
		return nil, fmt.Errorf("ort: onnxruntime_go's SessionOptions is %d bytes, not the one pointer of v1.27.0: "+
			"update sessionOptionsHandle for this version", unsafe.Sizeof(*so))
	}
	h := *(**C.OrtSessionOptions)(unsafe.Pointer(so))
	if h == nil {
		return nil, errors.New("ort: session options are destroyed")
	}
	return h, nil
}
