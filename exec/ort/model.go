package ort

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/onnx"
	"github.com/vdpp/vdpp/plan"
)

// Options configures the sessions of a Model.
type Options struct {
	// Provider is the execution provider: plan.ProviderCPU (the default
	// when empty) or plan.ProviderCUDA.
	Provider plan.Provider
	// IntraOpThreads is the thread count inside one operator; 0 lets ONNX
	// Runtime choose (all cores).
	IntraOpThreads int
	// InterOpThreads is the thread count across operators; 0 lets ONNX
	// Runtime choose.
	InterOpThreads int
	// CUDADevice is the CUDA device id for the cuda provider. A library
	// built with CUDA uses its own CUDA provider; one without, such as the
	// CPU-only core of `make ort-gpu` (ONNX Runtime 1.29.0), reaches CUDA
	// through libonnxruntime_providers_cuda.so next to it (or
	// $VDPP_ORT_CUDA_PLUGIN), registered once per process as a plugin
	// execution provider.
	CUDADevice int
}

func (o Options) validate() error {
	switch {
	case o.Provider != "" && !o.Provider.Valid():
		return fmt.Errorf("ort: options: provider %q: want cpu or cuda", o.Provider)
	case o.IntraOpThreads < 0:
		return fmt.Errorf("ort: options: intra-op threads %d: want ≥ 0 (0: ONNX Runtime's default)", o.IntraOpThreads)
	case o.InterOpThreads < 0:
		return fmt.Errorf("ort: options: inter-op threads %d: want ≥ 0 (0: ONNX Runtime's default)", o.InterOpThreads)
	case o.CUDADevice < 0:
		return fmt.Errorf("ort: options: cuda device %d: want ≥ 0", o.CUDADevice)
	}
	return nil
}

// Files are the paths of a model's three graphs. An empty path leaves that
// part out: a pipeline stage that only runs UNet steps opens only the UNet,
// and calling a part that was left out is an error.
type Files struct {
	UNet, Encoder, Decoder string
}

// ErrNotOpened is returned by a call to a part whose file was not given.
var ErrNotOpened = errors.New("part not opened")

// Model is a models.Model backed by ONNX Runtime sessions. Its methods are
// safe for concurrent use; calls on one Model are serialised (open one Model
// per worker to run in parallel).
type Model struct {
	mu      sync.Mutex
	shape   models.Shape
	unet    *part
	encoder *part
	decoder *part
	closed  bool
}

var _ models.Model = (*Model)(nil)

// Open opens the graphs in files as ONNX Runtime sessions and checks their
// inputs and outputs against the SVD UNet contract (models.UNetInput) at shape
// (its Batch is ignored: the batch is the call's). Init must have succeeded,
// or Init("") must succeed (the library from $VDPP_ORT_LIB).
func Open(files Files, shape models.Shape, opts Options) (*Model, error) {
	if err := Init(""); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if shape.Frames < 1 || shape.Channels < 1 || shape.Height < 1 || shape.Width < 1 {
		return nil, fmt.Errorf("ort: open: shape %+v: frames, channels, height and width must be ≥ 1", shape)
	}
	if files.UNet == "" && files.Encoder == "" && files.Decoder == "" {
		return nil, errors.New("ort: open: no model files given")
	}
	m := &Model{shape: shape}
	F, C, h, w := int64(shape.Frames), int64(shape.Channels), int64(shape.Height), int64(shape.Width)
	specs := []struct {
		path    string
		dst     **part
		what    string
		inputs  []portSpec
		outputs []portSpec
	}{
		{files.UNet, &m.unet, "unet", []portSpec{
			{name: "sample", dims: []int64{batchDim, F, 2 * C, h, w}},
			{name: "timestep", dims: []int64{batchDim}, timestep: true},
			{name: "encoder_hidden_states", dims: []int64{batchDim, 1, models.Embedding}},
			{name: "added_time_ids", dims: []int64{batchDim, 3}},
		}, []portSpec{{dims: []int64{batchDim, F, C, h, w}}}},
		{files.Encoder, &m.encoder, "encoder", []portSpec{
			{dims: []int64{batchDim, 3, 8 * h, 8 * w}},
		}, []portSpec{{dims: []int64{batchDim, 1, models.Embedding}}, {dims: []int64{batchDim, C, h, w}}}},
		{files.Decoder, &m.decoder, "decoder", []portSpec{
			{dims: []int64{batchDim, F, C, h, w}},
		}, []portSpec{{dims: []int64{batchDim, F, 3, 8 * h, 8 * w}}}},
	}
	for _, s := range specs {
		if s.path == "" {
			continue
		}
		p, err := openPart(s.what, s.path, s.inputs, s.outputs, opts)
		if err != nil {
			m.Close()
			return nil, err
		}
		*s.dst = p
	}
	return m, nil
}

