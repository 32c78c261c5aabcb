package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// ncclResult_t
const (
	ncclSuccess            = 0
	ncclUnhandledCudaError = 1
	ncclSystemError        = 2
	ncclInternalError      = 3
	ncclInvalidArgument    = 4
	ncclInvalidUsage       = 5
	ncclRemoteError        = 6
	ncclInProgress         = 7
)

var ncclErrorStrings = map[int]string{
	ncclSuccess:            "no error",
	ncclUnhandledCudaError: "unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
	ncclSystemError:        "unhandled system error (run with NCCL_DEBUG=INFO for details)",
	ncclInternalError:      "internal error - please report this issue to the NCCL developers",
	ncclInvalidArgument:    "invalid argument (run with NCCL_DEBUG=WARN for details)",
	ncclInvalidUsage:       "invalid usage (run with NCCL_DEBUG=WARN for details)",
	ncclRemoteError:        "remote process exited or there was a network error",
	ncclInProgress:         "NCCL operation in progress",
}

// ncclDataType_t: names and element sizes.
var ncclTypes = []struct {
	name string
	size uintptr
}{
	{"int8", 1}, {"uint8", 1}, {"int32", 4}, {"uint32", 4}, {"int64", 8}, {"uint64", 8},
	{"float16", 2}, {"float32", 4}, {"float64", 8}, {"bfloat16", 2}, {"float8e4m3", 1}, {"float8e5m2", 1},
}

const idPrefix = "fakenccl:"

// The last error not tied to a communicator (ncclGetLastError(NULL)).
var (
	lastErrMu sync.Mutex
	lastErr   string
)

func setLastError(format string, args ...any) {
	lastErrMu.Lock()
	lastErr = fmt.Sprintf(format, args...)
	lastErrMu.Unlock()
}

func globalLastError() unsafe.Pointer {
	lastErrMu.Lock()
	defer lastErrMu.Unlock()
	return staticString(lastErr)
}

func ncclGetUniqueIdImpl(out *[128]byte) int {
	if out == nil {
		return ncclInvalidArgument
	}
	dir, err := os.MkdirTemp("", "fakenccl-*")
	if err != nil {
		setLastError("fakenccl: ncclGetUniqueId: %v", err)
		return ncclSystemError
	}
	id := idPrefix + dir
	if len(id)+1 > len(out) {
		os.Remove(dir)
		setLastError("fakenccl: ncclGetUniqueId: the path %s does not fit in 128 bytes", dir)
		return ncclInvalidArgument
	}
	*out = [128]byte{}
	copy(out[:], id)
	return ncclSuccess
}

// comm is one rank of a communicator.
type comm struct {
	token        unsafe.Pointer
	rank, nranks int
	dev          int
	dir          string
	ln           *net.UnixListener

	mu       sync.Mutex
	cond     *sync.Cond       // pending changed
	out      map[int]net.Conn // to a peer we send to, dialed once
	in       map[int]net.Conn // from a peer we receive from, accepted
	arrived  map[int]chan struct{}
	sendSem  map[int]chan struct{} // one transfer at a time per peer and direction
	recvSem  map[int]chan struct{}
	asyncErr int
	lastErr  string
	lastErrC map[string]unsafe.Pointer // C copies of lastErr's texts, freed by destroy
	pending  int                       // stream operations of this comm not yet complete
	closed   bool

	aborted  chan struct{} // closed by ncclCommAbort or ncclCommDestroy
	acceptWG sync.WaitGroup
}

var (
	commMu sync.Mutex
	comms  = map[unsafe.Pointer]*comm{}
)

func lookupComm(h unsafe.Pointer) *comm {
	commMu.Lock()
	defer commMu.Unlock()
	return comms[h]
}

// initTimeout is $VDPP_FAKE_NCCL_INIT_TIMEOUT (a Go duration), 120s by
// default.
func initTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("VDPP_FAKE_NCCL_INIT_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 120 * time.Second
}

