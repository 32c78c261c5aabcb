package onnx

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/vdpp/vdpp/internal/atomicfile"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// Signature is a graph's inputs and outputs, as the model file declares
// them (graph.input less the initializers is not computed: ONNX files
// exported for inference list only the real inputs).
type Signature struct {
	Inputs, Outputs []ValueInfo
}

// maxValueInfo bounds one ValueInfoProto (a name and a shape).
const maxValueInfo = 1 << 20

// ReadSignatureFile reads the inputs and outputs of the ONNX model in
// path (see ReadSignature). A path that is not a regular file (a folder, a
// device such as /dev/zero) or a file that does not decode as an ONNX
// model gives "PATH is not an ONNX model (why)"; errors reading the file
// are returned as they are.
func ReadSignatureFile(path string) (*Signature, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not an ONNX model (it is %s)", path, atomicfile.Kind(fi.Mode()))
	}
	s, err := ReadSignature(f)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s is not an ONNX model (%w)", path, err)
	}
	return s, nil
}

// ReadSignature reads the graph's inputs and outputs from an ONNX model,
// skipping (seeking past) everything else: the nodes and the weights of a
// model of gigabytes are not read. r is read from its start to its end
// (found by seeking): a field that runs past the end is an error, so the
// read is bounded by the size even for a reader that never ends.
func ReadSignature(r io.ReadSeeker) (*Signature, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, errors.New("onnx: the file is empty")
	}
	sr := &seekReader{r: r, br: bufio.NewReader(io.LimitReader(r, size)), size: size}
	sig := &Signature{}
	found := false
	for {
		num, typ, err := sr.tag()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if num != fModelGraph || typ != protowire.BytesType {
			if err := sr.skip(typ); err != nil {
				return nil, err
			}
			continue
		}
		n, err := sr.varint()
		if err != nil {
			return nil, noEOF(err)
		}
		if n > uint64(sr.size-sr.off) {
			return nil, fmt.Errorf("onnx: a graph of %d bytes at byte %d runs past the end of the %d bytes", n, sr.off, sr.size)
		}
		if err := sr.graph(int64(n), sig); err != nil {
			return nil, err
		}
		found = true
	}
	if !found {
		return nil, errors.New("onnx: no graph in the model")
	}
	return sig, nil
}

// seekReader reads protobuf fields from a buffered io.ReadSeeker, seeking
// past large ones.
type seekReader struct {
	r    io.ReadSeeker
	br   *bufio.Reader // reads r up to size
	off  int64         // bytes consumed
	size int64         // bytes in r
}

func (s *seekReader) byte() (byte, error) {
	b, err := s.br.ReadByte()
	if err == nil {
		s.off++
	}
	return b, err
}

func (s *seekReader) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		b, err := s.byte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("onnx: bad varint")
}

func (s *seekReader) tag() (protowire.Number, protowire.Type, error) {
	v, err := s.varint()
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if num < 1 {
		return 0, 0, fmt.Errorf("onnx: bad field number at byte %d", s.off)
	}
	return num, typ, nil
}

// discard skips n bytes: from the buffer, else by seeking.
func (s *seekReader) discard(n int64) error {
	if n < 0 || n > s.size-s.off {
		return fmt.Errorf("onnx: a field of %d bytes at byte %d runs past the end of the %d bytes", uint64(n), s.off, s.size)
	}
	if n <= int64(s.br.Buffered()) {
		_, err := s.br.Discard(int(n))
		s.off += n
		return err
	}
	if _, err := s.r.Seek(s.off+n, io.SeekStart); err != nil {
		return err
	}
	s.off += n
	s.br.Reset(io.LimitReader(s.r, s.size-s.off))
	return nil
}

func (s *seekReader) skip(typ protowire.Type) error {
	switch typ {
	case protowire.VarintType:
		_, err := s.varint()
		return err
	case protowire.Fixed32Type:
		return s.discard(4)
	case protowire.Fixed64Type:
		return s.discard(8)
	case protowire.BytesType:
		n, err := s.varint()
		if err != nil {
			return err
		}
		return s.discard(int64(n))
	}
	return fmt.Errorf("onnx: unsupported wire type %d at byte %d", typ, s.off)
}

// graph reads a GraphProto of n bytes, keeping its inputs and outputs.
func (s *seekReader) graph(n int64, sig *Signature) error {
	end := s.off + n
	for s.off < end {
		num, typ, err := s.tag()
		if err != nil {
			return noEOF(err)
		}
		if (num != fGraphInput && num != fGraphOutput) || typ != protowire.BytesType {
			if err := s.skip(typ); err != nil {
				return noEOF(err)
			}
			continue
		}
		m, err := s.varint()
		if err != nil {
			return noEOF(err)
		}
		if m > maxValueInfo {
			return fmt.Errorf("onnx: graph input or output of %d bytes", m)
		}
		b := make([]byte, m)
		if _, err := io.ReadFull(s.br, b); err != nil {
			return noEOF(err)
		}
		s.off += int64(m)
		var v ValueInfo
		if err := v.unmarshal(b); err != nil {
			return err
		}
		if num == fGraphInput {
			sig.Inputs = append(sig.Inputs, v)
		} else {
			sig.Outputs = append(sig.Outputs, v)
		}
	}
	if s.off != end {
		return errors.New("onnx: graph ends inside a field")
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
