package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// CUDA runtime error codes (cudaError_t).
const (
	cudaSuccess                    = 0
	cudaErrorInvalidValue          = 1
	cudaErrorMemoryAllocation      = 2
	cudaErrorNoDevice              = 100
	cudaErrorInvalidDevice         = 101
	cudaErrorInvalidResourceHandle = 400
	cudaErrorNotReady              = 600
)

var cudaErrorStrings = map[int]string{
	cudaSuccess:                    "no error",
	cudaErrorInvalidValue:          "invalid argument",
	cudaErrorMemoryAllocation:      "out of memory",
	cudaErrorNoDevice:              "no CUDA-capable device is detected",
	cudaErrorInvalidDevice:         "invalid device ordinal",
	cudaErrorInvalidResourceHandle: "invalid resource handle",
	cudaErrorNotReady:              "device not ready",
}

// cudaMemcpyKind
const (
	cudaMemcpyHostToHost     = 0
	cudaMemcpyHostToDevice   = 1
	cudaMemcpyDeviceToHost   = 2
	cudaMemcpyDeviceToDevice = 3
	cudaMemcpyDefault        = 4
)

// deviceCount is $VDPP_FAKE_CUDA_DEVICES, 8 when unset or not a number.
func deviceCount() int {
	if n, err := strconv.Atoi(os.Getenv("VDPP_FAKE_CUDA_DEVICES")); err == nil && n >= 0 {
		return n
	}
	return 8
}

// The current device of each OS thread (CUDA's is per thread), by tid.
var (
	devMu  sync.Mutex
	curDev = map[int]int{}
)

// currentDevice is the calling thread's device: 0, as in CUDA, when the
// thread never called cudaSetDevice (set is then false).
func currentDevice() (dev int, set bool) {
	devMu.Lock()
	defer devMu.Unlock()
	dev, set = curDev[syscall.Gettid()]
	return dev, set
}

func setDevice(d int) int {
	if d < 0 || d >= deviceCount() {
		return cudaErrorInvalidDevice
	}
	devMu.Lock()
	curDev[syscall.Gettid()] = d
	devMu.Unlock()
	return cudaSuccess
}

// Tracing: with $VDPP_FAKE_NCCL_TRACE set, every call appends one line
// "<tid> <function> <device>" to that file, the device being the calling
// thread's current one, or "unset" when the thread never called
// cudaSetDevice.
var (
	traceOnce sync.Once
	traceMu   sync.Mutex
	traceFile *os.File
)

func trace(call string) {
	traceOnce.Do(func() {
		if p := os.Getenv("VDPP_FAKE_NCCL_TRACE"); p != "" {
			traceFile, _ = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		}
	})
	if traceFile == nil {
		return
	}
	d, set := currentDevice()
	dev := strconv.Itoa(d)
	if !set {
		dev = "unset"
	}
	traceMu.Lock()
	defer traceMu.Unlock()
	fmt.Fprintf(traceFile, "%d %s %s\n", syscall.Gettid(), call, dev)
}

// Memory: cudaMalloc and cudaMallocHost return C memory recorded here.
type allocation struct {
	base   unsafe.Pointer
	size   uintptr
	device bool // cudaMalloc; false: cudaMallocHost (pinned host)
	dev    int  // the device it was allocated on (device memory)
}

var (
	memMu  sync.Mutex
	allocs = map[uintptr]*allocation{}
)

// findAlloc is the allocation that holds [p, p+n), nil if none.
func findAlloc(p unsafe.Pointer, n uintptr) *allocation {
	memMu.Lock()
	defer memMu.Unlock()
	a := uintptr(p)
	for base, al := range allocs {
		if a >= base && a-base <= al.size && n <= al.size-(a-base) {
			return al
		}
	}
	return nil
}

// overlapsDevice says whether [p, p+n) touches device memory.
func overlapsDevice(p unsafe.Pointer, n uintptr) bool {
	memMu.Lock()
	defer memMu.Unlock()
	a := uintptr(p)
	for base, al := range allocs {
		if al.device && a < base+al.size && base < a+max(n, 1) {
			return true
		}
	}
	return false
}

func cudaMallocImpl(out *unsafe.Pointer, n uintptr, device bool) int {
	if out == nil {
		return cudaErrorInvalidValue
	}
	if n == 0 {
		*out = nil
		return cudaSuccess
	}
	dev, _ := currentDevice()
	p := cmalloc(n)
	if p == nil {
		return cudaErrorMemoryAllocation
	}
	memMu.Lock()
	allocs[uintptr(p)] = &allocation{base: p, size: n, device: device, dev: dev}
	memMu.Unlock()
	*out = p
	return cudaSuccess
}

