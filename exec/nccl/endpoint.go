package nccl

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Config says which communicator a process joins, as which rank, on which
// device.
type Config struct {
	Device int    // CUDA device index (cudaSetDevice)
	ID     []byte // UniqueID's 128 bytes
	Ranks  int    // communicator size
	Rank   int    // this process's rank, 0 ≤ Rank < Ranks
}

// ErrClosed is what a Send or Recv on a closed Endpoint wraps.
var ErrClosed = errors.New("nccl: endpoint closed")

// ErrAborted is the cause Abort(nil) records.
var ErrAborted = errors.New("nccl: endpoint aborted")

// Error is a failed NCCL or CUDA runtime call (or an asynchronous NCCL
// error): the call, its result code and the libraries' text for it.
type Error struct {
	Call   string // "ncclCommInitRank", "cudaMalloc", "ncclCommGetAsyncError"
	Result int    // ncclResult_t or cudaError_t
	Text   string // "ncclInvalidUsage (invalid usage ...): <ncclGetLastError>"
}

func (e *Error) Error() string { return e.Call + ": " + e.Text }

// Endpoint is one rank of a communicator: a goroutine on a locked OS
// thread that makes every CUDA and NCCL call of the rank.
type Endpoint struct {
	l                   *Libs
	rank, ranks, device int

	mu        sync.Mutex
	queue     []*op
	cause     error         // abort cause; nil until aborted
	commGone  bool          // ncclCommAbort or ncclCommDestroy called
	inIssue   bool          // the engine is inside ncclSend/ncclRecv/ncclGroupEnd
	closing   bool          // Close called
	joined    bool          // ncclCommInitRank returned success and Join took it
	gaveUp    bool          // Join returned before ncclCommInitRank did
	wake      chan struct{} // cap 1: the queue or closing changed
	abortReq  chan struct{} // closed by the first abort
	abortDone chan struct{} // closed once ncclCommAbort returned
	exited    chan struct{} // closed when the engine goroutine ends
	closeErr  error         // from the engine's clean-up

	// Owned by the engine goroutine.
	comm, stream     uintptr
	sendBuf, recvBuf staging
}

// staging is a pinned host buffer and a device buffer of the same size,
// grown as needed and reused.
type staging struct {
	host, dev uintptr
	size      int
}

// op is one Send or Recv.
type op struct {
	send bool
	peer int
	b    []byte
	done chan struct{}
	err  error // set before done closes

	mu        sync.Mutex
	abandoned bool // the caller returned (its ctx ended); b is not ours
}

func (e *Endpoint) desc(o *op) string {
	if o.send {
		return fmt.Sprintf("rank %d: send of %d bytes to rank %d", e.rank, len(o.b), o.peer)
	}
	return fmt.Sprintf("rank %d: recv of %d bytes from rank %d", e.rank, len(o.b), o.peer)
}

// Rank is this endpoint's rank.
func (e *Endpoint) Rank() int { return e.rank }

// Ranks is the communicator's size.
func (e *Endpoint) Ranks() int { return e.ranks }

