package nccl

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Hand-declared prototypes of the NCCL and CUDA runtime functions this
// package calls, as function-pointer types: ncclComm_t, cudaStream_t and
// device pointers travel as uintptr_t, ncclResult_t, cudaError_t,
// ncclDataType_t and cudaMemcpyKind as int (C enums).
typedef struct { char internal[128]; } vdpp_nccl_unique_id;

static void *vdpp_nccl_dlopen(const char *name) { return dlopen(name, RTLD_NOW | RTLD_LOCAL); }

static const char *vdpp_nccl_dlpath(void *h) {
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL) return NULL;
	return lm->l_name;
}

// int f(int *)                 ncclGetVersion, cudaRuntimeGetVersion, cudaGetDeviceCount, cudaGetDevice
static int vdpp_call_intp(void *f, int *out) { return ((int (*)(int *))f)(out); }
// int f(int)                   cudaSetDevice
static int vdpp_call_int(void *f, int a) { return ((int (*)(int))f)(a); }
// const char *f(int)           ncclGetErrorString, cudaGetErrorString
static const char *vdpp_call_str_int(void *f, int a) { return ((const char *(*)(int))f)(a); }
// const char *f(ncclComm_t)    ncclGetLastError
static const char *vdpp_call_str_ptr(void *f, uintptr_t p) { return ((const char *(*)(void *))f)((void *)p); }
// int f(void *)                ncclCommDestroy, ncclCommAbort, cudaStreamDestroy, cudaStreamQuery, cudaStreamSynchronize, cudaFree, cudaFreeHost
static int vdpp_call_ptr(void *f, uintptr_t p) { return ((int (*)(void *))f)((void *)p); }
// int f(ncclComm_t, int *)     ncclCommGetAsyncError (ncclResult_t *), ncclCommCuDevice
static int vdpp_call_ptr_intp(void *f, uintptr_t p, int *out) { return ((int (*)(void *, int *))f)((void *)p, out); }
// int f(void)                  ncclGroupStart, ncclGroupEnd
static int vdpp_call_void(void *f) { return ((int (*)(void))f)(); }
// ncclResult_t ncclGetUniqueId(ncclUniqueId *)
static int vdpp_call_unique_id(void *f, char *out) {
	vdpp_nccl_unique_id id;
	memset(&id, 0, sizeof id);
	int r = ((int (*)(vdpp_nccl_unique_id *))f)(&id);
	memcpy(out, id.internal, sizeof id.internal);
	return r;
}
// ncclResult_t ncclCommInitRank(ncclComm_t *, int nranks, ncclUniqueId (by value), int rank)
static int vdpp_call_init_rank(void *f, uintptr_t *comm, int nranks, const char *idbytes, int rank) {
	vdpp_nccl_unique_id id;
	memcpy(id.internal, idbytes, sizeof id.internal);
	void *c = NULL;
	int r = ((int (*)(void **, int, vdpp_nccl_unique_id, int))f)(&c, nranks, id, rank);
	*comm = (uintptr_t)c;
	return r;
}
// ncclResult_t ncclSend(const void *, size_t, ncclDataType_t, int peer, ncclComm_t, cudaStream_t)
// ncclResult_t ncclRecv(void *, size_t, ncclDataType_t, int peer, ncclComm_t, cudaStream_t)
static int vdpp_call_p2p(void *f, uintptr_t buf, size_t count, int dtype, int peer, uintptr_t comm, uintptr_t stream) {
	return ((int (*)(void *, size_t, int, int, void *, void *))f)((void *)buf, count, dtype, peer, (void *)comm, (void *)stream);
}
// cudaError_t cudaStreamCreateWithFlags(cudaStream_t *, unsigned int)
static int vdpp_call_stream_create(void *f, uintptr_t *out, unsigned flags) {
	void *s = NULL;
	int r = ((int (*)(void **, unsigned))f)(&s, flags);
	*out = (uintptr_t)s;
	return r;
}
// cudaError_t cudaMalloc(void **, size_t), cudaMallocHost(void **, size_t)
static int vdpp_call_malloc(void *f, uintptr_t *out, size_t n) {
	void *p = NULL;
	int r = ((int (*)(void **, size_t))f)(&p, n);
	*out = (uintptr_t)p;
	return r;
}
// cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t, cudaMemcpyKind, cudaStream_t)
static int vdpp_call_memcpy_async(void *f, uintptr_t dst, uintptr_t src, size_t n, int kind, uintptr_t stream) {
	return ((int (*)(void *, const void *, size_t, int, void *))f)((void *)dst, (const void *)src, n, kind, (void *)stream);
}
// Copies between Go memory and pinned host memory, addressed as uintptr_t.
static void vdpp_copy_in(uintptr_t dst, const void *src, size_t n) { memcpy((void *)dst, src, n); }
static void vdpp_copy_out(void *dst, uintptr_t src, size_t n) { memcpy(dst, (const void *)src, n); }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// EnvNCCLLib names the path of libnccl (what --nccl-lib sets).
const EnvNCCLLib = "VDPP_NCCL_LIB"

