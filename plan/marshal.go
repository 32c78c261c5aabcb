package plan

import (
	"fmt"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Marshal writes the plan as a YAML plan file that Load reads back to the
// same plan: every default written out, and the resolved layout as an
// explicit one (layout.pipelines with each stage's device and step
// range), so that a layout chosen in code (a search's winner) runs
// unchanged in vdsim and vdexec. Paths (costs, model files) are rewritten
// relative to dir, the folder the file will be written to; the costs
// point at the file the profile was read from (Profile.File).
func (p *Plan) Marshal(dir string) ([]byte, error) {
	rebase := func(path string) (string, error) {
		if path == "" {
			return "", nil
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		d, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		if r, err := filepath.Rel(d, abs); err == nil {
			return filepath.ToSlash(r), nil
		}
		return abs, nil
	}
	f := planFile{Name: p.Name, Model: p.Model, Sampler: p.Sampler, Devices: p.Devices,
		Links: p.Links, Transport: p.Transport, Workload: p.Workload}
	var err error
	for _, x := range []*string{&f.Model.ONNX.UNet, &f.Model.ONNX.Encoder, &f.Model.ONNX.Decoder} {
		if *x, err = rebase(p.Path(*x)); err != nil {
			return nil, fmt.Errorf("plan: marshal %s: %w", p.Name, err)
		}
	}
	costs := p.Path(p.Costs)
	if p.Profile != nil && p.Profile.File != "" && p.Costs != "" {
		costs = p.Profile.File // where it was read from (a --costs flag's path is not relative to the plan)
	}
	if f.Costs, err = rebase(costs); err != nil {
		return nil, fmt.Errorf("plan: marshal %s: %w", p.Name, err)
	}
	l := p.Layout
	f.Layout = layoutFile{Replicas: len(p.Pipelines), Assignment: AssignExplicit, EncodeOn: l.EncodeOn, DecodeOn: l.DecodeOn,
		MicroBatch: l.MicroBatch, Handoff: l.Handoff, Dispatch: l.Dispatch}
	for _, pl := range p.Pipelines {
		var ps PipelineSpec
		for _, st := range pl.Stages {
			ps.Stages = append(ps.Stages, StageSpec{Device: st.Device, Steps: [2]StepIndex{st.First, st.Last}})
		}
		f.Layout.Pipelines = append(f.Layout.Pipelines, ps)
	}
	b, err := yaml.Marshal(&f)
	if err != nil {
		return nil, fmt.Errorf("plan: marshal %s: %w", p.Name, err)
	}
	return b, nil
}

// planFile is the YAML form Marshal writes: Plan's fields as a file has
// them, the layout explicit.
type planFile struct {
	Name      string     `yaml:"name"`
	Model     Model      `yaml:"model"`
	Sampler   Sampler    `yaml:"sampler"`
	Devices   Devices    `yaml:"devices"`
	Layout    layoutFile `yaml:"layout"`
	Links     Links      `yaml:"links"`
	Transport Transport  `yaml:"transport"`
	Workload  Workload   `yaml:"workload"`
	Costs     string     `yaml:"costs,omitempty"`
}

type layoutFile struct {
	Replicas   int            `yaml:"replicas"`
	Assignment Assignment     `yaml:"assignment"`
	Pipelines  []PipelineSpec `yaml:"pipelines"`
	EncodeOn   End            `yaml:"encode_on"`
	DecodeOn   End            `yaml:"decode_on"`
	MicroBatch int            `yaml:"micro_batch"`
	Handoff    Handoff        `yaml:"handoff"`
	Dispatch   Dispatch       `yaml:"dispatch"`
}
