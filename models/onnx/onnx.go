// Package onnx is a small typed builder for ONNX models: the subset of
// onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto) that the tiny model generator needs, encoded with
// google.golang.org/protobuf/encoding/protowire.
//
// Encoding is deterministic: fields are written in a fixed order, tensors as
// little-endian raw_data, so the same Model gives the same bytes on every
// machine and every run. Unmarshal reads that subset back (for tests and
// tools); fields it does not know are skipped.
package onnx

// Field numbers from onnx.proto (onnx/onnx.proto3, IR version 8).
const (
	// ModelProto
	fModelIRVersion       = 1
	fModelProducerName    = 2
	fModelProducerVersion = 3
	fModelDomain          = 4
	fModelModelVersion    = 5
	fModelDocString       = 6
	fModelGraph           = 7
	fModelOpsetImport     = 8

	// OperatorSetIdProto
	fOpsetDomain  = 1
	fOpsetVersion = 2

	// GraphProto
	fGraphNode        = 1
	fGraphName        = 2
	fGraphInitializer = 5
	fGraphDocString   = 10
	fGraphInput       = 11
	fGraphOutput      = 12

	// NodeProto
	fNodeInput     = 1
	fNodeOutput    = 2
	fNodeName      = 3
	fNodeOpType    = 4
	fNodeAttribute = 5
	fNodeDocString = 6
	fNodeDomain    = 7

	// AttributeProto
	fAttrName   = 1
	fAttrF      = 2
	fAttrI      = 3
	fAttrS      = 4
	fAttrT      = 5
	fAttrFloats = 7
	fAttrInts   = 8
	fAttrType   = 20

	// TensorProto
	fTensorDims     = 1
	fTensorDataType = 2
	fTensorName     = 8
	fTensorRawData  = 9

	// ValueInfoProto
	fValueName = 1
	fValueType = 2

	// TypeProto
	fTypeTensor = 1
	// TypeProto.Tensor
	fTensorTypeElem  = 1
	fTensorTypeShape = 2
	// TensorShapeProto
	fShapeDim = 1
	// TensorShapeProto.Dimension
	fDimValue = 1
	fDimParam = 2
)

// DataType is an ONNX tensor element type (TensorProto.DataType).
type DataType int32

// The element types the builder uses.
const (
	Float   DataType = 1
	Int32   DataType = 6
	Int64   DataType = 7
	Float16 DataType = 10
	Double  DataType = 11
)

// String returns the ONNX name of the type.
func (d DataType) String() string {
	switch d {
	case Float:
		return "float"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Float16:
		return "float16"
	case Double:
		return "double"
	}
	return "datatype(" + itoa(int64(d)) + ")"
}

// AttrType is an AttributeProto.AttributeType.
type AttrType int32

// The attribute types the builder uses.
const (
	AttrFloat  AttrType = 1
	AttrInt    AttrType = 2
	AttrString AttrType = 3
	AttrTensor AttrType = 4
	AttrFloats AttrType = 6
	AttrInts   AttrType = 7
)

// Model is a ModelProto.
type Model struct {
	IRVersion       int64
	Opsets          []Opset
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Graph           Graph
}

// Opset is an OperatorSetIdProto: a domain ("" is the default ONNX domain)
// and its version.
type Opset struct {
	Domain  string
	Version int64
}

// Graph is a GraphProto.
type Graph struct {
	Name         string
	DocString    string
	Nodes        []Node
	Initializers []Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Node is a NodeProto.
type Node struct {
	Name      string
	OpType    string
	Domain    string
	DocString string
	Inputs    []string
	Outputs   []string
	Attrs     []Attr
}

// Attr is an AttributeProto; the field that Type names carries the value.
type Attr struct {
	Name   string
	Type   AttrType
	F      float32
	I      int64
	S      []byte
	T      *Tensor
	Floats []float32
	Ints   []int64
}

// Tensor is a TensorProto with its data in Raw (little-endian raw_data).
type Tensor struct {
	Name string
	Dims []int64
	Type DataType
	Raw  []byte
}

// ValueInfo is a ValueInfoProto for a tensor: name, element type and shape.
type ValueInfo struct {
	Name string
	Type DataType
	Dims []Dim
}

// Dim is one dimension of a ValueInfo: a fixed Value, or a symbolic Param
// (such as "batch") when Param is not empty.
type Dim struct {
	Value int64
	Param string
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [24]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
