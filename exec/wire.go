package exec

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"github.com/vdpp/vdpp/models"
)

// Frames on a TCP connection: a little-endian uint32 length (of what
// follows), a type byte, the payload. Latents travel as little-endian
// float32 in binary frames; control messages are JSON.
const (
	frameBatch   byte = 'D' // a micro-batch (binary)
	frameEnd     byte = 'E' // no more micro-batches
	frameReady   byte = 'R' // blocking: the receiver is idle and waiting
	frameAck     byte = 'A' // blocking: the receiver has the micro-batch
	frameControl byte = 'J' // a control message (JSON)
)

// maxFrame bounds a frame's size (1 GiB): a corrupt length fails clearly.
const maxFrame = 1 << 30

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	hdr := make([]byte, 5, 5+len(payload))
	binary.LittleEndian.PutUint32(hdr, uint32(len(payload)+1))
	hdr[4] = typ
	_, err := w.Write(append(hdr, payload...))
	return err
}

// readFrame reads one frame; arrived is when its header was read.
func readFrame(r io.Reader) (typ byte, payload []byte, arrived time.Time, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, time.Time{}, err
	}
	arrived = time.Now()
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n < 1 || n > maxFrame {
		return 0, nil, arrived, fmt.Errorf("exec: wire: bad frame length %d", n)
	}
	payload = make([]byte, n-1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, arrived, err
	}
	return hdr[4], payload, arrived, nil
}

// encodeBatch lays out a micro-batch in binary, little endian.
func encodeBatch(b *batch) []byte {
	n := 4
	for _, it := range b.items {
		n += 6*8 + 3*4
		if it.state != nil {
			n += 4 * (len(it.state.X) + len(it.state.Cond.Embedding) + len(it.state.Cond.ImageLatent))
		}
		n += 4
		for _, t := range it.timings {
			n += 4 + 16 + 2 + len(t.Device)
		}
	}
	out := make([]byte, 0, n)
	le := binary.LittleEndian
	out = le.AppendUint32(out, uint32(len(b.items)))
	f32s := func(x []float32) {
		out = le.AppendUint32(out, uint32(len(x)))
		for _, v := range x {
			out = le.AppendUint32(out, math.Float32bits(v))
		}
	}
	for _, it := range b.items {
		st := it.state
		if st == nil {
			st = &models.State{Sample: -1}
		}
		out = le.AppendUint64(out, uint64(int64(it.id)))
		out = le.AppendUint64(out, uint64(it.release))
		out = le.AppendUint64(out, uint64(int64(st.Sample)))
		out = le.AppendUint64(out, st.Seed)
		out = le.AppendUint64(out, uint64(int64(st.Next)))
		hasState := uint64(0)
		if it.state != nil {
			hasState = 1
		}
		out = le.AppendUint64(out, hasState)
		f32s(st.X)
		f32s(st.Cond.Embedding)
		f32s(st.Cond.ImageLatent)
		out = le.AppendUint32(out, uint32(len(it.timings)))
		for _, t := range it.timings {
			out = le.AppendUint32(out, uint32(int32(t.Stage)))
			out = le.AppendUint64(out, uint64(t.Start))
			out = le.AppendUint64(out, uint64(t.End))
			out = le.AppendUint16(out, uint16(len(t.Device)))
			out = append(out, t.Device...)
		}
	}
	return out
}

var errShortBatch = errors.New("exec: wire: truncated micro-batch")

// decodeBatch reverses encodeBatch.
func decodeBatch(p []byte) (*batch, error) {
	le := binary.LittleEndian
	bad := false
	take := func(n int) []byte {
		if bad || len(p) < n {
			bad = true
			return make([]byte, n)
		}
		v := p[:n]
		p = p[n:]
		return v
	}
	u32 := func() uint32 { return le.Uint32(take(4)) }
	u64 := func() uint64 { return le.Uint64(take(8)) }
	f32s := func() []float32 {
		n := int(u32())
		if bad || n > len(p)/4 {
			bad = true
			return nil
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = math.Float32frombits(le.Uint32(p[4*i:]))
		}
		p = p[4*n:]
		return x
	}
	n := int(u32())
	if bad || n > len(p) {
		return nil, errShortBatch
	}
	b := &batch{items: make([]*item, 0, n)}
	for i := 0; i < n && !bad; i++ {
		it := &item{id: int(int64(u64())), release: int64(u64())}
		st := &models.State{Sample: int(int64(u64())), Seed: u64(), Next: models.Step(int64(u64()))}
		has := u64() == 1
		st.X, st.Cond.Embedding, st.Cond.ImageLatent = f32s(), f32s(), f32s()
		if has {
			it.state = st
		}
		nt := int(u32())
		if nt > len(p) {
			bad = true
			break
		}
		for k := 0; k < nt && !bad; k++ {
			t := StageTiming{Stage: int(int32(u32())), Start: int64(u64()), End: int64(u64())}
			t.Device = string(take(int(le.Uint16(take(2)))))
			it.timings = append(it.timings, t)
		}
		b.items = append(b.items, it)
	}
	if bad || len(p) != 0 {
		return nil, errShortBatch
	}
	return b, nil
}

// tcpSender is the sending end of a hand-off over TCP.
type tcpSender struct {
	conn     net.Conn
	w        *bufio.Writer
	blocking bool
	now      func() int64
	sig      chan byte // frames from the receiver: ready, ack
	sigErr   chan error
}

