package exec

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// tcpLink is the TCP link: one connection per hand-off. Its inlets
// listen on the handoff's host: the address a worker reaches its
// coordinator from, so loopback when all run on one host.
// Micro-batches travel as binary frames (wire.go); in blocking mode the
// receiver signals ready and acknowledges each micro-batch.
type tcpLink struct{ h handoff }

func newTCPLink(h handoff) link { return tcpLink{h} }

func (l tcpLink) listen() (inlet, error) {
	host := l.h.host
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	return &tcpInlet{h: l.h, ln: ln}, nil
}

func (l tcpLink) dial(ctx context.Context, addr string) (outlet, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if l.h.token != "" {
		if _, err := c.Write(linkHello(l.h.token)); err != nil {
			c.Close()
			return nil, fmt.Errorf("exec: tcp link to %s: hello: %w", addr, err)
		}
	}
	return &tcpOutlet{h: l.h, conn: c}, nil
}

// linkHello is what a sender writes first on a data link between
// processes: a fixed word and the run's token.
func linkHello(token string) []byte { return []byte("vdpp-link " + token + "\n") }

// linkHelloTimeout bounds how long a connection to a data link may stay
// silent before its hello; a stranger is dropped after it.
const linkHelloTimeout = 5 * time.Second

// tcpInlet is the receiving end of a hand-off over TCP: a listener until
// the stage before connects, then its connection.
type tcpInlet struct {
	h    handoff
	ln   net.Listener
	conn net.Conn
	bulk bulk // nil: micro-batches travel on conn
}

func (in *tcpInlet) addr() string { return in.ln.Addr().String() }

// accept waits for the connection of the stage before, until ctx's
// deadline or cancellation; the listener is closed afterwards. Between
// processes (a token is set) it takes only a connection whose hello
// carries the run's token: other connections are dropped, each after at
// most linkHelloTimeout, without failing the hand-off.
func (in *tcpInlet) accept(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		if tl, ok := in.ln.(*net.TCPListener); ok {
			tl.SetDeadline(d)
		}
	}
	// A cancellation closes the listener; a deadline is the listener's own.
	cancelled := func() bool { return ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) }
	stop := context.AfterFunc(ctx, func() {
		if cancelled() {
			in.ln.Close()
		}
	})
	defer stop()
	defer in.ln.Close()
	good := make(chan net.Conn, 1)
	var greeters sync.WaitGroup
	defer func() {
		// A sender whose hello arrives after accept gave up (deadline,
		// cancellation) is closed, not left open.
		go func() {
			greeters.Wait()
			select {
			case c := <-good:
				c.Close()
			default:
			}
		}()
	}()
	for {
		c, err := in.ln.Accept()
		if err != nil {
			select {
			case c := <-good: // the sender's hello arrived as the listener closed
				in.conn = c
				return nil
			default:
			}
			if cancelled() {
				return context.Cause(ctx)
			}
			return err
		}
		if in.h.token == "" {
			in.conn = c
			return nil
		}
		greeters.Add(1)
		go func() {
			defer greeters.Done()
			in.greet(c, good)
		}()
		select {
		case c := <-good:
			in.conn = c
			return nil
		default:
		}
	}
}

// greet reads a connection's hello and hands the connection to good when
// it carries the run's token (once: later ones are closed); otherwise it
// closes it. The accept loop stops at the next Accept after good is full,
// which greet makes happen by closing the listener.
func (in *tcpInlet) greet(c net.Conn, good chan net.Conn) {
	want := linkHello(in.h.token)
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(linkHelloTimeout))
	_, err := io.ReadFull(c, got)
	c.SetReadDeadline(time.Time{})
	if err != nil || subtle.ConstantTimeCompare(got, want) != 1 {
		c.Close()
		return
	}
	select {
	case good <- c:
		in.ln.Close() // wake the accept loop
	default:
		c.Close()
	}
}

func (in *tcpInlet) open(ctx context.Context, clk clock) source {
	return newTCPReceiver(ctx, in.conn, in.h.blocking, clk, in.bulk)
}

