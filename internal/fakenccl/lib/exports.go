package main

/*
#include <stddef.h>

typedef int ncclResult_t;
typedef int ncclDataType_t;
typedef int cudaError_t;
typedef int cudaMemcpyKind;
typedef void *ncclComm_t;
typedef void *cudaStream_t;
typedef struct { char internal[128]; } ncclUniqueId;
*/
import "C"

import (
	"unsafe"
)

// The exported C ABI: thin wrappers over the *Impl functions, with the
// real signatures of NCCL 2 and the CUDA runtime.

//export ncclGetVersion
func ncclGetVersion(v *C.int) C.ncclResult_t {
	trace("ncclGetVersion")
	if v == nil {
		return ncclInvalidArgument
	}
	*v = 22600
	return ncclSuccess
}

//export ncclGetErrorString
func ncclGetErrorString(r C.ncclResult_t) *C.char {
	s, ok := ncclErrorStrings[int(r)]
	if !ok {
		s = "unknown result code"
	}
	return (*C.char)(staticString(s))
}

//export ncclGetLastError
func ncclGetLastError(h C.ncclComm_t) *C.char {
	if c := lookupComm(unsafe.Pointer(h)); c != nil {
		return (*C.char)(c.lastError())
	}
	return (*C.char)(globalLastError())
}

//export ncclGetUniqueId
func ncclGetUniqueId(id *C.ncclUniqueId) C.ncclResult_t {
	trace("ncclGetUniqueId")
	if id == nil {
		return ncclInvalidArgument
	}
	return C.ncclResult_t(ncclGetUniqueIdImpl((*[128]byte)(unsafe.Pointer(&id.internal[0]))))
}

//export ncclCommInitRank
func ncclCommInitRank(out *C.ncclComm_t, nranks C.int, id C.ncclUniqueId, rank C.int) C.ncclResult_t {
	trace("ncclCommInitRank")
	b := C.GoBytes(unsafe.Pointer(&id.internal[0]), 128)
	return C.ncclResult_t(ncclCommInitRankImpl((*unsafe.Pointer)(unsafe.Pointer(out)), int(nranks), b, int(rank)))
}

//export ncclCommCuDevice
func ncclCommCuDevice(h C.ncclComm_t, dev *C.int) C.ncclResult_t {
	trace("ncclCommCuDevice")
	c := lookupComm(unsafe.Pointer(h))
	if c == nil || dev == nil {
		return ncclInvalidArgument
	}
	*dev = C.int(c.dev)
	return ncclSuccess
}

//export ncclCommDestroy
func ncclCommDestroy(h C.ncclComm_t) C.ncclResult_t {
	trace("ncclCommDestroy")
	return C.ncclResult_t(ncclCommDestroyImpl(unsafe.Pointer(h)))
}

//export ncclCommAbort
func ncclCommAbort(h C.ncclComm_t) C.ncclResult_t {
	trace("ncclCommAbort")
	return C.ncclResult_t(ncclCommAbortImpl(unsafe.Pointer(h)))
}

//export ncclCommGetAsyncError
func ncclCommGetAsyncError(h C.ncclComm_t, out *C.ncclResult_t) C.ncclResult_t {
	trace("ncclCommGetAsyncError")
	return C.ncclResult_t(ncclCommGetAsyncErrorImpl(unsafe.Pointer(h), (*int32)(unsafe.Pointer(out))))
}

//export ncclSend
func ncclSend(buf unsafe.Pointer, count C.size_t, dtype C.ncclDataType_t, peer C.int, h C.ncclComm_t, s C.cudaStream_t) C.ncclResult_t {
	trace("ncclSend")
	return C.ncclResult_t(ncclP2PImpl(true, buf, uint64(count), int(dtype), int(peer), unsafe.Pointer(h), unsafe.Pointer(s)))
}

//export ncclRecv
func ncclRecv(buf unsafe.Pointer, count C.size_t, dtype C.ncclDataType_t, peer C.int, h C.ncclComm_t, s C.cudaStream_t) C.ncclResult_t {
	trace("ncclRecv")
	return C.ncclResult_t(ncclP2PImpl(false, buf, uint64(count), int(dtype), int(peer), unsafe.Pointer(h), unsafe.Pointer(s)))
}