// Close releases the sessions and their tensors. The Model is unusable
// afterwards; Close is idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	for _, p := range []*part{m.unet, m.encoder, m.decoder} {
		if p != nil {
			errs = append(errs, p.close())
		}
	}
	return errors.Join(errs...)
}

// Shape returns the shape the Model was opened at (Batch as given to Open).
func (m *Model) Shape() models.Shape { return m.shape }

// FP16 reports whether the UNet (or else the first part opened) takes
// float16 inputs.
func (m *Model) FP16() bool {
	for _, p := range []*part{m.unet, m.encoder, m.decoder} {
		if p != nil {
			return p.in[0].fp16
		}
	}
	return false
}

func (m *Model) get(p *part, what string) (*part, error) {
	if m.closed {
		return nil, fmt.Errorf("ort: %s: model is closed", what)
	}
	if p == nil {
		return nil, fmt.Errorf("ort: %s: %w (no file given to Open)", what, ErrNotOpened)
	}
	return p, nil
}

func (m *Model) checkShape(what string, s models.Shape, frames bool) error {
	want := m.shape
	if s.Batch < 1 || s.Channels != want.Channels || s.Height != want.Height || s.Width != want.Width ||
		(frames && s.Frames != want.Frames) {
		return fmt.Errorf("ort: %s: call shape %+v does not match the opened shape %+v (batch ≥ 1)", what, s, want)
	}
	return nil
}

// UNet runs one UNet call (see models.Model).
func (m *Model) UNet(in models.UNetInput, out []float32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.get(m.unet, "unet")
	if err != nil {
		return err
	}
	if err := m.checkShape("unet", in.Shape, true); err != nil {
		return err
	}
	return p.run(in.Shape.Batch, [][]float32{in.Sample, in.Timestep, in.EncoderHiddenStates, in.AddedTimeIDs}, [][]float32{out})
}

// Encode runs the image encoder (see models.Model).
func (m *Model) Encode(s models.Shape, images, emb, lat []float32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.get(m.encoder, "encoder")
	if err != nil {
		return err
	}
	if err := m.checkShape("encoder", s, false); err != nil {
		return err
	}
	return p.run(s.Batch, [][]float32{images}, [][]float32{emb, lat})
}

// Decode runs the decoder (see models.Model).
func (m *Model) Decode(s models.Shape, latents, frames []float32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.get(m.decoder, "decoder")
	if err != nil {
		return err
	}
	if err := m.checkShape("decoder", s, true); err != nil {
		return err
	}
	return p.run(s.Batch, [][]float32{latents}, [][]float32{frames})
}

// batchDim marks the batch dimension in a portSpec.
const batchDim = -1

// portSpec is what the contract expects of one input or output: its name
// ("" for any) and dims, with batchDim for the batch.
type portSpec struct {
	name     string
	dims     []int64
	timestep bool // may also be [1] (one timestep for the whole batch)
}

// port is one input or output as the model declares it.
type port struct {
	name string
	dims []int64 // the model's dims: -1 where dynamic
	fp16 bool
	one  bool // a [1] timestep shared by the batch
}

// part is one opened graph.
type part struct {
	what    string
	path    string
	sess    *onnxruntime.DynamicAdvancedSession
	in, out []port
	cache   map[int]*bound
	order   []int // batch sizes in cache, oldest first
}

// maxCached is how many batch sizes keep their tensors.
const maxCached = 4