// Join starts this rank's endpoint: one goroutine that locks its OS thread
// (CUDA's current device is per thread) and makes every CUDA and NCCL call
// of the endpoint on it: cudaSetDevice, cudaStreamCreateWithFlags
// (non-blocking), ncclCommInitRank, which returns when all ranks joined.
// When ctx ends first, Join returns an error saying which rank and device
// waited how long; the blocked ncclCommInitRank stays behind (should it
// return later, the engine aborts the communicator and ends), and the
// process is expected to exit.
func (l *Libs) Join(ctx context.Context, c Config) (*Endpoint, error) {
	if c.Ranks < 1 || c.Rank < 0 || c.Rank >= c.Ranks {
		return nil, fmt.Errorf("nccl: rank %d of %d: want 0 ≤ rank < ranks", c.Rank, c.Ranks)
	}
	if len(c.ID) != UniqueIDSize {
		return nil, fmt.Errorf("nccl: rank %d: the communicator id has %d bytes, want %d (ncclGetUniqueId's)", c.Rank, len(c.ID), UniqueIDSize)
	}
	if c.Device < 0 {
		return nil, fmt.Errorf("nccl: rank %d: device %d", c.Rank, c.Device)
	}
	e := &Endpoint{
		l: l, rank: c.Rank, ranks: c.Ranks, device: c.Device,
		wake:      make(chan struct{}, 1),
		abortReq:  make(chan struct{}),
		abortDone: make(chan struct{}),
		exited:    make(chan struct{}),
	}
	id := append([]byte(nil), c.ID...)
	ready := make(chan error, 1)
	start := time.Now()
	go e.engine(id, ready)
	select {
	case err := <-ready:
		if err != nil {
			return nil, err
		}
		return e, nil
	case <-ctx.Done():
	}
	// The engine may have failed (or joined) as ctx ended: its result
	// says more than the time-out.
	select {
	case err := <-ready:
		if err != nil {
			return nil, err
		}
		return e, nil
	default:
	}
	e.mu.Lock()
	if !e.joined {
		e.gaveUp = true
	}
	gaveUp := e.gaveUp
	e.mu.Unlock()
	if !gaveUp {
		if err := <-ready; err != nil {
			return nil, err
		}
		return e, nil
	}
	return nil, fmt.Errorf("nccl: rank %d of %d (device %d) gave up after %s in ncclCommInitRank: some rank did not join: %w",
		c.Rank, c.Ranks, c.Device, time.Since(start).Round(time.Millisecond), context.Cause(ctx))
}

// engine is the endpoint's goroutine. It never unlocks its thread: the
// thread ends with it, CUDA state and all.
func (e *Endpoint) engine(id []byte, ready chan<- error) {
	runtime.LockOSThread()
	defer close(e.exited)
	l := e.l
	where := fmt.Sprintf("nccl: rank %d of %d (device %d)", e.rank, e.ranks, e.device)
	if r := l.cudaSetDevice(e.device); r != cudaSuccess {
		ready <- fmt.Errorf("%s: %w", where, &Error{"cudaSetDevice", r, l.cudaError(r)})
		return
	}
	s, r := l.cudaStreamCreateNonBlocking()
	if r != cudaSuccess {
		ready <- fmt.Errorf("%s: %w", where, &Error{"cudaStreamCreateWithFlags", r, l.cudaError(r)})
		return
	}
	e.stream = s
	c, r := l.ncclCommInitRank(e.ranks, id, e.rank)
	if r != ncclSuccess {
		l.cudaStreamDestroy(s)
		ready <- fmt.Errorf("%s: %w", where, &Error{"ncclCommInitRank", r, l.ncclError(r) + l.lastError(0)})
		return
	}
	e.comm = c
	e.mu.Lock()
	if e.gaveUp {
		e.commGone = true
		e.mu.Unlock()
		l.ncclCommAbort(c)
		close(e.abortDone)
		l.cudaStreamDestroy(s)
		return
	}
	e.joined = true
	e.mu.Unlock()
	ready <- nil
	e.loop()
	e.cleanup()
}

// testHookPick, when set (by tests, before Join), runs on the engine's
// goroutine each time it is about to take work, without e.mu.
var testHookPick func(e *Endpoint)

// loop takes queued operations in FIFO order until the endpoint is closed
// (and its queue empty) or aborted.
func (e *Endpoint) loop() {
	for {
		e.mu.Lock()
		for len(e.queue) == 0 && e.cause == nil && !e.closing {
			e.mu.Unlock()
			select {
			case <-e.wake:
			case <-e.abortReq:
			}
			e.mu.Lock()
		}
		if e.cause != nil {
			q := e.queue
			e.queue = nil
			cause := e.cause
			e.mu.Unlock()
			e.abortComm()
			for _, o := range q {
				o.finish(e.abortedErr(o, cause))
			}
			return
		}
		if len(e.queue) == 0 { // closing
			e.mu.Unlock()
			return
		}
		if testHookPick != nil {
			e.mu.Unlock()
			testHookPick(e)
			e.mu.Lock()
			if e.cause != nil || len(e.queue) == 0 {
				e.mu.Unlock()
				continue
			}
		}
		batch := e.pick()
		e.mu.Unlock()
		e.run(batch)
	}
}