// EnvCUDARTLib names the path of libcudart (what --cudart-lib sets).
const EnvCUDARTLib = "VDPP_CUDART_LIB"

// Sonames tried, in order, when neither an argument nor the environment
// names a library.
var (
	ncclSonames   = []string{"libnccl.so.2"}
	cudartSonames = []string{"libcudart.so.13", "libcudart.so.12", "libcudart.so"}
)

const (
	installNCCL   = "install NCCL 2 for CUDA 13 (the libnccl2 package, or the nvidia-nccl-cu13 Python wheel)"
	installCUDART = "install the CUDA 13 runtime (CUDA toolkit 13, or the cuda-cudart-13-0 package)"
)

// NCCL and CUDA runtime result codes this package reads.
const (
	ncclSuccess            = 0
	ncclUnhandledCudaError = 1
	ncclSystemError        = 2
	ncclInternalError      = 3
	ncclInvalidArgument    = 4
	ncclInvalidUsage       = 5
	ncclRemoteError        = 6
	ncclInProgress         = 7

	ncclUint8 = 1

	cudaSuccess            = 0
	cudaErrorNotReady      = 600
	cudaMemcpyHostToDevice = 1
	cudaMemcpyDeviceToHost = 2
	cudaStreamNonBlocking  = 1
)

// ncclResultName is the enum name of an ncclResult_t.
func ncclResultName(r int) string {
	names := []string{"ncclSuccess", "ncclUnhandledCudaError", "ncclSystemError", "ncclInternalError",
		"ncclInvalidArgument", "ncclInvalidUsage", "ncclRemoteError", "ncclInProgress"}
	if r >= 0 && r < len(names) {
		return names[r]
	}
	return fmt.Sprintf("ncclResult_t %d", r)
}

// Libs holds libnccl and libcudart, loaded once per process.
type Libs struct {
	ncclPath, cudartPath string
	version, cudaVersion string

	// NCCL
	getVersion, getErrorString, getLastError, getUniqueID, commInitRank,
	commDestroy, commAbort, commGetAsyncError, commCuDevice, send, recv,
	groupStart, groupEnd unsafe.Pointer
	// CUDA runtime
	getDeviceCount, setDevice, getDevice, streamCreateWithFlags, streamDestroy,
	streamQuery, streamSynchronize, malloc, free, mallocHost, freeHost,
	memcpyAsync, cudaGetErrorString, runtimeGetVersion unsafe.Pointer
}

var (
	loadMu sync.Mutex
	loaded = map[[2]string]*Libs{}
)