// bound is a set of tensors for one batch size.
type bound struct {
	in, out   []onnxruntime.Value
	f32       [][]float32 // per port (inputs then outputs): float32 data, or nil
	f16       [][]byte    // per port: float16 data, or nil
	inN, outN []int
}

func dimsString(d []int64) string {
	s := "["
	for i, v := range d {
		if i > 0 {
			s += " "
		}
		switch v {
		case batchDim:
			s += "B"
		default:
			s += strconv.FormatInt(v, 10)
		}
	}
	return s + "]"
}

func modelDimsString(d []int64) string {
	s := "["
	for i, v := range d {
		if i > 0 {
			s += " "
		}
		if v < 0 {
			s += "?"
		} else {
			s += strconv.FormatInt(v, 10)
		}
	}
	return s + "]"
}

// matchPort checks a model port, as the ONNX file declares it, against
// the contract. A dimension that is symbolic (dim_param, such as "batch")
// or has no value is dynamic (-1), as ONNX Runtime reports it.
func matchPort(what, kind string, info onnx.ValueInfo, spec portSpec) (port, error) {
	p := port{name: info.Name, dims: modelDims(info.Dims)}
	switch info.Type {
	case onnx.Float:
	case onnx.Float16:
		p.fp16 = true
	case 0:
		return p, fmt.Errorf("ort: %s: %s %q: not a tensor (or no element type given), want a float or float16 tensor", what, kind, info.Name)
	default:
		return p, fmt.Errorf("ort: %s: %s %q: element type %v, want float or float16", what, kind, info.Name, info.Type)
	}
	if spec.timestep && len(p.dims) == 1 && p.dims[0] == 1 {
		p.one = true
		return p, nil
	}
	ok := len(p.dims) == len(spec.dims)
	for i := 0; ok && i < len(p.dims); i++ {
		ok = p.dims[i] < 0 || spec.dims[i] == batchDim || p.dims[i] == spec.dims[i]
	}
	if !ok {
		return p, fmt.Errorf("ort: %s: %s %q: the model's shape %s does not match the expected %s (B: batch)",
			what, kind, info.Name, modelDimsString(p.dims), dimsString(spec.dims))
	}
	return p, nil
}

// modelDims turns an ONNX shape into dims with -1 where dynamic.
func modelDims(ds []onnx.Dim) []int64 {
	d := make([]int64, len(ds))
	for i, x := range ds {
		d[i] = x.Value
		if x.Param != "" || x.Value <= 0 {
			d[i] = -1
		}
	}
	return d
}

// sessionsOpened counts the ONNX Runtime sessions newSession created, so
// that a test can see that each graph is opened once.
var sessionsOpened atomic.Int64

// newSession is the package's only way to create an ONNX Runtime session
// (TestOneSessionPerGraph checks that the sources call no other).
func newSession(path string, inNames, outNames []string, so *onnxruntime.SessionOptions) (*onnxruntime.DynamicAdvancedSession, error) {
	sessionsOpened.Add(1)
	return onnxruntime.NewDynamicAdvancedSession(path, inNames, outNames, so)
}

