package gpu

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>

static void *vdpp_dlopen(const char *name) { return dlopen(name, RTLD_LAZY | RTLD_LOCAL); }

static const char *vdpp_dlpath(void *h) {
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL) return NULL;
	return lm->l_name;
}

typedef int (*vdpp_int_getter)(int *);
static int vdpp_call_int(void *f, int *out) { return ((vdpp_int_getter)f)(out); }

typedef size_t (*vdpp_size_getter)(void);
static size_t vdpp_call_size(void *f) { return ((vdpp_size_getter)f)(); }
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// VersionCall says how a library reports its version: the C function and
// its shape.
type VersionCall struct {
	Symbol string
	// IntOut: int f(int *out), returning 0 on success (cudaRuntimeGetVersion,
	// ncclGetVersion); otherwise size_t f(void) (cudnnGetVersion,
	// cublasLtGetVersion).
	IntOut bool
	// Format turns the number into a version string.
	Format func(int) string
}

// Library is one shared library the CUDA provider (or NCCL) needs.
type Library struct {
	What    string // "CUDA runtime"
	Name    string // soname, "libcudart.so.13"
	Install string // what to install when it is missing
	Version *VersionCall
}

// LibraryStatus is what loading a Library found.
type LibraryStatus struct {
	Library
	Path    string // where the dynamic loader found it
	Found   string // version, "" when not reported
	Err     error  // nil: it loads
	Checked bool
}

// majorMinorPatch formats M*10000+m*100+p (cuDNN 9, cuBLASLt, NCCL ≥ 2.9).
func majorMinorPatch(v int) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// CUDALibraries are the libraries vdexec's CUDA path needs (the ONNX
// Runtime CUDA provider for CUDA 13, and NCCL for a future transport).
var CUDALibraries = []Library{
	{What: "CUDA runtime", Name: "libcudart.so.13", Install: "the CUDA 13 runtime (CUDA toolkit 13, or the cuda-cudart-13-0 package)",
		Version: &VersionCall{Symbol: "cudaRuntimeGetVersion", IntOut: true, Format: func(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }}},
	{What: "cuBLAS", Name: "libcublas.so.13", Install: "cuBLAS for CUDA 13 (CUDA toolkit 13, or the libcublas-13-0 package)"},
	{What: "cuBLASLt", Name: "libcublasLt.so.13", Install: "cuBLASLt for CUDA 13 (it comes with cuBLAS: libcublas-13-0)",
		Version: &VersionCall{Symbol: "cublasLtGetVersion", Format: majorMinorPatch}},
	{What: "cuDNN", Name: "libcudnn.so.9", Install: "cuDNN 9 for CUDA 13 (the cudnn9-cuda-13 package)",
		Version: &VersionCall{Symbol: "cudnnGetVersion", Format: majorMinorPatch}},
	{What: "NCCL", Name: "libnccl.so.2", Install: "NCCL 2 for CUDA 13 (the libnccl2 package, or the nvidia-nccl-cu13 Python wheel; transport nccl uses it)",
		Version: &VersionCall{Symbol: "ncclGetVersion", IntOut: true, Format: majorMinorPatch}},
}

// Load opens lib with dlopen (as the ONNX Runtime CUDA provider would:
// the loader's search path, ldconfig or LD_LIBRARY_PATH), reads its
// version where it reports one cheaply, and closes it again.
func Load(lib Library) LibraryStatus {
	st := LibraryStatus{Library: lib, Checked: true}
	name := C.CString(lib.Name)
	defer C.free(unsafe.Pointer(name))
	h := C.vdpp_dlopen(name)
	if h == nil {
		st.Err = errors.New(dlerror())
		return st
	}
	defer C.dlclose(h)
	if p := C.vdpp_dlpath(h); p != nil {
		st.Path = C.GoString(p)
	}
	if v := lib.Version; v != nil {
		sym := C.CString(v.Symbol)
		defer C.free(unsafe.Pointer(sym))
		C.dlerror()
		f := C.dlsym(h, sym)
		if f == nil {
			return st
		}
		if v.IntOut {
			var out C.int
			if C.vdpp_call_int(f, &out) == 0 {
				st.Found = v.Format(int(out))
			}
		} else {
			st.Found = v.Format(int(C.vdpp_call_size(f)))
		}
	}
	return st
}

// dlerror is the dynamic loader's last error, one line.
func dlerror() string {
	e := C.dlerror()
	if e == nil {
		return "not found"
	}
	return strings.TrimSpace(C.GoString(e))
}

// LoadAll loads every library of libs, in order.
func LoadAll(libs []Library) []LibraryStatus {
	out := make([]LibraryStatus, len(libs))
	for i, l := range libs {
		out[i] = Load(l)
	}
	return out
}
