package onnx

import (
	"bufio"
	"errors"
	"fmt"
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
// path (see ReadSignature).
func ReadSignatureFile(path string) (*Signature, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := ReadSignature(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ReadSignature reads the graph's inputs and outputs from an ONNX model,
// skipping (seeking past) everything else: the nodes and the weights of a
// model of gigabytes are not read.
func ReadSignature(r io.ReadSeeker) (*Signature, error) {
	sr := &seekReader{r: r, br: bufio.NewReader(r)}
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
			return nil, err
		}
		if err := sr.graph(int64(n), sig); err != nil {
			return nil, err
		}
		found = true
	}
	if !found {
		return nil, errors.New("onnx: no graph (not an ONNX model?)")
	}
	return sig, nil
}

// seekReader reads protobuf fields from a buffered io.ReadSeeker, seeking
// past large ones.
type seekReader struct {
	r   io.ReadSeeker
	br  *bufio.Reader
	off int64 // bytes consumed
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
	if n < 0 {
		return errors.New("onnx: bad length")
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
	s.br.Reset(s.r)
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