// pick takes the oldest operation and, when one of the other kind (send
// or receive) is queued too, the oldest of those: they are issued together
// in one NCCL group. e.mu is held.
func (e *Endpoint) pick() []*op {
	first := e.queue[0]
	for i := 1; i < len(e.queue); i++ {
		if o := e.queue[i]; o.send != first.send {
			e.queue = append(e.queue[:i], e.queue[i+1:]...)
			e.queue = e.queue[1:]
			return []*op{first, o}
		}
	}
	e.queue = e.queue[1:]
	return []*op{first}
}

// abortedErr is the error of an operation failed by an abort.
func (e *Endpoint) abortedErr(o *op, cause error) error {
	return fmt.Errorf("nccl: %s: endpoint aborted: %w", e.desc(o), cause)
}

func (o *op) finish(err error) {
	o.err = err
	close(o.done)
}

// abortComm calls ncclCommAbort from the engine's thread unless it was
// called already.
func (e *Endpoint) abortComm() {
	e.mu.Lock()
	call := !e.commGone
	e.commGone = true
	e.mu.Unlock()
	if call {
		e.l.ncclCommAbort(e.comm)
		close(e.abortDone)
	}
}

// abortWith records cause as the abort cause (unless one is recorded)
// and aborts the communicator; it returns the recorded cause.
func (e *Endpoint) abortWith(cause error) error {
	e.mu.Lock()
	if e.cause == nil {
		e.cause = cause
		close(e.abortReq)
	}
	cause = e.cause
	e.mu.Unlock()
	e.abortComm()
	return cause
}

// grow makes s hold at least n bytes.
func (e *Endpoint) grow(s *staging, n int) error {
	if s.size >= n {
		return nil
	}
	size := max(n, 2*s.size)
	if err := e.freeStaging(s); err != nil {
		return err
	}
	h, r := e.l.cudaMallocHost(size)
	if r != cudaSuccess {
		return &Error{"cudaMallocHost", r, fmt.Sprintf("%d bytes: %s", size, e.l.cudaError(r))}
	}
	d, r := e.l.cudaMalloc(size)
	if r != cudaSuccess {
		e.l.cudaFreeHost(h)
		return &Error{"cudaMalloc", r, fmt.Sprintf("%d bytes on device %d: %s", size, e.device, e.l.cudaError(r))}
	}
	*s = staging{host: h, dev: d, size: size}
	return nil
}

func (e *Endpoint) freeStaging(s *staging) error {
	var err error
	if s.dev != 0 {
		if r := e.l.cudaFree(s.dev); r != cudaSuccess {
			err = &Error{"cudaFree", r, e.l.cudaError(r)}
		}
	}
	if s.host != 0 {
		if r := e.l.cudaFreeHost(s.host); r != cudaSuccess && err == nil {
			err = &Error{"cudaFreeHost", r, e.l.cudaError(r)}
		}
	}
	*s = staging{}
	return err
}

// run issues batch (one operation, or a send and a receive in one group),
// waits for it and finishes its operations.
func (e *Endpoint) run(batch []*op) {
	var snd, rcv *op
	for _, o := range batch {
		if o.send {
			snd = o
		} else {
			rcv = o
		}
	}
	fail := func(err error) {
		for _, o := range batch {
			o.finish(fmt.Errorf("nccl: %s: %w", e.desc(o), err))
		}
	}
	l := e.l
	if snd != nil {
		if err := e.grow(&e.sendBuf, len(snd.b)); err != nil {
			// The peer may have posted the matching operation already:
			// abort, so that it does not wait for this one.
			fail(e.abortWith(err))
			return
		}
		snd.mu.Lock()
		abandoned := snd.abandoned
		if !abandoned {
			copyToPinned(e.sendBuf.host, snd.b)
		}
		snd.mu.Unlock()
		if abandoned {
			// Its caller gave up (and is aborting the endpoint): never
			// send what the staging buffer holds from an earlier send.
			fail(e.abortWith(errors.New("the send was abandoned by its caller before it was issued")))
			return
		}
		if r := l.cudaMemcpyAsync(e.sendBuf.dev, e.sendBuf.host, len(snd.b), cudaMemcpyHostToDevice, e.stream); r != cudaSuccess {
			fail(e.abortWith(&Error{"cudaMemcpyAsync (host to device)", r, l.cudaError(r)}))
			return
		}
	}
	if rcv != nil {
		if err := e.grow(&e.recvBuf, len(rcv.b)); err != nil {
			fail(e.abortWith(err))
			return
		}
	}
	if err := e.issue(snd, rcv); err != nil {
		fail(err)
		return
	}
	if rcv != nil {
		if r := l.cudaMemcpyAsync(e.recvBuf.host, e.recvBuf.dev, len(rcv.b), cudaMemcpyDeviceToHost, e.stream); r != cudaSuccess {
			fail(e.abortWith(&Error{"cudaMemcpyAsync (device to host)", r, l.cudaError(r)}))
			return
		}
	}
	if err := e.wait(); err != nil {
		fail(err)
		return
	}
	if rcv != nil {
		rcv.mu.Lock()
		if !rcv.abandoned {
			copyFromPinned(rcv.b, e.recvBuf.host)
		}
		rcv.mu.Unlock()
	}
	for _, o := range batch {
		o.finish(nil)
	}
}