//export ncclGroupStart
func ncclGroupStart() C.ncclResult_t {
	trace("ncclGroupStart")
	return C.ncclResult_t(ncclGroupStartImpl())
}

//export ncclGroupEnd
func ncclGroupEnd() C.ncclResult_t {
	trace("ncclGroupEnd")
	return C.ncclResult_t(ncclGroupEndImpl())
}

//export cudaGetDeviceCount
func cudaGetDeviceCount(n *C.int) C.cudaError_t {
	trace("cudaGetDeviceCount")
	if n == nil {
		return cudaErrorInvalidValue
	}
	*n = C.int(deviceCount())
	if *n == 0 {
		return cudaErrorNoDevice
	}
	return cudaSuccess
}

//export cudaSetDevice
func cudaSetDevice(d C.int) C.cudaError_t {
	r := setDevice(int(d))
	trace("cudaSetDevice")
	return C.cudaError_t(r)
}

//export cudaGetDevice
func cudaGetDevice(d *C.int) C.cudaError_t {
	trace("cudaGetDevice")
	if d == nil {
		return cudaErrorInvalidValue
	}
	dev, _ := currentDevice()
	*d = C.int(dev)
	return cudaSuccess
}

//export cudaStreamCreateWithFlags
func cudaStreamCreateWithFlags(s *C.cudaStream_t, flags C.uint) C.cudaError_t {
	trace("cudaStreamCreateWithFlags")
	return C.cudaError_t(cudaStreamCreateImpl((*unsafe.Pointer)(unsafe.Pointer(s)), uint32(flags)))
}

//export cudaStreamDestroy
func cudaStreamDestroy(s C.cudaStream_t) C.cudaError_t {
	trace("cudaStreamDestroy")
	return C.cudaError_t(cudaStreamDestroyImpl(unsafe.Pointer(s)))
}

//export cudaStreamQuery
func cudaStreamQuery(h C.cudaStream_t) C.cudaError_t {
	trace("cudaStreamQuery")
	s := lookupStream(unsafe.Pointer(h))
	if s == nil {
		return cudaErrorInvalidResourceHandle
	}
	if s.busy() {
		return cudaErrorNotReady
	}
	return cudaSuccess
}

//export cudaStreamSynchronize
func cudaStreamSynchronize(h C.cudaStream_t) C.cudaError_t {
	trace("cudaStreamSynchronize")
	s := lookupStream(unsafe.Pointer(h))
	if s == nil {
		return cudaErrorInvalidResourceHandle
	}
	s.sync()
	return cudaSuccess
}

//export cudaMalloc
func cudaMalloc(p *unsafe.Pointer, n C.size_t) C.cudaError_t {
	trace("cudaMalloc")
	return C.cudaError_t(cudaMallocImpl(p, uintptr(n), true))
}

//export cudaMallocHost
func cudaMallocHost(p *unsafe.Pointer, n C.size_t) C.cudaError_t {
	trace("cudaMallocHost")
	return C.cudaError_t(cudaMallocImpl(p, uintptr(n), false))
}

//export cudaFree
func cudaFree(p unsafe.Pointer) C.cudaError_t {
	trace("cudaFree")
	return C.cudaError_t(cudaFreeImpl(p, true))
}

//export cudaFreeHost
func cudaFreeHost(p unsafe.Pointer) C.cudaError_t {
	trace("cudaFreeHost")
	return C.cudaError_t(cudaFreeImpl(p, false))
}

//export cudaMemcpyAsync
func cudaMemcpyAsync(dst, src unsafe.Pointer, n C.size_t, kind C.cudaMemcpyKind, s C.cudaStream_t) C.cudaError_t {
	trace("cudaMemcpyAsync")
	return C.cudaError_t(cudaMemcpyAsyncImpl(dst, src, uintptr(n), int(kind), unsafe.Pointer(s)))
}

//export cudaGetErrorString
func cudaGetErrorString(r C.cudaError_t) *C.char {
	s, ok := cudaErrorStrings[int(r)]
	if !ok {
		s = "unrecognized error code"
	}
	return (*C.char)(staticString(s))
}

//export cudaRuntimeGetVersion
func cudaRuntimeGetVersion(v *C.int) C.cudaError_t {
	trace("cudaRuntimeGetVersion")
	if v == nil {
		return cudaErrorInvalidValue
	}
	*v = 13000
	return cudaSuccess
}