// Load loads NCCL and the CUDA runtime: a non-empty argument is a path; ""
// takes $VDPP_NCCL_LIB / $VDPP_CUDART_LIB when set, otherwise the sonames
// libnccl.so.2 and libcudart.so.13, libcudart.so.12, libcudart.so (the
// dynamic loader's search path). Loading the same paths again returns the
// same *Libs. Errors name every path or soname tried, dlerror's text, what
// to install and which environment variable or flag points at the library;
// a missing symbol is an error naming the symbol and the library's path.
func Load(ncclPath, cudartPath string) (*Libs, error) {
	// dlerror's text is per thread: the dlopen and dlsym calls and the
	// dlerror after each must run on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nc, nvar := candidates(ncclPath, EnvNCCLLib, ncclSonames)
	cc, cvar := candidates(cudartPath, EnvCUDARTLib, cudartSonames)
	key := [2]string{strings.Join(nc, "\x00"), strings.Join(cc, "\x00")}
	loadMu.Lock()
	defer loadMu.Unlock()
	if l := loaded[key]; l != nil {
		return l, nil
	}
	nh, np, err := open("NCCL", nc, nvar, "--nccl-lib", EnvNCCLLib, installNCCL)
	if err != nil {
		return nil, err
	}
	ch, cp, err := open("CUDA runtime", cc, cvar, "--cudart-lib", EnvCUDARTLib, installCUDART)
	if err != nil {
		C.dlclose(nh)
		return nil, err
	}
	l := &Libs{ncclPath: np, cudartPath: cp}
	for _, s := range []struct {
		p    *unsafe.Pointer
		name string
		opt  bool
	}{
		{&l.getVersion, "ncclGetVersion", false},
		{&l.getErrorString, "ncclGetErrorString", false},
		{&l.getLastError, "ncclGetLastError", true},
		{&l.getUniqueID, "ncclGetUniqueId", false},
		{&l.commInitRank, "ncclCommInitRank", false},
		{&l.commDestroy, "ncclCommDestroy", false},
		{&l.commAbort, "ncclCommAbort", false},
		{&l.commGetAsyncError, "ncclCommGetAsyncError", false},
		{&l.commCuDevice, "ncclCommCuDevice", true},
		{&l.send, "ncclSend", false},
		{&l.recv, "ncclRecv", false},
		{&l.groupStart, "ncclGroupStart", false},
		{&l.groupEnd, "ncclGroupEnd", false},
	} {
		if *s.p, err = sym(nh, np, s.name, installNCCL, s.opt); err != nil {
			C.dlclose(nh)
			C.dlclose(ch)
			return nil, err
		}
	}
	for _, s := range []struct {
		p    *unsafe.Pointer
		name string
	}{
		{&l.getDeviceCount, "cudaGetDeviceCount"},
		{&l.setDevice, "cudaSetDevice"},
		{&l.getDevice, "cudaGetDevice"},
		{&l.streamCreateWithFlags, "cudaStreamCreateWithFlags"},
		{&l.streamDestroy, "cudaStreamDestroy"},
		{&l.streamQuery, "cudaStreamQuery"},
		{&l.streamSynchronize, "cudaStreamSynchronize"},
		{&l.malloc, "cudaMalloc"},
		{&l.free, "cudaFree"},
		{&l.mallocHost, "cudaMallocHost"},
		{&l.freeHost, "cudaFreeHost"},
		{&l.memcpyAsync, "cudaMemcpyAsync"},
		{&l.cudaGetErrorString, "cudaGetErrorString"},
		{&l.runtimeGetVersion, "cudaRuntimeGetVersion"},
	} {
		if *s.p, err = sym(ch, cp, s.name, installCUDART, false); err != nil {
			C.dlclose(nh)
			C.dlclose(ch)
			return nil, err
		}
	}
	var v C.int
	if r := C.vdpp_call_intp(l.getVersion, &v); r != ncclSuccess {
		C.dlclose(nh)
		C.dlclose(ch)
		return nil, fmt.Errorf("nccl: ncclGetVersion of %s: %s", np, l.ncclError(int(r)))
	}
	l.version = ncclVersionString(int(v))
	if r := C.vdpp_call_intp(l.runtimeGetVersion, &v); r != cudaSuccess {
		C.dlclose(nh)
		C.dlclose(ch)
		return nil, fmt.Errorf("nccl: cudaRuntimeGetVersion of %s: %s", cp, l.cudaError(int(r)))
	}
	l.cudaVersion = fmt.Sprintf("%d.%d", int(v)/1000, int(v)%1000/10)
	loaded[key] = l
	return l, nil
}

// candidates are the names Load tries for one library, and the
// environment variable that gave them ("" when none did).
func candidates(arg, env string, sonames []string) ([]string, string) {
	if arg != "" {
		return []string{arg}, ""
	}
	if p := os.Getenv(env); p != "" {
		return []string{p}, env
	}
	return sonames, ""
}

// open dlopens the first of names that loads.
func open(what string, names []string, fromEnv, flag, env, install string) (unsafe.Pointer, string, error) {
	var tried []string
	for _, n := range names {
		cn := C.CString(n)
		h := C.vdpp_nccl_dlopen(cn)
		C.free(unsafe.Pointer(cn))
		if h == nil {
			tried = append(tried, fmt.Sprintf("%s: %s", n, dlerror()))
			continue
		}
		p := n
		if cp := C.vdpp_nccl_dlpath(h); cp != nil && C.GoString(cp) != "" {
			p = C.GoString(cp)
		}
		return h, p, nil
	}
	from := ""
	if fromEnv != "" {
		from = fmt.Sprintf(" (from $%s)", fromEnv)
	}
	return nil, "", fmt.Errorf("nccl: cannot load %s%s; tried %s; %s, or point %s or $%s at it",
		what, from, strings.Join(tried, "; "), install, flag, env)
}