// openPart opens the graph in path once: its inputs and outputs are read
// from the ONNX file itself (onnx.ReadSignatureFile, which skips the
// weights), checked against the contract, and only then is the one
// session created.
func openPart(what, path string, inSpec, outSpec []portSpec, opts Options) (*part, error) {
	sig, err := onnx.ReadSignatureFile(path)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: read %s: %w", what, path, err)
	}
	ins, outs := sig.Inputs, sig.Outputs
	p := &part{what: what, path: path, cache: map[int]*bound{}}
	// Inputs: by name when the contract names them, else by position.
	if len(ins) != len(inSpec) {
		return nil, fmt.Errorf("ort: %s: %s has %d inputs %s, want %d", what, path, len(ins), names(ins), len(inSpec))
	}
	for i, spec := range inSpec {
		info := ins[i]
		if spec.name != "" {
			j := indexOf(ins, spec.name)
			if j < 0 {
				return nil, fmt.Errorf("ort: %s: %s has no input %q (inputs: %s)", what, path, spec.name, names(ins))
			}
			info = ins[j]
		}
		pt, err := matchPort(what, "input", info, spec)
		if err != nil {
			return nil, err
		}
		p.in = append(p.in, pt)
	}
	if len(outs) != len(outSpec) {
		return nil, fmt.Errorf("ort: %s: %s has %d outputs %s, want %d", what, path, len(outs), names(outs), len(outSpec))
	}
	// Outputs: by position, except that an encoder may list the latent
	// before the embedding (told apart by rank).
	if len(outs) == 2 && len(outs[0].Dims) == len(outSpec[1].dims) && len(outs[1].Dims) == len(outSpec[0].dims) &&
		len(outSpec[0].dims) != len(outSpec[1].dims) {
		outs = []onnx.ValueInfo{outs[1], outs[0]}
	}
	for i, spec := range outSpec {
		pt, err := matchPort(what, "output", outs[i], spec)
		if err != nil {
			return nil, err
		}
		p.out = append(p.out, pt)
	}
	so, err := sessionOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w", what, err)
	}
	defer so.Destroy()
	inNames := make([]string, len(p.in))
	for i, pt := range p.in {
		inNames[i] = pt.name
	}
	outNames := make([]string, len(p.out))
	for i, pt := range p.out {
		outNames[i] = pt.name
	}
	p.sess, err = newSession(path, inNames, outNames, so)
	if err != nil {
		if opts.Provider == plan.ProviderCUDA {
			return nil, fmt.Errorf("ort: %s: open session on %s: %w", what, path, cudaSessionError(err))
		}
		return nil, fmt.Errorf("ort: %s: open session on %s: %w", what, path, err)
	}
	return p, nil
}

func cudaError(err error) error {
	return fmt.Errorf("%s in %s: this ONNX Runtime build is CPU-only "+
		"or cannot load its CUDA provider (libonnxruntime_providers_cuda.so, CUDA, cuDNN); "+
		"use provider: cpu, or run `make ort-gpu` and point --ort-lib or %s at "+
		"third_party/onnxruntime-gpu-1.29.0/libonnxruntime.so: %w", cudaNotAvailable, Library(), EnvLib, err)
}

func sessionOptions(opts Options) (*onnxruntime.SessionOptions, error) {
	so, err := onnxruntime.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	fail := func(err error) (*onnxruntime.SessionOptions, error) {
		so.Destroy()
		return nil, err
	}
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return fail(fmt.Errorf("intra-op threads %d: %w", opts.IntraOpThreads, err))
		}
	}
	if opts.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
			return fail(fmt.Errorf("inter-op threads %d: %w", opts.InterOpThreads, err))
		}
	}
	if opts.Provider == plan.ProviderCUDA {
		if err := appendCUDA(so, opts.CUDADevice); err != nil {
			return fail(err)
		}
	}
	return so, nil
}

func indexOf(infos []onnx.ValueInfo, name string) int {
	for i, in := range infos {
		if in.Name == name {
			return i
		}
	}
	return -1
}

func names(infos []onnx.ValueInfo) string {
	s := "["
	for i, in := range infos {
		if i > 0 {
			s += " "
		}
		s += strconv.Quote(in.Name)
	}
	return s + "]"
}

// concrete returns a port's dims for a call with batch b.
func (pt port) concrete(b int) ([]int64, error) {
	if pt.one {
		return []int64{1}, nil
	}
	d := append([]int64(nil), pt.dims...)
	if len(d) > 0 {
		if d[0] >= 0 && d[0] != int64(b) {
			return nil, fmt.Errorf("%q has a fixed batch of %d, the call has %d", pt.name, d[0], b)
		}
		d[0] = int64(b)
	}
	for _, v := range d {
		if v < 0 {
			return nil, fmt.Errorf("%q has a dynamic dimension other than the batch: %s", pt.name, modelDimsString(pt.dims))
		}
	}
	return d, nil
}

func size(d []int64) int {
	n := 1
	for _, v := range d {
		n *= int(v)
	}
	return n
}