// issue calls ncclSend and/or ncclRecv (both: in one group). An error
// aborts the communicator. While the engine is inside these calls (which
// may block in real NCCL while connections are set up), Abort calls
// ncclCommAbort itself, from its own thread.
func (e *Endpoint) issue(snd, rcv *op) error {
	e.mu.Lock()
	if e.cause != nil {
		cause := e.cause
		e.mu.Unlock()
		return fmt.Errorf("endpoint aborted: %w", cause)
	}
	e.inIssue = true
	e.mu.Unlock()
	l := e.l
	var err error
	call := func(name string, r int) {
		if r != ncclSuccess && err == nil {
			err = &Error{name, r, l.ncclError(r) + l.lastError(e.comm)}
		}
	}
	group := snd != nil && rcv != nil
	if group {
		call("ncclGroupStart", l.ncclGroupStart())
	}
	if snd != nil && (err == nil || group) {
		call("ncclSend", l.ncclP2P(true, e.sendBuf.dev, len(snd.b), snd.peer, e.comm, e.stream))
	}
	if rcv != nil && (err == nil || group) {
		call("ncclRecv", l.ncclP2P(false, e.recvBuf.dev, len(rcv.b), rcv.peer, e.comm, e.stream))
	}
	if group {
		call("ncclGroupEnd", l.ncclGroupEnd())
	}
	e.mu.Lock()
	e.inIssue = false
	gone, cause := e.commGone, e.cause
	e.mu.Unlock()
	if gone && cause != nil {
		return fmt.Errorf("endpoint aborted: %w", cause)
	}
	if err != nil {
		return e.abortWith(err)
	}
	return nil
}

// wait polls the stream until its work is done, checking the
// communicator's asynchronous error on every poll, with a back-off from
// 20µs to 1ms. An asynchronous error, a failed query or an abort ends it.
func (e *Endpoint) wait() error {
	l := e.l
	backoff := 20 * time.Microsecond
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		switch r := l.cudaStreamQuery(e.stream); r {
		case cudaSuccess:
			return nil
		case cudaErrorNotReady:
		default:
			return e.abortWith(&Error{"cudaStreamQuery", r, l.cudaError(r)})
		}
		r, ae := l.ncclCommGetAsyncError(e.comm)
		if r != ncclSuccess {
			return e.abortWith(&Error{"ncclCommGetAsyncError", r, l.ncclError(r) + l.lastError(e.comm)})
		}
		if ae != ncclSuccess && ae != ncclInProgress {
			return e.abortWith(&Error{"ncclCommGetAsyncError", ae, l.ncclError(ae) + l.lastError(e.comm)})
		}
		select {
		case <-e.abortReq:
			e.mu.Lock()
			cause := e.cause
			e.mu.Unlock()
			e.abortComm()
			return fmt.Errorf("endpoint aborted: %w", cause)
		case <-t.C:
		}
		backoff = min(2*backoff, time.Millisecond)
		t.Reset(backoff)
	}
}