func ncclCommInitRankImpl(out *unsafe.Pointer, nranks int, id []byte, rank int) int {
	if out == nil {
		setLastError("fakenccl: ncclCommInitRank: comm is NULL")
		return ncclInvalidArgument
	}
	*out = nil
	if nranks < 1 || rank < 0 || rank >= nranks {
		setLastError("fakenccl: ncclCommInitRank: rank %d of %d", rank, nranks)
		return ncclInvalidArgument
	}
	s := string(id)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if !strings.HasPrefix(s, idPrefix) {
		setLastError("fakenccl: ncclCommInitRank: the unique id is not fakenccl's (it does not start with %q)", idPrefix)
		return ncclInvalidArgument
	}
	dir := strings.TrimPrefix(s, idPrefix)
	dev, _ := currentDevice()
	sock := filepath.Join(dir, fmt.Sprint(rank, ".sock"))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		setLastError("fakenccl: rank %d: %v", rank, err)
		return ncclSystemError
	}
	c := &comm{
		token: cmalloc(1), rank: rank, nranks: nranks, dev: dev, dir: dir, ln: ln,
		out: map[int]net.Conn{}, in: map[int]net.Conn{}, arrived: map[int]chan struct{}{},
		sendSem: map[int]chan struct{}{}, recvSem: map[int]chan struct{}{},
		lastErrC: map[string]unsafe.Pointer{}, aborted: make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	c.acceptWG.Add(1)
	go c.accept()
	// Collective: wait until every rank listens.
	timeout := initTimeout()
	deadline := time.Now().Add(timeout)
	for {
		var missing []int
		for r := range nranks {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprint(r, ".sock"))); err != nil {
				missing = append(missing, r)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			c.shutdown()
			c.acceptWG.Wait()
			setLastError("fakenccl: rank %d of %d waited %s for ranks %v to join (no socket of theirs in %s)", rank, nranks, timeout, missing, dir)
			return ncclSystemError
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Collective, as NCCL's bootstrap is: a rank returns only once every
	// rank has connected to it, which each does only after it saw every
	// rank listening. Seeing the other sockets is not enough: a rank
	// could return, abort and remove its socket before a slower rank saw
	// it, and that rank would wait for it forever. The connections are
	// the ones sends use later.
	for r := range nranks {
		if r == rank {
			continue
		}
		// A socket file exists from bind on, before its listen: a
		// refused connection is tried again until the deadline.
		for {
			_, err := c.dialOut(r)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
				c.shutdown()
				c.acceptWG.Wait()
				setLastError("fakenccl: rank %d of %d: connect to rank %d: %v", rank, nranks, r, err)
				return ncclSystemError
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	for r := range nranks {
		if r == rank {
			continue
		}
		c.mu.Lock()
		ch := c.arrivedLocked(r)
		c.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			c.shutdown()
			c.acceptWG.Wait()
			setLastError("fakenccl: rank %d of %d waited %s for rank %d to connect", rank, nranks, timeout, r)
			return ncclSystemError
		}
	}
	commMu.Lock()
	comms[c.token] = c
	commMu.Unlock()
	*out = c.token
	return ncclSuccess
}

// accept takes connections from peers that send to this rank: each
// starts with the sender's rank (int32); -1 is a liveness probe.
func (c *comm) accept() {
	defer c.acceptWG.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		var r int32
		if err := binary.Read(conn, binary.LittleEndian, &r); err != nil || r < 0 || int(r) >= c.nranks {
			conn.Close()
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			conn.Close()
			return
		}
		if old := c.in[int(r)]; old != nil {
			old.Close()
		}
		c.in[int(r)] = conn
		ch := c.arrivedLocked(int(r))
		select {
		case <-ch:
		default:
			close(ch)
		}
		c.mu.Unlock()
	}
}

func (c *comm) arrivedLocked(peer int) chan struct{} {
	ch := c.arrived[peer]
	if ch == nil {
		ch = make(chan struct{})
		c.arrived[peer] = ch
	}
	return ch
}

// setAsync records an asynchronous error (the first one stays) and its
// text as the comm's last error.
func (c *comm) setAsync(code int, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.asyncErr == ncclSuccess {
		c.asyncErr = code
		c.lastErr = fmt.Sprintf(format, args...)
	}
}

func (c *comm) setLastError(format string, args ...any) {
	c.mu.Lock()
	c.lastErr = fmt.Sprintf(format, args...)
	c.mu.Unlock()
}

func (c *comm) lastError() unsafe.Pointer {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.lastErrC[c.lastErr]
	if !ok {
		p = cstring(c.lastErr)
		c.lastErrC[c.lastErr] = p
	}
	return p
}

func (c *comm) isAborted() bool {
	select {
	case <-c.aborted:
		return true
	default:
		return false
	}
}

// shutdown closes the listener and every connection, releases pending
// operations, removes the socket and tries to remove the directory (it
// goes when the last rank left).
func (c *comm) shutdown() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.aborted)
	conns := make([]net.Conn, 0, len(c.in)+len(c.out))
	for _, m := range []map[int]net.Conn{c.in, c.out} {
		for _, conn := range m {
			conns = append(conns, conn)
		}
	}
	c.mu.Unlock()
	c.ln.Close() // removes the socket file (net unlinks on close)
	for _, conn := range conns {
		conn.Close()
	}
	os.Remove(filepath.Join(c.dir, fmt.Sprint(c.rank, ".sock")))
	os.Remove(c.dir)
}

