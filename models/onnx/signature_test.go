package onnx

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestReadSignature reads the inputs and outputs of a built model, with a
// large initializer in the graph before them, and of the committed tiny
// model's graphs; a truncated file fails.
func TestReadSignature(t *testing.T) {
	b := NewBuilder("sig")
	x := b.Input("x", Float16, Dim{Param: "batch"}, Dim{Value: 3})
	w := b.Floats("w", []int64{3, 4096}, make([]float32, 3*4096))
	b.OpTo("y", "MatMul", []string{x, w})
	b.Output("y", Float, Dim{Param: "batch"}, Dim{Value: 4096})
	data := b.Model(17, "test").Marshal()
	sig, err := ReadSignature(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := &Signature{
		Inputs:  []ValueInfo{{Name: "x", Type: Float16, Dims: []Dim{{Param: "batch"}, {Value: 3}}}},
		Outputs: []ValueInfo{{Name: "y", Type: Float, Dims: []Dim{{Param: "batch"}, {Value: 4096}}}},
	}
	if !reflect.DeepEqual(sig, want) {
		t.Errorf("signature %+v, want %+v", sig, want)
	}
	if _, err := ReadSignature(bytes.NewReader(data[:len(data)-3])); err == nil {
		t.Error("truncated model: no error")
	}
	if _, err := ReadSignature(bytes.NewReader([]byte("hello, not a model"))); err == nil {
		t.Error("not a model: no error")
	}
	for _, name := range []string{"unet", "encoder", "decoder"} {
		path := filepath.Join("..", "tiny", name+".onnx")
		sig, err := ReadSignatureFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig.Inputs) == 0 || len(sig.Outputs) == 0 {
			t.Fatalf("%s: signature %+v", path, sig)
		}
		for _, v := range append(sig.Inputs, sig.Outputs...) {
			if v.Type != Float {
				t.Errorf("%s: %s is %v, want float (the tiny model is fp32)", path, v.Name, v.Type)
			}
		}
	}
}

// TestReadSignatureFileNotModel: a YAML file given as a model once gave
// only "onnx: unsupported wire type 6 at byte 1", /dev/zero "onnx: bad
// field number at byte 1"; both say now that the file is not an ONNX
// model, naming it, and /dev/zero (a device) is not read at all.
func TestReadSignatureFileNotModel(t *testing.T) {
	dir := t.TempDir()
	yaml := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(yaml, []byte("name: x\nmodel:\n  family: tiny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.onnx")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{yaml, empty, dir}
	if _, err := os.Stat("/dev/zero"); err == nil {
		files = append(files, "/dev/zero")
	}
	for _, f := range files {
		_, err := ReadSignatureFile(f)
		if err == nil || !strings.Contains(err.Error(), f+" is not an ONNX model (") {
			t.Errorf("ReadSignatureFile(%s) = %v; want %q", f, err, f+" is not an ONNX model (...)")
		}
	}
}

// endless reads the same field (number 1, varint 1) forever, whatever its
// position; Seek reports an end at size.
type endless struct{ size int64 }

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = []byte{0x08, 0x01}[i%2]
	}
	return len(p) &^ 1, nil
}

func (e endless) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekEnd {
		return e.size + off, nil
	}
	return off, nil
}

// TestReadSignatureBounded: a reader that never ends is read only up to
// the size its Seek reports (before, the loop read it forever), and a
// field longer than what is left is refused without seeking past the end.
func TestReadSignatureBounded(t *testing.T) {
	if _, err := ReadSignature(endless{size: 1 << 10}); err == nil || !strings.Contains(err.Error(), "no graph") {
		t.Errorf("endless reader: %v; want no graph", err)
	}
	// Field 5 (bytes) of 2^40 bytes in a file of 7.
	long := []byte{0x2a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}
	if _, err := ReadSignature(bytes.NewReader(long)); err == nil || !strings.Contains(err.Error(), "runs past the end") {
		t.Errorf("long field: %v; want runs past the end", err)
	}
}