func (p *part) newBound(b int) (*bound, error) {
	bd := &bound{}
	ok := false
	defer func() {
		if !ok {
			bd.destroy()
		}
	}()
	ports := append(append([]port(nil), p.in...), p.out...)
	for i, pt := range ports {
		d, err := pt.concrete(b)
		if err != nil {
			return nil, err
		}
		n := size(d)
		var v onnxruntime.Value
		var f32 []float32
		var f16 []byte
		if pt.fp16 {
			f16 = make([]byte, 2*n)
			v, err = onnxruntime.NewCustomDataTensor(onnxruntime.Shape(d), f16, onnxruntime.TensorElementDataTypeFloat16)
		} else {
			f32 = make([]float32, n)
			var t *onnxruntime.Tensor[float32]
			t, err = onnxruntime.NewTensor(onnxruntime.Shape(d), f32)
			if err == nil {
				v = t
			}
		}
		if err != nil {
			return nil, fmt.Errorf("tensor %q %v: %w", pt.name, d, err)
		}
		bd.f32 = append(bd.f32, f32)
		bd.f16 = append(bd.f16, f16)
		if i < len(p.in) {
			bd.in = append(bd.in, v)
			bd.inN = append(bd.inN, n)
		} else {
			bd.out = append(bd.out, v)
			bd.outN = append(bd.outN, n)
		}
	}
	ok = true
	return bd, nil
}

func (bd *bound) destroy() error {
	var errs []error
	for _, v := range append(append([]onnxruntime.Value(nil), bd.in...), bd.out...) {
		if v != nil {
			errs = append(errs, v.Destroy())
		}
	}
	return errors.Join(errs...)
}

func (p *part) bound(b int) (*bound, error) {
	if bd, ok := p.cache[b]; ok {
		return bd, nil
	}
	bd, err := p.newBound(b)
	if err != nil {
		return nil, err
	}
	if len(p.order) >= maxCached {
		old := p.order[0]
		p.order = p.order[1:]
		p.cache[old].destroy()
		delete(p.cache, old)
	}
	p.cache[b] = bd
	p.order = append(p.order, b)
	return bd, nil
}

// run copies ins into the input tensors of batch b, runs the session and
// copies the outputs into outs.
func (p *part) run(b int, ins, outs [][]float32) error {
	bd, err := p.bound(b)
	if err != nil {
		return fmt.Errorf("ort: %s: %w", p.what, err)
	}
	for i, src := range ins {
		pt := p.in[i]
		want := bd.inN[i]
		if pt.one {
			want = b
		}
		if len(src) != want {
			return fmt.Errorf("ort: %s: input %q: %d values, want %d for batch %d", p.what, pt.name, len(src), want, b)
		}
		if pt.one {
			for _, v := range src[1:] {
				if v != src[0] {
					return fmt.Errorf("ort: %s: input %q takes one value for the whole batch, the call has %v", p.what, pt.name, src)
				}
			}
			src = src[:1]
		}
		if pt.fp16 {
			toFloat16(bd.f16[i], src)
		} else {
			copy(bd.f32[i], src)
		}
	}
	for i, dst := range outs {
		if len(dst) != bd.outN[i] {
			return fmt.Errorf("ort: %s: output %q: buffer of %d values, want %d for batch %d", p.what, p.out[i].name, len(dst), bd.outN[i], b)
		}
	}
	if err := p.sess.Run(bd.in, bd.out); err != nil {
		return fmt.Errorf("ort: %s: run (batch %d): %w", p.what, b, err)
	}
	for i, dst := range outs {
		k := len(p.in) + i
		if p.out[i].fp16 {
			fromFloat16(dst, bd.f16[k])
		} else {
			copy(dst, bd.f32[k])
		}
	}
	return nil
}

func (p *part) close() error {
	var errs []error
	for _, b := range p.order {
		errs = append(errs, p.cache[b].destroy())
	}
	p.cache, p.order = nil, nil
	if p.sess != nil {
		errs = append(errs, p.sess.Destroy())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ort: %s: close: %w", p.what, err)
	}
	return nil
}

func toFloat16(dst []byte, src []float32) {
	for i, v := range src {
		h := onnx.Float32ToFloat16(v)
		dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
	}
}

func fromFloat16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = onnx.Float16ToFloat32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}
