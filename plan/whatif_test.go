package plan

import (
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestApply(t *testing.T) {
	p, err := Load("../configs/svd-14f-320x576-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	orig := p.Clone()
	err = p.Apply(Overrides{Samples: ptr(3), Steps: ptr(25), Devices: ptr(4), MicroBatch: ptr(2), Seed: ptr(uint64(9))})
	if err != nil {
		t.Fatal(err)
	}
	if p.Workload.Samples != 3 || p.Sampler.Steps != 25 || len(p.Devices) != 4 || p.Layout.MicroBatch != 2 || p.Workload.Seed != 9 {
		t.Errorf("overrides not applied: samples %d steps %d devices %d mb %d seed %d", p.Workload.Samples, p.Sampler.Steps, len(p.Devices), p.Layout.MicroBatch, p.Workload.Seed)
	}
	// 25 steps on 4 stages: 7/6/6/6; the link override naming gpu4 is gone.
	if got := []int{p.Pipelines[0].Stages[0].Steps(), p.Pipelines[0].Stages[3].Steps()}; len(p.Pipelines[0].Stages) != 4 || !equalInts(got, []int{7, 6}) {
		t.Errorf("re-resolved stages %+v", p.Pipelines[0].Stages)
	}
	if len(p.Links.Overrides) != 0 {
		t.Errorf("override naming a removed device kept: %+v", p.Links.Overrides)
	}
	checkCovers(t, p)
	if len(orig.Devices) != 7 || orig.Sampler.Steps != 28 || len(orig.Links.Overrides) != 1 {
		t.Errorf("Apply changed the clone taken before it")
	}

	// Growing copies the first device and continues names and cuda indices.
	if err := p.Apply(Overrides{Devices: ptr(9)}); err != nil {
		t.Fatal(err)
	}
	if d := p.Devices[8]; d.Name != "gpu8" || d.Kind != "a5000" || d.Index != 8 || d.MemoryGB != 24 {
		t.Errorf("new device %+v", d)
	}

	// The latent shape B C F H W sets micro-batch, frames and latent; the
	// profile then no longer matches, and the plan is left as it was.
	before := p.Clone()
	err = p.Apply(Overrides{LatentShape: &[5]int{1, 4, 25, 72, 128}})
	if err == nil || !strings.Contains(err.Error(), "25 frames") {
		t.Errorf("latent shape against a 14-frame profile: got %v", err)
	}
	if p.Model.Frames != before.Model.Frames || len(p.Pipelines) != len(before.Pipelines) {
		t.Errorf("failed Apply changed the plan")
	}
}

func TestApplyErrors(t *testing.T) {
	p, err := Parse([]byte(minimal+"devices: {count: 3, kind: a5000}\nlayout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n    - {device: gpu1, steps: [10, 27]}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    Overrides
		flag string // the flag the message starts with
		want string
	}{
		{Overrides{Samples: ptr(0)}, "--samples 0", "must be at least 1"},
		{Overrides{Samples: ptr(1 << 31)}, "--samples 2147483648", "at most 1073741824"},
		{Overrides{Steps: ptr(30)}, "--steps 30", "explicit layout"},
		{Overrides{Devices: ptr(2)}, "--devices 2", "explicit layout"},
		{Overrides{Replicas: ptr(2)}, "--replicas 2", "explicit layout"},
		{Overrides{MicroBatch: ptr(-1)}, "--micro-batch -1", "at least 1"},
		{Overrides{LatentShape: &[5]int{1, 0, 1, 1, 1}}, `--latent-shape "1 0 1 1 1"`, "from 1 to 4096"},
	} {
		err := p.Apply(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "plan: "+tc.flag+": ") {
			t.Errorf("%+v: got %v, want %q: ...%q", tc.o, err, tc.flag, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "x.yaml") {
			t.Errorf("%+v: %v names the plan file; the value came from a flag", tc.o, err)
		}
	}
	het, err := Parse([]byte(minimal+"devices:\n  - {kind: a5000}\n  - {kind: a6000}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := het.Apply(Overrides{Devices: ptr(4)}); err == nil || !strings.Contains(err.Error(), "alike") {
		t.Errorf("resizing unlike devices: got %v", err)
	}
	// The replica count that does not divide the devices came from the
	// flag: the message names it, not the file's layout line.
	if err := het.Apply(Overrides{Replicas: ptr(3)}); err == nil || !strings.Contains(err.Error(), "do not split") || !strings.HasPrefix(err.Error(), "plan: --replicas 3: layout.replicas: ") {
		t.Errorf("3 replicas of 2 devices: got %v", err)
	}
}

func TestDataParallel(t *testing.T) {
	p, err := Load("../configs/svd-14f-320x576-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dp, err := p.DataParallel()
	if err != nil {
		t.Fatal(err)
	}
	if len(dp.Pipelines) != 7 || dp.Name != p.Name+"-dp" {
		t.Fatalf("%d pipelines named %s", len(dp.Pipelines), dp.Name)
	}
	for i, pl := range dp.Pipelines {
		st := pl.Stages
		if len(st) != 1 || st[0].DevIdx != i || st[0].First != 0 || st[0].Last != 27 || !st[0].Encode || !st[0].Decode {
			t.Errorf("pipeline %d: %+v", i, st)
		}
	}
	if len(p.Pipelines) != 1 {
		t.Errorf("DataParallel changed the original plan")
	}
	// A data-parallel plan stays data parallel when devices change.
	if err := dp.Apply(Overrides{Devices: ptr(3)}); err != nil || len(dp.Pipelines) != 3 {
		t.Errorf("dp with 3 devices: %v, %d pipelines", err, len(dp.Pipelines))
	}
	// An explicit plan becomes data parallel too.
	ex, err := Parse([]byte(minimal+"devices: {count: 2, kind: a5000}\nlayout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n    - {device: gpu1, steps: [10, 27]}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if dp, err := ex.DataParallel(); err != nil || len(dp.Pipelines) != 2 || dp.Pipelines[1].Stages[0].Steps() != 28 {
		t.Errorf("explicit plan as data parallel: %v", err)
	}
}

func TestClone(t *testing.T) {
	p, err := Load("../configs/svdxt-25f-576x1024-cfg-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	q := p.Clone()
	q.Devices[0].Name = "changed"
	q.Model.CFG.Max = 9
	q.Pipelines[0].Stages[0].First = 5
	q.Links.Overrides[0].Kind = "x"
	if p.Devices[0].Name != "gpu0" || p.Model.CFG.Max != 3 || p.Pipelines[0].Stages[0].First != 0 || p.Links.Overrides[0].Kind != "cross-socket" {
		t.Errorf("changing the clone changed the original")
	}
	if q.Profile != p.Profile {
		t.Errorf("the profile should be shared")
	}
}