// cudaFreeImpl frees p after all work on the streams of its device is
// done, as cudaFree and cudaFreeHost synchronize their context: the
// device memory's device, or for pinned host memory the calling thread's
// current device (not every device: ranks of one process on two devices
// each free their own buffers while the other's stream waits for them).
func cudaFreeImpl(p unsafe.Pointer, device bool) int {
	if p == nil {
		return cudaSuccess
	}
	memMu.Lock()
	al := allocs[uintptr(p)]
	memMu.Unlock()
	if al == nil || al.device != device {
		return cudaErrorInvalidValue
	}
	dev := al.dev
	if !device {
		dev, _ = currentDevice()
	}
	syncStreams(dev)
	memMu.Lock()
	if allocs[uintptr(p)] != al {
		memMu.Unlock()
		return cudaErrorInvalidValue
	}
	delete(allocs, uintptr(p))
	memMu.Unlock()
	cfree(p)
	return cudaSuccess
}

// Streams: each runs its operations in order on its own goroutine.
type stream struct {
	token unsafe.Pointer
	dev   int

	mu        sync.Mutex
	cond      *sync.Cond
	queue     []func()
	pending   int // queued or running
	destroyed bool
}

var (
	streamMu      sync.Mutex
	streams       = map[unsafe.Pointer]*stream{}
	defaultStream *stream
)

func newStream(dev int) *stream {
	s := &stream{token: cmalloc(1), dev: dev}
	s.cond = sync.NewCond(&s.mu)
	go s.run()
	return s
}

func (s *stream) run() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(s.queue) == 0 && !s.destroyed {
			s.cond.Wait()
		}
		if len(s.queue) == 0 {
			return
		}
		f := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		f()
		s.mu.Lock()
		s.pending--
		s.cond.Broadcast()
	}
}

func (s *stream) enqueue(f func()) {
	s.mu.Lock()
	s.queue = append(s.queue, f)
	s.pending++
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *stream) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending > 0
}

func (s *stream) sync() {
	s.mu.Lock()
	for s.pending > 0 {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// lookupStream is the stream of a cudaStream_t; NULL is the default
// stream, made on first use on the calling thread's device.
func lookupStream(h unsafe.Pointer) *stream {
	streamMu.Lock()
	defer streamMu.Unlock()
	if h == nil {
		if defaultStream == nil {
			dev, _ := currentDevice()
			defaultStream = newStream(dev)
		}
		return defaultStream
	}
	return streams[h]
}

// syncStreams waits until the streams of device dev (all: -1) are idle.
func syncStreams(dev int) {
	streamMu.Lock()
	var ss []*stream
	for _, s := range streams {
		if dev < 0 || s.dev == dev {
			ss = append(ss, s)
		}
	}
	if defaultStream != nil && (dev < 0 || defaultStream.dev == dev) {
		ss = append(ss, defaultStream)
	}
	streamMu.Unlock()
	for _, s := range ss {
		s.sync()
	}
}

func cudaStreamCreateImpl(out *unsafe.Pointer, flags uint32) int {
	if out == nil || flags > 1 {
		return cudaErrorInvalidValue
	}
	dev, _ := currentDevice()
	s := newStream(dev)
	streamMu.Lock()
	streams[s.token] = s
	streamMu.Unlock()
	*out = s.token
	return cudaSuccess
}

// cudaStreamDestroyImpl: as in CUDA, it returns at once; the stream's
// goroutine ends when its queued work is done.
func cudaStreamDestroyImpl(h unsafe.Pointer) int {
	streamMu.Lock()
	s := streams[h]
	delete(streams, h)
	streamMu.Unlock()
	if s == nil {
		return cudaErrorInvalidResourceHandle
	}
	s.mu.Lock()
	s.destroyed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	return cudaSuccess
}

func cudaMemcpyAsyncImpl(dst, src unsafe.Pointer, n uintptr, kind int, h unsafe.Pointer) int {
	s := lookupStream(h)
	if s == nil {
		return cudaErrorInvalidResourceHandle
	}
	if n == 0 {
		return cudaSuccess
	}
	if dst == nil || src == nil {
		return cudaErrorInvalidValue
	}
	dstDev, srcDev := findAlloc(dst, n), findAlloc(src, n)
	ok := false
	switch kind {
	case cudaMemcpyHostToDevice:
		ok = dstDev != nil && dstDev.device && !overlapsDevice(src, n)
	case cudaMemcpyDeviceToHost:
		ok = srcDev != nil && srcDev.device && !overlapsDevice(dst, n)
	case cudaMemcpyDeviceToDevice:
		ok = dstDev != nil && dstDev.device && srcDev != nil && srcDev.device
	case cudaMemcpyHostToHost:
		ok = !overlapsDevice(dst, n) && !overlapsDevice(src, n)
	case cudaMemcpyDefault:
		ok = (dstDev != nil || !overlapsDevice(dst, n)) && (srcDev != nil || !overlapsDevice(src, n))
	}
	if !ok {
		return cudaErrorInvalidValue
	}
	s.enqueue(func() {
		copy(unsafe.Slice((*byte)(dst), n), unsafe.Slice((*byte)(src), n))
	})
	return cudaSuccess
}