func newTCPSender(ctx context.Context, conn net.Conn, blocking bool, now func() int64) *tcpSender {
	s := &tcpSender{conn: conn, w: bufio.NewWriterSize(conn, 1<<16), blocking: blocking, now: now, sig: make(chan byte, 4), sigErr: make(chan error, 1)}
	context.AfterFunc(ctx, func() { conn.Close() })
	go func() {
		r := bufio.NewReader(conn)
		for {
			typ, _, _, err := readFrame(r)
			if err != nil {
				s.sigErr <- err
				close(s.sig)
				return
			}
			s.sig <- typ
		}
	}()
	return s
}

// await waits for a signal frame of type want from the receiver.
func (s *tcpSender) await(ctx context.Context, want byte) error {
	select {
	case typ, ok := <-s.sig:
		if !ok {
			return fmt.Errorf("receiver gone: %w", <-s.sigErr)
		}
		if typ != want {
			return fmt.Errorf("exec: wire: got frame %q from the receiver, want %q", typ, want)
		}
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (s *tcpSender) send(ctx context.Context, b *batch) (int64, bool, interval, error) {
	var readyAt int64
	waited := false
	if s.blocking {
		select {
		case typ, ok := <-s.sig:
			if !ok {
				return 0, false, interval{}, fmt.Errorf("receiver gone: %w", <-s.sigErr)
			}
			if typ != frameReady {
				return 0, false, interval{}, fmt.Errorf("exec: wire: got frame %q from the receiver, want %q", typ, frameReady)
			}
		default:
			waited = true
			if err := s.await(ctx, frameReady); err != nil {
				return 0, true, interval{}, err
			}
		}
		readyAt = s.now()
	}
	start := s.now()
	if err := writeFrame(s.w, frameBatch, encodeBatch(b)); err != nil {
		return readyAt, waited, interval{}, err
	}
	if err := s.w.Flush(); err != nil {
		return readyAt, waited, interval{}, err
	}
	if s.blocking {
		if err := s.await(ctx, frameAck); err != nil {
			return readyAt, waited, interval{}, err
		}
	}
	return readyAt, waited, interval{start, s.now()}, nil
}

// close sends the end frame, half-closes, and waits (briefly) for the
// receiver to close its side, so no data is lost to a reset.
func (s *tcpSender) close() error {
	err := writeFrame(s.w, frameEnd, nil)
	if err == nil {
		err = s.w.Flush()
	}
	if tc, ok := s.conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for done := false; !done; {
		select {
		case _, ok := <-s.sig:
			done = !ok
		case <-t.C:
			done = true
		}
	}
	s.conn.Close()
	return err
}

// tcpReceiver is the receiving end of a hand-off over TCP. Its recv span
// is its read of the frame (from the header's arrival to the decoded
// micro-batch). Buffered: a goroutine reads frames as they come and the
// stage dequeues them.
type tcpReceiver struct {
	conn     net.Conn
	r        *bufio.Reader
	blocking bool
	now      func() int64
	start    time.Time
	queue    chan recvd
}

type recvd struct {
	b    *batch
	xfer interval
	err  error
}

func newTCPReceiver(ctx context.Context, conn net.Conn, blocking bool, start time.Time, now func() int64) *tcpReceiver {
	r := &tcpReceiver{conn: conn, r: bufio.NewReaderSize(conn, 1<<16), blocking: blocking, now: now, start: start}
	context.AfterFunc(ctx, func() { conn.Close() })
	if !blocking {
		r.queue = make(chan recvd, 64)
		go func() {
			for {
				x := r.read()
				select {
				case r.queue <- x:
				case <-ctx.Done():
					return // the stage no longer takes micro-batches
				}
				if x.err != nil {
					return
				}
			}
		}()
	}
	return r
}

func (r *tcpReceiver) read() recvd {
	typ, payload, arrived, err := readFrame(r.r)
	if err != nil {
		return recvd{err: fmt.Errorf("sender gone: %w", err)}
	}
	switch typ {
	case frameEnd:
		r.conn.Close()
		return recvd{err: io.EOF}
	case frameBatch:
		b, err := decodeBatch(payload)
		if err != nil {
			return recvd{err: err}
		}
		return recvd{b: b, xfer: interval{int64(arrived.Sub(r.start)), r.now()}}
	}
	return recvd{err: fmt.Errorf("exec: wire: unexpected frame %q from the sender", typ)}
}

func (r *tcpReceiver) next(ctx context.Context) (*batch, *interval, error) {
	var x recvd
	if r.blocking {
		// A failed ready signal shows up as a failed read below.
		writeFrame(r.conn, frameReady, nil)
		x = r.read()
		if x.err == nil {
			if err := writeFrame(r.conn, frameAck, nil); err != nil {
				return nil, nil, err
			}
		}
	} else {
		select {
		case x = <-r.queue:
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		}
	}
	if x.err != nil {
		if ctx.Err() != nil {
			return nil, nil, context.Cause(ctx)
		}
		return nil, nil, x.err
	}
	return x.b, &x.xfer, nil
}

// controlConn carries JSON control messages between the coordinator and
// a worker; writes are serialised.
type controlConn struct {
	conn net.Conn
	r    *bufio.Reader
	mu   sync.Mutex
}

func newControlConn(c net.Conn) *controlConn {
	return &controlConn{conn: c, r: bufio.NewReader(c)}
}

func (c *controlConn) send(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return writeFrame(c.conn, frameControl, b)
}

func (c *controlConn) recv(m any) error {
	typ, p, _, err := readFrame(c.r)
	if err != nil {
		return err
	}
	if typ != frameControl {
		return fmt.Errorf("exec: wire: unexpected frame %q on the control connection", typ)
	}
	return json.Unmarshal(p, m)
}
