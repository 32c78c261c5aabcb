package plan

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMarshalRoundTrip: every committed plan, and one whose layout was set
// in code, written with Marshal to another folder and loaded back, is the
// same plan with the same layout and stage times.
func TestMarshalRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no plans in configs/")
	}
	for _, f := range files {
		p, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, p)
	}
	p, err := Load("../configs/svd-14f-320x576-4xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pl := p.BuildPipeline(0, []int{3, 1, 2}, []int{10, 10, 8})
	if err := p.UsePipelines([]Pipeline{pl, p.BuildPipeline(1, []int{0}, []int{28})}); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p)
}

func roundTrip(t *testing.T, p *Plan) {
	t.Helper()
	dir := t.TempDir()
	b, err := p.Marshal(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := Load(path)
	if err != nil {
		t.Fatalf("%s: written plan does not load: %v\n%s", p.Name, err, b)
	}
	if !reflect.DeepEqual(q.Pipelines, p.Pipelines) || !reflect.DeepEqual(q.Devices, p.Devices) ||
		q.Layout.MicroBatch != p.Layout.MicroBatch || q.Layout.Handoff != p.Layout.Handoff || q.Workload != p.Workload ||
		q.Model.Frames != p.Model.Frames || q.Transport != p.Transport {
		t.Errorf("%s: loaded back differently:\n%s", p.Name, b)
	}
	if (p.Profile == nil) != (q.Profile == nil) {
		t.Fatalf("%s: profile lost", p.Name)
	}
	for i, pl := range p.Pipelines {
		for j := range pl.Stages {
			a, _ := p.PipelineStageNS(pl, j, p.Layout.MicroBatch)
			b, _ := q.PipelineStageNS(q.Pipelines[i], j, q.Layout.MicroBatch)
			if a != b {
				t.Errorf("%s: pipeline %d stage %d: %d ns, loaded back %d", p.Name, i, j, a, b)
			}
		}
	}
}
