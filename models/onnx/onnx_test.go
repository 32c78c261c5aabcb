package onnx

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func sampleModel() *Model {
	b := NewBuilder("g")
	x := b.Input("x", Float, Dim{Param: "batch"}, Dim{Value: 3})
	w := b.Floats("w", []int64{3, 2}, []float32{1, -2, 0.5, 4, 1e-7, -3e5})
	y := b.Op("MatMul", []string{x, w})
	y = b.Op("Softmax", []string{y}, IntAttr("axis", -1), FloatAttr("f", 0.25), IntsAttr("perm", 0, -1, 7),
		StringAttr("mode", "nearest"), Attr{Name: "fs", Type: AttrFloats, Floats: []float32{1.5, -2}},
		Attr{Name: "value", Type: AttrTensor, T: &Tensor{Name: "c", Dims: []int64{1}, Type: Int64, Raw: Int64Tensor("", nil, []int64{-5}).Raw}})
	b.OpTo("y", "Identity", []string{y})
	b.Output("y", Float, Dim{Param: "batch"}, Dim{Value: 2})
	b.Ints("shape", -1, 2)
	m := b.Model(17, "test")
	m.DocString = "doc"
	return m
}

// TestRoundTrip: Unmarshal(Marshal(m)) gives m back, and marshals to the
// same bytes.
func TestRoundTrip(t *testing.T) {
	m := sampleModel()
	data := m.Marshal()
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip changed the model:\n got %+v\nwant %+v", got, m)
	}
	if again := got.Marshal(); !bytes.Equal(again, data) {
		t.Errorf("re-marshalled bytes differ (%d vs %d bytes)", len(again), len(data))
	}
}

// TestWireLayout checks field numbers of onnx.proto by walking the bytes
// with protowire directly.
func TestWireLayout(t *testing.T) {
	data := sampleModel().Marshal()
	want := map[protowire.Number]protowire.Type{
		1: protowire.VarintType, // ir_version
		2: protowire.BytesType,  // producer_name
		6: protowire.BytesType,  // doc_string
		7: protowire.BytesType,  // graph
		8: protowire.BytesType,  // opset_import
	}
	seen := map[protowire.Number]bool{}
	var graph []byte
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal(protowire.ParseError(n))
		}
		b = b[n:]
		if wt, ok := want[num]; !ok || wt != typ {
			t.Errorf("model field %d of wire type %d not expected", num, typ)
		}
		seen[num] = true
		if num == 1 {
			v, _ := protowire.ConsumeVarint(b)
			if v != 8 {
				t.Errorf("ir_version %d, want 8 for opset 17", v)
			}
		}
		if num == 7 {
			graph, _ = protowire.ConsumeBytes(b)
		}
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
	if len(seen) != len(want) {
		t.Errorf("model fields %v, want %v", seen, want)
	}
	// The graph has nodes (1), a name (2), initializers (5), inputs (11)
	// and outputs (12).
	counts := map[protowire.Number]int{}
	for b := graph; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		counts[num]++
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
	if wantCounts := map[protowire.Number]int{1: 3, 2: 1, 5: 2, 11: 1, 12: 1}; !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("graph field counts %v, want %v", counts, wantCounts)
	}
}

func TestUnmarshalRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{0xff}, {0x3a, 0x05, 0x01}, {0x08}} {
		if _, err := Unmarshal(b); err == nil {
			t.Errorf("Unmarshal(%x): no error", b)
		}
	}
}

func TestTensorFloats(t *testing.T) {
	v := []float32{0, -1, 3.5, float32(math.Inf(1))}
	tt := FloatTensor("a", []int64{4}, v)
	got, err := tt.Floats()
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Errorf("Floats() = %v, %v, want %v", got, err, v)
	}
	it := Int64Tensor("i", []int64{1}, []int64{1})
	if _, err := it.Floats(); err == nil {
		t.Error("Floats() of an int64 tensor: no error")
	}
}

// TestFloat16 checks the conversions on known encodings and on every half
// value (half → float → half is the identity, NaNs aside).
func TestFloat16(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, // smallest subnormal
		{6.103515625e-05, 0x0400},                       // smallest normal
		{1.0009765625, 0x3c01}, {1.00048828125, 0x3c00}, // tie to even
		{1.00146484375, 0x3c02}, // tie to even, upwards
		{2e-8, 0}, {65520, 0x7c00},
	}
	for _, c := range cases {
		if got := Float32ToFloat16(c.f); got != c.h {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	for h := range 1 << 16 {
		f := Float16ToFloat32(uint16(h))
		if f != f {
			continue
		}
		if back := Float32ToFloat16(f); back != uint16(h) {
			t.Fatalf("half %#04x → %g → %#04x", h, f, back)
		}
	}
	if f := Float16ToFloat32(Float32ToFloat16(float32(math.NaN()))); f == f {
		t.Error("NaN did not survive")
	}
}
