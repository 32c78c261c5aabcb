package onnx

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one decoded protobuf field: its number, wire type, and value
// (v for varint and fixed types, b for length-delimited ones).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// fields walks the top-level fields of message b, calling fn for each.
func fields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("onnx: bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("onnx: field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

var errWireType = errors.New("unexpected wire type")

func (f field) str() (string, error) {
	if f.typ != protowire.BytesType {
		return "", fmt.Errorf("onnx: field %d: %w", f.num, errWireType)
	}
	return string(f.b), nil
}

func (f field) int() (int64, error) {
	if f.typ != protowire.VarintType {
		return 0, fmt.Errorf("onnx: field %d: %w", f.num, errWireType)
	}
	return int64(f.v), nil
}

func (f field) msg() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, fmt.Errorf("onnx: field %d: %w", f.num, errWireType)
	}
	return f.b, nil
}

// ints reads a repeated int64 field, packed or not.
func (f field) ints(dst []int64) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.v)), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("onnx: field %d: %w", f.num, protowire.ParseError(n))
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("onnx: field %d: %w", f.num, errWireType)
}

// floats reads a repeated float field, packed or not.
func (f field) floats(dst []float32) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.v))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return nil, fmt.Errorf("onnx: field %d: packed floats of %d bytes", f.num, len(f.b))
		}
		for i := 0; i < len(f.b); i += 4 {
			u := uint32(f.b[i]) | uint32(f.b[i+1])<<8 | uint32(f.b[i+2])<<16 | uint32(f.b[i+3])<<24
			dst = append(dst, math.Float32frombits(u))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("onnx: field %d: %w", f.num, errWireType)
}

// Unmarshal decodes a serialized ModelProto into the subset that Model
// holds. Unknown fields are skipped; tensors stored other than as raw_data
// come back with an empty Raw.
func Unmarshal(b []byte) (*Model, error) {
	m := &Model{}
	err := fields(b, func(f field) error {
		var err error
		switch f.num {
		case fModelIRVersion:
			m.IRVersion, err = f.int()
		case fModelProducerName:
			m.ProducerName, err = f.str()
		case fModelProducerVersion:
			m.ProducerVersion, err = f.str()
		case fModelDomain:
			m.Domain, err = f.str()
		case fModelModelVersion:
			m.ModelVersion, err = f.int()
		case fModelDocString:
			m.DocString, err = f.str()
		case fModelGraph:
			var gb []byte
			if gb, err = f.msg(); err == nil {
				err = m.Graph.unmarshal(gb)
			}
		case fModelOpsetImport:
			var ob []byte
			if ob, err = f.msg(); err == nil {
				var o Opset
				err = fields(ob, func(f field) error {
					var err error
					switch f.num {
					case fOpsetDomain:
						o.Domain, err = f.str()
					case fOpsetVersion:
						o.Version, err = f.int()
					}
					return err
				})
				m.Opsets = append(m.Opsets, o)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (g *Graph) unmarshal(b []byte) error {
	return fields(b, func(f field) error {
		var err error
		var mb []byte
		switch f.num {
		case fGraphName:
			g.Name, err = f.str()
		case fGraphDocString:
			g.DocString, err = f.str()
		case fGraphNode:
			if mb, err = f.msg(); err == nil {
				var n Node
				err = n.unmarshal(mb)
				g.Nodes = append(g.Nodes, n)
			}
		case fGraphInitializer:
			if mb, err = f.msg(); err == nil {
				var t Tensor
				err = t.unmarshal(mb)
				g.Initializers = append(g.Initializers, t)
			}
		case fGraphInput, fGraphOutput:
			if mb, err = f.msg(); err == nil {
				var v ValueInfo
				err = v.unmarshal(mb)
				if f.num == fGraphInput {
					g.Inputs = append(g.Inputs, v)
				} else {
					g.Outputs = append(g.Outputs, v)
				}
			}
		}
		return err
	})
}

func (n *Node) unmarshal(b []byte) error {
	return fields(b, func(f field) error {
		var err error
		var s string
		switch f.num {
		case fNodeInput:
			s, err = f.str()
			n.Inputs = append(n.Inputs, s)
		case fNodeOutput:
			s, err = f.str()
			n.Outputs = append(n.Outputs, s)
		case fNodeName:
			n.Name, err = f.str()
		case fNodeOpType:
			n.OpType, err = f.str()
		case fNodeDomain:
			n.Domain, err = f.str()
		case fNodeDocString:
			n.DocString, err = f.str()
		case fNodeAttribute:
			var mb []byte
			if mb, err = f.msg(); err == nil {
				var a Attr
				err = a.unmarshal(mb)
				n.Attrs = append(n.Attrs, a)
			}
		}
		return err
	})
}

func (a *Attr) unmarshal(b []byte) error {
	return fields(b, func(f field) error {
		var err error
		switch f.num {
		case fAttrName:
			a.Name, err = f.str()
		case fAttrType:
			var v int64
			v, err = f.int()
			a.Type = AttrType(v)
		case fAttrF:
			if f.typ != protowire.Fixed32Type {
				return fmt.Errorf("onnx: attribute f: %w", errWireType)
			}
			a.F = math.Float32frombits(uint32(f.v))
		case fAttrI:
			a.I, err = f.int()
		case fAttrS:
			var mb []byte
			mb, err = f.msg()
			a.S = append([]byte(nil), mb...)
		case fAttrT:
			var mb []byte
			if mb, err = f.msg(); err == nil {
				a.T = &Tensor{}
				err = a.T.unmarshal(mb)
			}
		case fAttrFloats:
			a.Floats, err = f.floats(a.Floats)
		case fAttrInts:
			a.Ints, err = f.ints(a.Ints)
		}
		return err
	})
}

func (t *Tensor) unmarshal(b []byte) error {
	t.Raw = []byte{}
	return fields(b, func(f field) error {
		var err error
		switch f.num {
		case fTensorDims:
			t.Dims, err = f.ints(t.Dims)
		case fTensorDataType:
			var v int64
			v, err = f.int()
			t.Type = DataType(v)
		case fTensorName:
			t.Name, err = f.str()
		case fTensorRawData:
			var mb []byte
			mb, err = f.msg()
			t.Raw = append([]byte{}, mb...)
		}
		return err
	})
}

func (v *ValueInfo) unmarshal(b []byte) error {
	return fields(b, func(f field) error {
		var err error
		switch f.num {
		case fValueName:
			v.Name, err = f.str()
		case fValueType:
			var tb []byte
			if tb, err = f.msg(); err != nil {
				return err
			}
			err = fields(tb, func(f field) error {
				if f.num != fTypeTensor {
					return nil
				}
				tt, err := f.msg()
				if err != nil {
					return err
				}
				return fields(tt, func(f field) error {
					var err error
					switch f.num {
					case fTensorTypeElem:
						var e int64
						e, err = f.int()
						v.Type = DataType(e)
					case fTensorTypeShape:
						var sb []byte
						if sb, err = f.msg(); err != nil {
							return err
						}
						v.Dims = []Dim{}
						err = fields(sb, func(f field) error {
							if f.num != fShapeDim {
								return nil
							}
							db, err := f.msg()
							if err != nil {
								return err
							}
							var d Dim
							err = fields(db, func(f field) error {
								var err error
								switch f.num {
								case fDimValue:
									d.Value, err = f.int()
								case fDimParam:
									d.Param, err = f.str()
								}
								return err
							})
							v.Dims = append(v.Dims, d)
							return err
						})
					}
					return err
				})
			})
		}
		return err
	})
}