// sym looks up name in the library h found at path; opt: a missing symbol
// is no error (nil).
func sym(h unsafe.Pointer, path, name, install string, opt bool) (unsafe.Pointer, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	C.dlerror()
	f := C.dlsym(h, cn)
	if f == nil {
		if opt {
			return nil, nil
		}
		return nil, fmt.Errorf("nccl: %s has no symbol %s (%s): it is not the library expected; %s", path, name, dlerror(), install)
	}
	return f, nil
}

// dlerror is the dynamic loader's last error, one line.
func dlerror() string {
	e := C.dlerror()
	if e == nil {
		return "not found"
	}
	return strings.TrimSpace(C.GoString(e))
}

// ncclVersionString formats ncclGetVersion's code: M*10000+m*100+p from
// NCCL 2.9 on, M*1000+m*100+p before.
func ncclVersionString(v int) string {
	if v >= 10000 {
		return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/1000, v/100%10, v%100)
}

// Version is NCCL's version, from ncclGetVersion: "2.28.3".
func (l *Libs) Version() string { return l.version }

// CUDAVersion is the CUDA runtime's version, from cudaRuntimeGetVersion:
// "13.0".
func (l *Libs) CUDAVersion() string { return l.cudaVersion }

// Paths says where libnccl and libcudart were found (dlinfo).
func (l *Libs) Paths() (nccl, cudart string) { return l.ncclPath, l.cudartPath }

// Devices is cudaGetDeviceCount.
func (l *Libs) Devices() (int, error) {
	var n C.int
	if r := C.vdpp_call_intp(l.getDeviceCount, &n); r != cudaSuccess {
		return 0, fmt.Errorf("nccl: cudaGetDeviceCount: %s", l.cudaError(int(r)))
	}
	return int(n), nil
}

// UniqueIDSize is the size of an ncclUniqueId.
const UniqueIDSize = 128

// UniqueID is ncclGetUniqueId: the 128 bytes every rank of one
// communicator needs (the coordinator calls it and sends it to workers).
// Real NCCL keeps a bootstrap listener in the calling process, so that
// process must live until all ranks joined.
func (l *Libs) UniqueID() ([]byte, error) {
	buf := (*C.char)(C.malloc(UniqueIDSize))
	defer C.free(unsafe.Pointer(buf))
	if r := C.vdpp_call_unique_id(l.getUniqueID, buf); r != ncclSuccess {
		return nil, fmt.Errorf("nccl: ncclGetUniqueId: %s%s", l.ncclError(int(r)), l.lastError(0))
	}
	return C.GoBytes(unsafe.Pointer(buf), UniqueIDSize), nil
}

// ncclError is "ncclInvalidUsage (invalid usage ...)".
func (l *Libs) ncclError(r int) string {
	return fmt.Sprintf("%s (%s)", ncclResultName(r), C.GoString(C.vdpp_call_str_int(l.getErrorString, C.int(r))))
}

// cudaError is "cudaError_t 1 (invalid argument)".
func (l *Libs) cudaError(r int) string {
	return fmt.Sprintf("cudaError_t %d (%s)", r, C.GoString(C.vdpp_call_str_int(l.cudaGetErrorString, C.int(r))))
}

// lastError is ": " and ncclGetLastError(comm)'s text, "" when the symbol
// is missing or the text empty.
func (l *Libs) lastError(comm uintptr) string {
	if l.getLastError == nil {
		return ""
	}
	s := C.vdpp_call_str_ptr(l.getLastError, C.uintptr_t(comm))
	if s == nil {
		return ""
	}
	if t := strings.TrimSpace(C.GoString(s)); t != "" {
		return ": " + t
	}
	return ""
}

// The calls the endpoint makes, one Go method each. Handles (ncclComm_t,
// cudaStream_t) and device or pinned pointers are uintptr: memory CUDA
// owns, never Go's.

func (l *Libs) cudaSetDevice(d int) int { return int(C.vdpp_call_int(l.setDevice, C.int(d))) }

func (l *Libs) cudaGetDevice() (int, int) {
	var d C.int
	r := C.vdpp_call_intp(l.getDevice, &d)
	return int(d), int(r)
}

