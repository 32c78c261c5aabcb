// Package nccl moves byte buffers between processes with NCCL's
// point-to-point calls (ncclSend, ncclRecv), one rank per process and
// device: vdpp's NCCL transport.
//
// It loads libnccl and the CUDA runtime at run time (dlopen and dlsym,
// with hand-declared prototypes of the C functions it calls): building it
// needs no CUDA or NCCL headers or libraries, only a C compiler for cgo,
// and a program that never calls Load never touches either library.
//
// # Threads
//
// CUDA's current device is per OS thread. Join starts one goroutine per
// endpoint that locks its OS thread and makes every CUDA and NCCL call of
// the endpoint on it (cudaSetDevice first), so callers need not lock
// theirs. The one exception: Abort, while the endpoint's thread is inside
// ncclSend, ncclRecv or ncclGroupEnd (calls that may block in real NCCL),
// calls ncclCommAbort from the caller's thread to unblock it. NCCL
// documents aborting from another thread for non-blocking communicators
// (ncclCommInitRankConfig with blocking = 0); these are blocking ones
// (ncclCommInitRank), so against real NCCL this is a best effort, not
// tested here. The engine frees its buffers and stream only after such an
// abort has returned.
//
// # The engine
//
// Send and Recv may be called concurrently (a stage's receiving and
// sending goroutines). The endpoint's goroutine takes queued operations in
// FIFO order; when it takes one and an operation of the other kind is
// queued too, it issues both between ncclGroupStart and ncclGroupEnd (NCCL
// requires point-to-point calls that must progress together to be fused
// in a group), otherwise one at a time. It then polls cudaStreamQuery with
// a back-off (20µs up to 1ms) and, on every poll, ncclCommGetAsyncError:
// an asynchronous error aborts the communicator and fails the operations
// with an error naming the NCCL error (and ncclGetLastError's text), the
// rank, the peer and the byte count. A Send and a Recv that are not both
// queued when the engine takes work are issued one after the other, each
// waiting for its peer: a protocol in which two ranks each send to the
// other before receiving may deadlock; vdpp's stage chain does not.
//
// When the ctx of a pending Send or Recv ends, the endpoint is aborted
// (NCCL cannot cancel a single operation) and the call returns an error
// wrapping context.Cause(ctx). NCCL_* environment variables are NCCL's
// own; this package leaves them alone.
//
// # Tests
//
// The tests run against internal/fakenccl, a test double of libnccl and
// libcudart built from Go that moves bytes through host memory and unix
// sockets, with ranks in separate processes. They check this package's
// calls, threads, staging, grouping and error handling against NCCL's and
// CUDA's documented semantics as the double implements them; they do not
// show that real NCCL or a GPU ran.
package nccl
