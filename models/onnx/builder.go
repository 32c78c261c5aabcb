package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
)

// FloatTensor returns a float32 tensor with the given name, dims and values.
func FloatTensor(name string, dims []int64, v []float32) Tensor {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return Tensor{Name: name, Dims: dims, Type: Float, Raw: raw}
}

// Float16Tensor returns a float16 tensor holding v rounded to half precision.
func Float16Tensor(name string, dims []int64, v []float32) Tensor {
	raw := make([]byte, 2*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint16(raw[2*i:], Float32ToFloat16(f))
	}
	return Tensor{Name: name, Dims: dims, Type: Float16, Raw: raw}
}

// Int64Tensor returns an int64 tensor with the given name, dims and values.
func Int64Tensor(name string, dims []int64, v []int64) Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return Tensor{Name: name, Dims: dims, Type: Int64, Raw: raw}
}

// Floats decodes the data of a float32 tensor.
func (t *Tensor) Floats() ([]float32, error) {
	if t.Type != Float {
		return nil, fmt.Errorf("onnx: tensor %q: type %v, not float", t.Name, t.Type)
	}
	if len(t.Raw)%4 != 0 {
		return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes, not a multiple of 4", t.Name, len(t.Raw))
	}
	v := make([]float32, len(t.Raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
	}
	return v, nil
}

// IntAttr returns an INT attribute.
func IntAttr(name string, v int64) Attr { return Attr{Name: name, Type: AttrInt, I: v} }

// IntsAttr returns an INTS attribute.
func IntsAttr(name string, v ...int64) Attr { return Attr{Name: name, Type: AttrInts, Ints: v} }

// FloatAttr returns a FLOAT attribute.
func FloatAttr(name string, v float32) Attr { return Attr{Name: name, Type: AttrFloat, F: v} }

// StringAttr returns a STRING attribute.
func StringAttr(name, v string) Attr { return Attr{Name: name, Type: AttrString, S: []byte(v)} }

// Builder assembles a Graph node by node, naming intermediate values
// uniquely and in order (so the same calls give the same graph).
type Builder struct {
	G     Graph
	n     int
	names map[string]bool
}

// NewBuilder returns a Builder for a graph with the given name.
func NewBuilder(name string) *Builder {
	return &Builder{G: Graph{Name: name}, names: map[string]bool{}}
}

// Input declares a graph input.
func (b *Builder) Input(name string, t DataType, dims ...Dim) string {
	b.G.Inputs = append(b.G.Inputs, ValueInfo{Name: name, Type: t, Dims: dims})
	b.names[name] = true
	return name
}

// Output declares value name as a graph output.
func (b *Builder) Output(name string, t DataType, dims ...Dim) {
	b.G.Outputs = append(b.G.Outputs, ValueInfo{Name: name, Type: t, Dims: dims})
}

// Init adds an initializer (a constant tensor) and returns its name. The
// tensor's name is made unique if it is taken.
func (b *Builder) Init(t Tensor) string {
	t.Name = b.unique(t.Name)
	b.G.Initializers = append(b.G.Initializers, t)
	return t.Name
}

// Floats adds a float32 initializer.
func (b *Builder) Floats(name string, dims []int64, v []float32) string {
	return b.Init(FloatTensor(name, dims, v))
}

// Scalar adds a float32 scalar initializer.
func (b *Builder) Scalar(name string, v float32) string {
	return b.Init(FloatTensor(name, nil, []float32{v}))
}

// Ints adds a 1-D int64 initializer.
func (b *Builder) Ints(name string, v ...int64) string {
	return b.Init(Int64Tensor(name, []int64{int64(len(v))}, v))
}

// Op adds a node with one output and returns the output's name.
func (b *Builder) Op(op string, inputs []string, attrs ...Attr) string {
	return b.OpN(op, inputs, 1, attrs...)[0]
}

// OpTo adds a node whose single output has the given name (a graph output).
func (b *Builder) OpTo(out, op string, inputs []string, attrs ...Attr) {
	b.n++
	b.names[out] = true
	b.G.Nodes = append(b.G.Nodes, Node{
		Name: fmt.Sprintf("%s_%d", op, b.n), OpType: op,
		Inputs: inputs, Outputs: []string{out}, Attrs: attrs,
	})
}

// OpN adds a node with n outputs and returns their names.
func (b *Builder) OpN(op string, inputs []string, n int, attrs ...Attr) []string {
	b.n++
	name := fmt.Sprintf("%s_%d", op, b.n)
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.unique(fmt.Sprintf("%s_out%d", name, i))
	}
	b.G.Nodes = append(b.G.Nodes, Node{
		Name: name, OpType: op, Inputs: inputs, Outputs: outs, Attrs: attrs,
	})
	return outs
}

func (b *Builder) unique(name string) string {
	if name == "" {
		name = "t"
	}
	u := name
	for i := 1; b.names[u]; i++ {
		u = fmt.Sprintf("%s_%d", name, i)
	}
	b.names[u] = true
	return u
}

// Model wraps the built graph in a Model with the default ONNX domain at the
// given opset and the IR version that goes with it.
func (b *Builder) Model(opset int64, producer string) *Model {
	ir := int64(8) // IR version 8 goes with opsets 14..18
	if opset >= 19 {
		ir = 9
	}
	return &Model{
		IRVersion:    ir,
		Opsets:       []Opset{{Version: opset}},
		ProducerName: producer,
		Graph:        b.G,
	}
}

// Float32ToFloat16 converts f to IEEE 754 half precision, rounding to
// nearest even; out-of-range values become ±Inf and NaN stays NaN.
func Float32ToFloat16(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	exp := int32(u>>23) & 0xff
	mant := u & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15: // overflow
		return sign | 0x7c00
	case exp-127 >= -14: // normal half
		e := uint32(exp-127+15) << 10
		m := mant >> 13
		h := e | m
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, which is right (up to Inf)
		}
		return sign | uint16(h)
	case exp-127 >= -25: // subnormal half
		m := mant | 0x800000
		shift := uint32(-14-(exp-127)) + 13
		h := m >> shift
		rest := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || (rest == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	return sign
}

// Float16ToFloat32 converts an IEEE 754 half-precision value to float32
// (exactly).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