func (l *Libs) cudaStreamCreateNonBlocking() (uintptr, int) {
	var s C.uintptr_t
	r := C.vdpp_call_stream_create(l.streamCreateWithFlags, &s, cudaStreamNonBlocking)
	return uintptr(s), int(r)
}

func (l *Libs) cudaStreamDestroy(s uintptr) int {
	return int(C.vdpp_call_ptr(l.streamDestroy, C.uintptr_t(s)))
}

func (l *Libs) cudaStreamQuery(s uintptr) int {
	return int(C.vdpp_call_ptr(l.streamQuery, C.uintptr_t(s)))
}

func (l *Libs) cudaMalloc(n int) (uintptr, int) {
	var p C.uintptr_t
	r := C.vdpp_call_malloc(l.malloc, &p, C.size_t(n))
	return uintptr(p), int(r)
}

func (l *Libs) cudaMallocHost(n int) (uintptr, int) {
	var p C.uintptr_t
	r := C.vdpp_call_malloc(l.mallocHost, &p, C.size_t(n))
	return uintptr(p), int(r)
}

func (l *Libs) cudaFree(p uintptr) int     { return int(C.vdpp_call_ptr(l.free, C.uintptr_t(p))) }
func (l *Libs) cudaFreeHost(p uintptr) int { return int(C.vdpp_call_ptr(l.freeHost, C.uintptr_t(p))) }

func (l *Libs) cudaMemcpyAsync(dst, src uintptr, n, kind int, s uintptr) int {
	return int(C.vdpp_call_memcpy_async(l.memcpyAsync, C.uintptr_t(dst), C.uintptr_t(src), C.size_t(n), C.int(kind), C.uintptr_t(s)))
}

func (l *Libs) ncclCommInitRank(nranks int, id []byte, rank int) (uintptr, int) {
	var c C.uintptr_t
	cid := C.CBytes(id)
	defer C.free(cid)
	r := C.vdpp_call_init_rank(l.commInitRank, &c, C.int(nranks), (*C.char)(cid), C.int(rank))
	return uintptr(c), int(r)
}

func (l *Libs) ncclCommAbort(c uintptr) int { return int(C.vdpp_call_ptr(l.commAbort, C.uintptr_t(c))) }
func (l *Libs) ncclCommDestroy(c uintptr) int {
	return int(C.vdpp_call_ptr(l.commDestroy, C.uintptr_t(c)))
}

// ncclCommGetAsyncError: the call's result and the async error.
func (l *Libs) ncclCommGetAsyncError(c uintptr) (int, int) {
	var ae C.int
	r := C.vdpp_call_ptr_intp(l.commGetAsyncError, C.uintptr_t(c), &ae)
	return int(r), int(ae)
}

// ncclCommCuDevice: the comm's CUDA device; ok false when the library
// lacks the symbol.
func (l *Libs) ncclCommCuDevice(c uintptr) (dev, r int, ok bool) {
	if l.commCuDevice == nil {
		return 0, 0, false
	}
	var d C.int
	r = int(C.vdpp_call_ptr_intp(l.commCuDevice, C.uintptr_t(c), &d))
	return int(d), r, true
}

// ncclP2P is ncclSend (send) or ncclRecv of n ncclUint8 at buf.
func (l *Libs) ncclP2P(send bool, buf uintptr, n, peer int, comm, stream uintptr) int {
	f := l.recv
	if send {
		f = l.send
	}
	return int(C.vdpp_call_p2p(f, C.uintptr_t(buf), C.size_t(n), ncclUint8, C.int(peer), C.uintptr_t(comm), C.uintptr_t(stream)))
}

func (l *Libs) ncclGroupStart() int { return int(C.vdpp_call_void(l.groupStart)) }
func (l *Libs) ncclGroupEnd() int   { return int(C.vdpp_call_void(l.groupEnd)) }

// copyToPinned copies b to the pinned host memory at dst.
func copyToPinned(dst uintptr, b []byte) {
	if len(b) > 0 {
		C.vdpp_copy_in(C.uintptr_t(dst), unsafe.Pointer(&b[0]), C.size_t(len(b)))
	}
}

// copyFromPinned copies len(b) bytes of the pinned host memory at src to b.
func copyFromPinned(b []byte, src uintptr) {
	if len(b) > 0 {
		C.vdpp_copy_out(unsafe.Pointer(&b[0]), C.uintptr_t(src), C.size_t(len(b)))
	}
}
