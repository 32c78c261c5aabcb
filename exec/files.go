package exec

import (
	"errors"
	"fmt"
	"os"

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
	where := p.File
	if where == "" {
		where = "plan " + p.Name
	}
	var errs []error
	for _, f := range ModelFiles(p) {
		if f.Path == "" {
			if c.Required {
				errs = append(errs, fmt.Errorf("%s: %s is not set: the executor needs the model's ONNX file there (paths are relative to the plan file)", where, f.Field))
			}
			continue
		}
		if _, err := os.Stat(f.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: model file %s not found: %s", where, f.Field, f.Path, hint))
		}
	}
	return errors.Join(errs...)
}
