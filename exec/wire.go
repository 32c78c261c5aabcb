package exec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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
	frameBulk    byte = 'N' // a micro-batch's length (uint64); its bytes follow outside the connection (NCCL)
)

// maxFrame bounds a frame's size (1 GiB): a corrupt length fails clearly.
const maxFrame = 1 << 30

// frameError is what arrived is not a frame of this protocol (a length
// out of bounds, a type not expected): the peer is not a vdexec process,
// or the stream is corrupt.
type frameError string

func (e frameError) Error() string { return string(e) }

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	hdr := make([]byte, 5, 5+len(payload))
	binary.LittleEndian.PutUint32(hdr, uint32(len(payload)+1))
	hdr[4] = typ
	_, err := w.Write(append(hdr, payload...))
	return err
}

// readFrame reads one frame; arrived is when its header was read.
func readFrame(r io.Reader) (typ byte, payload []byte, arrived time.Time, err error) {
	return readFrameMax(r, maxFrame)
}

// readFrameMax reads one frame of at most limit bytes (a hello from a
// process not yet known is small: a stranger cannot make the coordinator
// allocate a large frame).
func readFrameMax(r io.Reader, limit uint32) (typ byte, payload []byte, arrived time.Time, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, time.Time{}, err
	}
	arrived = time.Now()
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n < 1 || n > limit {
		return 0, nil, arrived, frameError(fmt.Sprintf("exec: wire: bad frame length %d (the frame began %q)", n, hdr[:]))
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
