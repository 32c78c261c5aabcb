package exec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/vdpp/vdpp/internal/atomicfile"
	"github.com/vdpp/vdpp/models/onnx"
	"github.com/vdpp/vdpp/plan"
)

// ModelFile is one model file that the stages of a plan open.
type ModelFile struct {
	// Field is the plan field that names it ("model.onnx.unet").
	Field string
	// Path is the file as the plan resolves it (relative paths from the
	// plan file's folder); "" when the plan names none.
	Path string
}

// ModelFiles lists the model files the plan's stages open, each once: the
// UNet (every stage), the encoder (the stages that encode) and the
// decoder (the stages that decode).
func ModelFiles(p *plan.Plan) []ModelFile {
	enc, dec := false, false
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			enc, dec = enc || st.Encode, dec || st.Decode
		}
	}
	file := func(field, rel string) ModelFile {
		f := ModelFile{Field: field}
		if rel != "" {
			f.Path = p.Path(rel)
		}
		return f
	}
	out := []ModelFile{file("model.onnx.unet", p.Model.ONNX.UNet)}
	if enc {
		out = append(out, file("model.onnx.encoder", p.Model.ONNX.Encoder))
	}
	if dec {
		out = append(out, file("model.onnx.decoder", p.Model.ONNX.Decoder))
	}
	return out
}

// HintFixPath is the advice CheckModelFiles gives with a missing file
// unless FileCheck.Hint says otherwise.
const HintFixPath = "fix the path in the plan (relative to the plan file's folder)"

// FileCheck says what CheckModelFiles requires.
type FileCheck struct {
	// Required: a file that the stages open must be named by the plan (a
	// backend that opens ONNX files needs it); otherwise only the files the
	// plan names are checked (a fake model needs none).
	Required bool
	// Hint is the advice given with a missing file (default HintFixPath).
	Hint string
}

// CheckModelFiles checks that the model files the plan's stages open
// (ModelFiles) exist: the one check of model paths, for runs, workers,
// profiles and vdexec validate. Each problem names the plan file (or the
// plan, when it has no file), the field and the path; all are returned
// together.
func CheckModelFiles(p *plan.Plan, c FileCheck) error {
	hint := c.Hint
	if hint == "" {
		hint = HintFixPath
	}
	where := planWhere(p)
	var errs []error
	for _, f := range ModelFiles(p) {
		if f.Path == "" {
			if c.Required {
				errs = append(errs, fmt.Errorf("%s: %s is not set: the executor needs the model's ONNX file there (paths are relative to the plan file)", where, f.Field))
			}
			continue
		}
		fi, err := os.Stat(f.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s: %s: model file %q not found: %s", where, f.Field, f.Path, hint))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %s: model file %q: %w", where, f.Field, f.Path, atomicfile.Reason(err)))
		case !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("%s: %s: model file %q is %s, not an ONNX file: %s", where, f.Field, f.Path, atomicfile.Kind(fi.Mode()), hint))
		}
	}
	return errors.Join(errs...)
}

// planWhere names the plan in messages: its file, or "plan NAME" for one
// built in memory.
func planWhere(p *plan.Plan) string {
	if p.File != "" {
		return p.File
	}
	return "plan " + p.Name
}

// dtypeElem is the ONNX element type of each plan model.dtype.
var dtypeElem = map[string]onnx.DataType{"fp32": onnx.Float, "fp16": onnx.Float16}

// CheckModelTypes checks that every input and output of the model files
// the plan's stages open (ModelFiles, which must exist) has the element
// type of the plan's model.dtype (fp32: float, fp16: float16), reading
// only the graphs' signatures. Each mismatch names the plan file, the
// field, the file, the input or output, the type found and the type
// wanted; all are returned together.
func CheckModelTypes(p *plan.Plan) error {
	want, ok := dtypeElem[p.Model.Dtype]
	if !ok {
		return nil // the plan's own validation names a bad dtype
	}
	where := planWhere(p)
	var errs []error
	for _, f := range ModelFiles(p) {
		if f.Path == "" {
			continue
		}
		sig, err := onnx.ReadSignatureFile(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: read the model's inputs and outputs: %w", where, f.Field, err))
			continue
		}
		var bad []string
		check := func(kind string, vs []onnx.ValueInfo) {
			for _, v := range vs {
				if v.Type != want {
					bad = append(bad, fmt.Sprintf("%s %q is %s", kind, v.Name, v.Type))
				}
			}
		}
		check("input", sig.Inputs)
		check("output", sig.Outputs)
		if len(bad) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s: graph %q: %s; model.dtype %s wants %s: set model.dtype to the model's type, or export the model in %s",
				where, f.Field, f.Path, strings.Join(bad, ", "), p.Model.Dtype, want, p.Model.Dtype))
		}
	}
	return errors.Join(errs...)
}