func ncclCommAbortImpl(h unsafe.Pointer) int {
	commMu.Lock()
	c := comms[h]
	delete(comms, h)
	commMu.Unlock()
	if c == nil {
		return ncclSuccess // NCCL accepts a NULL comm
	}
	c.shutdown()
	c.acceptWG.Wait()
	return ncclSuccess
}

// ncclCommDestroyImpl waits for the comm's pending operations (as NCCL's
// finalize does), then cleans up as abort does.
func ncclCommDestroyImpl(h unsafe.Pointer) int {
	c := lookupComm(h)
	if c == nil {
		if h == nil {
			return ncclSuccess
		}
		setLastError("fakenccl: ncclCommDestroy: unknown communicator")
		return ncclInvalidArgument
	}
	c.mu.Lock()
	for c.pending > 0 && !c.closed {
		c.cond.Wait()
	}
	c.mu.Unlock()
	commMu.Lock()
	delete(comms, h)
	commMu.Unlock()
	c.shutdown()
	c.acceptWG.Wait()
	c.mu.Lock()
	for _, p := range c.lastErrC {
		cfree(p)
	}
	c.lastErrC = nil
	c.mu.Unlock()
	return ncclSuccess
}

// p2p is one ncclSend or ncclRecv.
type p2p struct {
	c      *comm
	send   bool
	buf    unsafe.Pointer
	count  uint64
	dtype  int
	peer   int
	stream *stream
}

func (p *p2p) bytes() uintptr { return uintptr(p.count) * ncclTypes[p.dtype].size }

func (p *p2p) String() string {
	return fmt.Sprintf("%d x %s", p.count, ncclTypes[p.dtype].name)
}

// Per-thread group state: ncclGroupStart/End nest by depth; the
// outermost End enqueues the collected operations.
type group struct {
	depth int
	ops   []*p2p
}

var (
	groupMu sync.Mutex
	groups  = map[int]*group{}
)

func ncclGroupStartImpl() int {
	groupMu.Lock()
	defer groupMu.Unlock()
	tid := syscall.Gettid()
	g := groups[tid]
	if g == nil {
		g = &group{}
		groups[tid] = g
	}
	g.depth++
	return ncclSuccess
}

func ncclGroupEndImpl() int {
	groupMu.Lock()
	tid := syscall.Gettid()
	g := groups[tid]
	if g == nil || g.depth == 0 {
		groupMu.Unlock()
		setLastError("fakenccl: ncclGroupEnd without ncclGroupStart")
		return ncclInvalidUsage
	}
	g.depth--
	if g.depth > 0 {
		groupMu.Unlock()
		return ncclSuccess
	}
	ops := g.ops
	delete(groups, tid)
	groupMu.Unlock()
	// One stream operation per stream, running all of its p2p calls.
	var order []*stream
	byStream := map[*stream][]*p2p{}
	for _, p := range ops {
		if byStream[p.stream] == nil {
			order = append(order, p.stream)
		}
		byStream[p.stream] = append(byStream[p.stream], p)
	}
	for _, s := range order {
		enqueue(s, byStream[s])
	}
	return ncclSuccess
}

