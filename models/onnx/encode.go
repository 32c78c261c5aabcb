package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Marshal encodes m as a serialized ModelProto.
func (m *Model) Marshal() []byte {
	var b []byte
	b = appendInt(b, fModelIRVersion, m.IRVersion)
	b = appendString(b, fModelProducerName, m.ProducerName)
	b = appendString(b, fModelProducerVersion, m.ProducerVersion)
	b = appendString(b, fModelDomain, m.Domain)
	b = appendInt(b, fModelModelVersion, m.ModelVersion)
	b = appendString(b, fModelDocString, m.DocString)
	b = appendMessage(b, fModelGraph, m.Graph.marshal())
	for _, o := range m.Opsets {
		var ob []byte
		ob = appendString(ob, fOpsetDomain, o.Domain)
		ob = appendInt(ob, fOpsetVersion, o.Version)
		b = appendMessage(b, fModelOpsetImport, ob)
	}
	return b
}

func (g *Graph) marshal() []byte {
	var b []byte
	for i := range g.Nodes {
		b = appendMessage(b, fGraphNode, g.Nodes[i].marshal())
	}
	b = appendString(b, fGraphName, g.Name)
	for i := range g.Initializers {
		b = appendMessage(b, fGraphInitializer, g.Initializers[i].marshal())
	}
	b = appendString(b, fGraphDocString, g.DocString)
	for i := range g.Inputs {
		b = appendMessage(b, fGraphInput, g.Inputs[i].marshal())
	}
	for i := range g.Outputs {
		b = appendMessage(b, fGraphOutput, g.Outputs[i].marshal())
	}
	return b
}

func (n *Node) marshal() []byte {
	var b []byte
	for _, s := range n.Inputs {
		b = protowire.AppendTag(b, fNodeInput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	for _, s := range n.Outputs {
		b = protowire.AppendTag(b, fNodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	b = appendString(b, fNodeName, n.Name)
	b = appendString(b, fNodeOpType, n.OpType)
	for i := range n.Attrs {
		b = appendMessage(b, fNodeAttribute, n.Attrs[i].marshal())
	}
	b = appendString(b, fNodeDocString, n.DocString)
	b = appendString(b, fNodeDomain, n.Domain)
	return b
}

func (a *Attr) marshal() []byte {
	var b []byte
	b = appendString(b, fAttrName, a.Name)
	switch a.Type {
	case AttrFloat:
		b = protowire.AppendTag(b, fAttrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrInt:
		b = protowire.AppendTag(b, fAttrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case AttrString:
		b = protowire.AppendTag(b, fAttrS, protowire.BytesType)
		b = protowire.AppendBytes(b, a.S)
	case AttrTensor:
		if a.T != nil {
			b = appendMessage(b, fAttrT, a.T.marshal())
		}
	case AttrFloats:
		var p []byte
		for _, f := range a.Floats {
			p = protowire.AppendFixed32(p, math.Float32bits(f))
		}
		b = protowire.AppendTag(b, fAttrFloats, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	case AttrInts:
		var p []byte
		for _, v := range a.Ints {
			p = protowire.AppendVarint(p, uint64(v))
		}
		b = protowire.AppendTag(b, fAttrInts, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	b = protowire.AppendTag(b, fAttrType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(a.Type))
	return b
}

func (t *Tensor) marshal() []byte {
	var b []byte
	if len(t.Dims) > 0 {
		var p []byte
		for _, d := range t.Dims {
			p = protowire.AppendVarint(p, uint64(d))
		}
		b = protowire.AppendTag(b, fTensorDims, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	b = appendInt(b, fTensorDataType, int64(t.Type))
	b = appendString(b, fTensorName, t.Name)
	// raw_data is written even when empty (a zero-size tensor) so the
	// tensor always has a data field.
	b = protowire.AppendTag(b, fTensorRawData, protowire.BytesType)
	b = protowire.AppendBytes(b, t.Raw)
	return b
}

func (v *ValueInfo) marshal() []byte {
	var shape []byte
	for _, d := range v.Dims {
		var db []byte
		if d.Param != "" {
			db = appendString(db, fDimParam, d.Param)
		} else {
			db = protowire.AppendTag(db, fDimValue, protowire.VarintType)
			db = protowire.AppendVarint(db, uint64(d.Value))
		}
		shape = appendMessage(shape, fShapeDim, db)
	}
	var tt []byte
	tt = appendInt(tt, fTensorTypeElem, int64(v.Type))
	tt = appendMessage(tt, fTensorTypeShape, shape)
	var typ []byte
	typ = appendMessage(typ, fTypeTensor, tt)
	var b []byte
	b = appendString(b, fValueName, v.Name)
	b = appendMessage(b, fValueType, typ)
	return b
}

// appendInt writes a varint field, omitting it when zero (proto3 default).
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendString writes a string field, omitting it when empty.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}