// cleanup destroys the communicator (unless aborted), frees the buffers
// and the stream.
func (e *Endpoint) cleanup() {
	l := e.l
	e.mu.Lock()
	destroy := !e.commGone
	e.commGone = true
	e.mu.Unlock()
	if !destroy {
		// An abort from another thread (Abort, during an NCCL call) may
		// still be running: buffers and the stream go only after it.
		<-e.abortDone
	}
	var errs []error
	if destroy {
		if r := l.ncclCommDestroy(e.comm); r != ncclSuccess {
			errs = append(errs, &Error{"ncclCommDestroy", r, l.ncclError(r)})
		}
	}
	errs = append(errs, e.freeStaging(&e.sendBuf), e.freeStaging(&e.recvBuf))
	if r := l.cudaStreamDestroy(e.stream); r != cudaSuccess {
		errs = append(errs, &Error{"cudaStreamDestroy", r, l.cudaError(r)})
	}
	if err := errors.Join(errs...); err != nil {
		e.closeErr = fmt.Errorf("nccl: rank %d: %w", e.rank, err)
	}
}

// Send sends b to rank peer (ncclSend of len(b) ncclUint8 on the
// endpoint's stream) and returns when NCCL completed it: the peer posted
// its receive and the bytes went. b is staged through a pinned host buffer
// and a device buffer. A zero-length b sends nothing. When ctx ends before
// the send completed, the endpoint is aborted (NCCL cannot cancel one
// operation) and the error wraps context.Cause(ctx); a ctx that had ended
// before the call fails it without aborting anything. Sends to one peer
// arrive in the order they were called.
func (e *Endpoint) Send(ctx context.Context, peer int, b []byte) error {
	return e.do(ctx, true, peer, b)
}

// Recv receives exactly len(b) bytes from rank peer into b. A zero-length
// b receives nothing. ctx as for Send.
func (e *Endpoint) Recv(ctx context.Context, peer int, b []byte) error {
	return e.do(ctx, false, peer, b)
}

func (e *Endpoint) do(ctx context.Context, send bool, peer int, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	o := &op{send: send, peer: peer, b: b, done: make(chan struct{})}
	if peer < 0 || peer >= e.ranks {
		return fmt.Errorf("nccl: %s: no such rank (%d ranks)", e.desc(o), e.ranks)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("nccl: %s: %w", e.desc(o), context.Cause(ctx))
	}
	e.mu.Lock()
	switch {
	case e.cause != nil:
		cause := e.cause
		e.mu.Unlock()
		return e.abortedErr(o, cause)
	case e.closing:
		e.mu.Unlock()
		return fmt.Errorf("nccl: %s: %w", e.desc(o), ErrClosed)
	}
	e.queue = append(e.queue, o)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
	}
	select {
	case <-o.done:
		return o.err
	default:
	}
	o.mu.Lock()
	o.abandoned = true
	o.mu.Unlock()
	err := fmt.Errorf("nccl: %s: %w", e.desc(o), context.Cause(ctx))
	e.Abort(err)
	return err
}

// Abort calls ncclCommAbort (once); every pending and later Send and Recv
// fails with an error that wraps cause (nil: ErrAborted). It returns once
// the communicator is aborted (or the endpoint had ended). Safe to call
// more than once, concurrently, and before or after Close.
func (e *Endpoint) Abort(cause error) {
	if cause == nil {
		cause = ErrAborted
	}
	e.mu.Lock()
	if e.cause == nil {
		e.cause = cause
		close(e.abortReq)
	}
	direct := e.inIssue && !e.commGone
	if direct {
		e.commGone = true
	}
	e.mu.Unlock()
	if direct {
		runtime.LockOSThread()
		e.l.ncclCommAbort(e.comm)
		runtime.UnlockOSThread()
		close(e.abortDone)
	}
	select {
	case <-e.abortDone:
	case <-e.exited:
	}
}

// Close waits for queued and pending operations, then destroys the
// communicator (ncclCommDestroy; not after Abort), frees the buffers and
// the stream and ends the endpoint's goroutine. Later Sends and Recvs fail
// with ErrClosed. An operation that never completes (its peer never
// posts the matching one) holds Close up: Abort ends it. Safe to call more
// than once and after Abort.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	<-e.exited
	return e.closeErr
}