// ncclP2PImpl checks one ncclSend or ncclRecv and enqueues it (or adds
// it to the thread's group).
func ncclP2PImpl(send bool, buf unsafe.Pointer, count uint64, dtype, peer int, h, sh unsafe.Pointer) int {
	name := "ncclRecv"
	if send {
		name = "ncclSend"
	}
	c := lookupComm(h)
	if c == nil {
		setLastError("fakenccl: %s: unknown communicator", name)
		return ncclInvalidArgument
	}
	if dtype < 0 || dtype >= len(ncclTypes) {
		c.setLastError("fakenccl: %s: unknown data type %d", name, dtype)
		return ncclInvalidArgument
	}
	if peer < 0 || peer >= c.nranks {
		c.setLastError("fakenccl: %s: rank %d: peer %d of %d ranks", name, c.rank, peer, c.nranks)
		return ncclInvalidArgument
	}
	s := lookupStream(sh)
	if s == nil {
		c.setLastError("fakenccl: %s: rank %d: unknown stream", name, c.rank)
		return ncclInvalidArgument
	}
	if s.dev != c.dev {
		c.setLastError("fakenccl: %s: rank %d: the stream is on device %d, the communicator on device %d", name, c.rank, s.dev, c.dev)
		return ncclInvalidArgument
	}
	p := &p2p{c: c, send: send, buf: buf, count: count, dtype: dtype, peer: peer, stream: s}
	if n := p.bytes(); n > 0 {
		al := findAlloc(buf, n)
		if al == nil || !al.device {
			c.setLastError("fakenccl: %s: rank %d: the buffer (%d bytes) is not inside memory from cudaMalloc", name, c.rank, n)
			return ncclInvalidArgument
		}
		if al.dev != c.dev {
			c.setLastError("fakenccl: %s: rank %d: the buffer is on device %d, the communicator on device %d", name, c.rank, al.dev, c.dev)
			return ncclInvalidArgument
		}
	}
	groupMu.Lock()
	if g := groups[syscall.Gettid()]; g != nil && g.depth > 0 {
		g.ops = append(g.ops, p)
		groupMu.Unlock()
		return ncclSuccess
	}
	groupMu.Unlock()
	enqueue(s, []*p2p{p})
	return ncclSuccess
}

// enqueue puts ops on s as one stream operation: ops with the same peer
// and direction run in order, the others concurrently; it completes when
// all did.
func enqueue(s *stream, ops []*p2p) {
	for _, p := range ops {
		p.c.mu.Lock()
		p.c.pending++
		p.c.mu.Unlock()
	}
	s.enqueue(func() {
		type key struct {
			peer int
			send bool
		}
		var keys []key
		lanes := map[key][]*p2p{}
		for _, p := range ops {
			k := key{p.peer, p.send}
			if lanes[k] == nil {
				keys = append(keys, k)
			}
			lanes[k] = append(lanes[k], p)
		}
		var wg sync.WaitGroup
		for _, k := range keys {
			wg.Add(1)
			go func(lane []*p2p) {
				defer wg.Done()
				for _, p := range lane {
					p.run()
				}
			}(lanes[k])
		}
		wg.Wait()
		for _, p := range ops {
			p.c.mu.Lock()
			p.c.pending--
			p.c.cond.Broadcast()
			p.c.mu.Unlock()
		}
	})
}

// Frames on the connection from a sender to a receiver:
//
//	receiver → sender: posted: dtype int32, count uint64
//	sender → receiver: kind int32 (frameData: length uint64 and the bytes;
//	                   frameMismatch: length uint32 and the error text)
const (
	frameData     = 1
	frameMismatch = 2
)

// run performs p; it returns when the transfer completed, or, after an
// error (recorded as the comm's asynchronous error), when the comm is
// aborted: as a hung NCCL kernel, released by ncclCommAbort.
func (p *p2p) run() {
	c := p.c
	sem := c.sem(p.send, p.peer)
	select {
	case sem <- struct{}{}:
	case <-c.aborted:
		return
	}
	var ok bool
	if p.send {
		ok = p.runSend()
	} else {
		ok = p.runRecv()
	}
	if !ok {
		<-c.aborted
		return
	}
	<-sem
}

func (c *comm) sem(send bool, peer int) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.recvSem
	if send {
		m = c.sendSem
	}
	if m[peer] == nil {
		m[peer] = make(chan struct{}, 1)
	}
	return m[peer]
}

// remote records that peer went away, unless this comm is being aborted.
func (c *comm) remote(peer int, err error) {
	if c.isAborted() {
		return
	}
	c.setAsync(ncclRemoteError, "fakenccl: rank %d closed its connection (seen by rank %d: %v)", peer, c.rank, err)
}

func (c *comm) sockPath(r int) string { return filepath.Join(c.dir, fmt.Sprint(r, ".sock")) }

// dialOut is the connection to peer for sending, dialed once.
func (c *comm) dialOut(peer int) (net.Conn, error) {
	c.mu.Lock()
	conn := c.out[peer]
	c.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	conn, err := net.Dial("unix", c.sockPath(peer))
	if err != nil {
		return nil, err
	}
	if err := binary.Write(conn, binary.LittleEndian, int32(c.rank)); err != nil {
		conn.Close()
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.Close()
		return nil, net.ErrClosed
	}
	c.out[peer] = conn
	c.mu.Unlock()
	return conn, nil
}

