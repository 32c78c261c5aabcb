package onnx

import (
	"bytes"
	"path/filepath"
	"reflect"
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