func (in *tcpInlet) close() error {
	in.ln.Close()
	if in.conn != nil {
		return in.conn.Close()
	}
	return nil
}

// tcpOutlet is the sending end of a hand-off over TCP.
type tcpOutlet struct {
	h    handoff
	conn net.Conn
	bulk bulk // nil: micro-batches travel on conn
}

func (out *tcpOutlet) open(ctx context.Context, clk clock) sender {
	return newTCPSender(ctx, out.conn, out.h.blocking, clk, out.bulk)
}

func (out *tcpOutlet) close() error { return out.conn.Close() }

// tcpSender is the sending end of a hand-off over TCP.
type tcpSender struct {
	conn     net.Conn
	w        *bufio.Writer
	blocking bool
	clk      clock
	sig      chan byte // frames from the receiver: ready, ack
	sigErr   chan error
	bulk     bulk
}

// bulk carries a micro-batch's bytes outside the TCP connection (NCCL):
// the connection then carries only their length, in a frameBulk, and
// keeps its other frames (ready, ack, end).
type bulk interface {
	// send sends b to the other end; it returns once b has gone.
	send(ctx context.Context, b []byte) error
	// recv receives exactly len(b) bytes into b.
	recv(ctx context.Context, b []byte) error
}

func newTCPSender(ctx context.Context, conn net.Conn, blocking bool, clk clock, bk bulk) *tcpSender {
	s := &tcpSender{conn: conn, w: bufio.NewWriterSize(conn, 1<<16), blocking: blocking, clk: clk, sig: make(chan byte, 4), sigErr: make(chan error, 1), bulk: bk}
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
		readyAt = s.clk.now()
	}
	start := s.clk.now()
	enc := encodeBatch(b)
	if len(enc) > maxFrame {
		return readyAt, waited, interval{}, frameError(fmt.Sprintf("exec: wire: a micro-batch of %d bytes is more than a hand-off carries (%d)", len(enc), maxFrame))
	}
	if s.bulk == nil {
		if err := writeFrame(s.w, frameBatch, enc); err != nil {
			return readyAt, waited, interval{}, err
		}
	} else if err := writeFrame(s.w, frameBulk, binary.LittleEndian.AppendUint64(nil, uint64(len(enc)))); err != nil {
		return readyAt, waited, interval{}, err
	}
	if err := s.w.Flush(); err != nil {
		return readyAt, waited, interval{}, err
	}
	if s.bulk != nil {
		if err := s.bulk.send(ctx, enc); err != nil {
			return readyAt, waited, interval{}, err
		}
	}
	if s.blocking {
		if err := s.await(ctx, frameAck); err != nil {
			return readyAt, waited, interval{}, err
		}
	}
	return readyAt, waited, interval{start, s.clk.now()}, nil
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
	ctx      context.Context
	conn     net.Conn
	r        *bufio.Reader
	blocking bool
	clk      clock
	queue    chan recvd
	bulk     bulk
}

type recvd struct {
	b    *batch
	xfer interval
	err  error
}

func newTCPReceiver(ctx context.Context, conn net.Conn, blocking bool, clk clock, bk bulk) *tcpReceiver {
	r := &tcpReceiver{ctx: ctx, conn: conn, r: bufio.NewReaderSize(conn, 1<<16), blocking: blocking, clk: clk, bulk: bk}
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
		return recvd{b: b, xfer: interval{r.clk.at(arrived), r.clk.now()}}
	case frameBulk:
		if r.bulk == nil || len(payload) != 8 {
			break
		}
		n := binary.LittleEndian.Uint64(payload)
		if n == 0 || n > maxFrame {
			return recvd{err: frameError(fmt.Sprintf("exec: wire: a micro-batch of %d bytes announced (want 1 to %d)", n, maxFrame))}
		}
		buf := make([]byte, n)
		if err := r.bulk.recv(r.ctx, buf); err != nil {
			return recvd{err: err}
		}
		b, err := decodeBatch(buf)
		if err != nil {
			return recvd{err: err}
		}
		return recvd{b: b, xfer: interval{r.clk.at(arrived), r.clk.now()}}
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