func (p *p2p) runSend() bool {
	c := p.c
	conn, err := c.dialOut(p.peer)
	if err != nil {
		c.remote(p.peer, err)
		return false
	}
	var posted struct {
		Dtype int32
		Count uint64
	}
	if err := binary.Read(conn, binary.LittleEndian, &posted); err != nil {
		c.remote(p.peer, err)
		return false
	}
	if int(posted.Dtype) != p.dtype || posted.Count != p.count {
		want := "an unknown type"
		if posted.Dtype >= 0 && int(posted.Dtype) < len(ncclTypes) {
			want = (&p2p{count: posted.Count, dtype: int(posted.Dtype)}).String()
		}
		text := fmt.Sprintf("fakenccl: rank %d sends %s to rank %d, which posted a receive of %s", c.rank, p, p.peer, want)
		c.setAsync(ncclInvalidUsage, "%s", text)
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, int32(frameMismatch))
		binary.Write(&b, binary.LittleEndian, uint32(len(text)))
		b.WriteString(text)
		conn.Write(b.Bytes())
		return false
	}
	n := p.bytes()
	var hdr [12]byte
	binary.LittleEndian.PutUint32(hdr[:4], frameData)
	binary.LittleEndian.PutUint64(hdr[4:], uint64(n))
	if _, err := conn.Write(hdr[:]); err != nil {
		c.remote(p.peer, err)
		return false
	}
	if n > 0 {
		if _, err := conn.Write(unsafe.Slice((*byte)(p.buf), n)); err != nil {
			c.remote(p.peer, err)
			return false
		}
	}
	return true
}

// waitIn waits for the connection from peer; while it waits it probes
// peer's socket every 100ms, so that a peer that died before it ever
// connected is noticed.
func (c *comm) waitIn(peer int) (net.Conn, error) {
	c.mu.Lock()
	ch := c.arrivedLocked(peer)
	c.mu.Unlock()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ch:
			c.mu.Lock()
			conn := c.in[peer]
			c.mu.Unlock()
			if conn == nil {
				return nil, net.ErrClosed
			}
			return conn, nil
		case <-c.aborted:
			return nil, net.ErrClosed
		case <-t.C:
			probe, err := net.Dial("unix", c.sockPath(peer))
			if err != nil {
				return nil, err
			}
			binary.Write(probe, binary.LittleEndian, int32(-1))
			probe.Close()
		}
	}
}

func (p *p2p) runRecv() bool {
	c := p.c
	conn, err := c.waitIn(p.peer)
	if err != nil {
		c.remote(p.peer, err)
		return false
	}
	var posted [12]byte
	binary.LittleEndian.PutUint32(posted[:4], uint32(p.dtype))
	binary.LittleEndian.PutUint64(posted[4:], p.count)
	if _, err := conn.Write(posted[:]); err != nil {
		c.remote(p.peer, err)
		return false
	}
	var kind int32
	if err := binary.Read(conn, binary.LittleEndian, &kind); err != nil {
		c.remote(p.peer, err)
		return false
	}
	switch kind {
	case frameData:
		var n uint64
		if err := binary.Read(conn, binary.LittleEndian, &n); err != nil {
			c.remote(p.peer, err)
			return false
		}
		if uintptr(n) != p.bytes() {
			c.setAsync(ncclInternalError, "fakenccl: rank %d expected %d bytes from rank %d, got %d", c.rank, p.bytes(), p.peer, n)
			return false
		}
		if n > 0 {
			if _, err := io.ReadFull(conn, unsafe.Slice((*byte)(p.buf), n)); err != nil {
				c.remote(p.peer, err)
				return false
			}
		}
		return true
	case frameMismatch:
		var n uint32
		if err := binary.Read(conn, binary.LittleEndian, &n); err != nil {
			c.remote(p.peer, err)
			return false
		}
		text := make([]byte, min(n, 4096))
		if _, err := io.ReadFull(conn, text); err != nil {
			c.remote(p.peer, err)
			return false
		}
		c.setAsync(ncclInvalidUsage, "%s", text)
		return false
	default:
		c.setAsync(ncclInternalError, "fakenccl: rank %d: bad frame %d from rank %d", c.rank, kind, p.peer)
		return false
	}
}

func ncclCommGetAsyncErrorImpl(h unsafe.Pointer, out *int32) int {
	c := lookupComm(h)
	if c == nil || out == nil {
		setLastError("fakenccl: ncclCommGetAsyncError: unknown communicator")
		return ncclInvalidArgument
	}
	c.mu.Lock()
	*out = int32(c.asyncErr)
	c.mu.Unlock()
	return ncclSuccess
}
