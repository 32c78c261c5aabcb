package study

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
)

const ref7 = "../configs/svd-14f-320x576-7xa5000.yaml"

func load(t *testing.T, path string) *plan.Plan {
	t.Helper()
	p, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func withSamples(t *testing.T, p *plan.Plan, n int) *plan.Plan {
	t.Helper()
	q := p.Clone()
	if err := q.Apply(plan.Overrides{Samples: &n}); err != nil {
		t.Fatal(err)
	}
	return q
}

// The streamed metrics are those of the full timeline, traced or not: one
// metrics implementation whichever way the spans arrive.
func TestSimulateStreamsTheTimelineMetrics(t *testing.T) {
	for _, name := range []string{"blocking-3stage", "microbatch-poisson-replicas", "uneven-cross-socket"} {
		p := load(t, simTestdata+name+".yaml")
		traced, err := Simulate(p, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		streamed, err := Simulate(p, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if streamed.Result.Timeline != nil || traced.Result.Timeline == nil {
			t.Fatalf("%s: trace kept %v, untraced kept %v", name, traced.Result.Timeline != nil, streamed.Result.Timeline != nil)
		}
		want := traced.Result.Timeline.Metrics()
		for _, got := range []*Run{traced, streamed} {
			if !reflect.DeepEqual(got.Metrics, want) {
				t.Errorf("%s: streamed metrics differ from the timeline's:\n got %+v\nwant %+v", name, got.Metrics, want)
			}
		}
		if s := streamed.Summary(); s.Meta.Plan != p.Name || s.Metrics.Samples != p.Workload.Samples {
			t.Errorf("%s: summary %+v", name, s.Meta)
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	noCosts := load(t, "../configs/tiny-cpu-2stage.yaml")
	tooSmall := load(t, ref7)
	for i := range tooSmall.Devices {
		tooSmall.Devices[i].MemoryGB = 1 // changed after loading: only the simulator's check sees it
	}
	for _, c := range []struct {
		p    *plan.Plan
		want string
	}{
		{noCosts, "tiny-cpu-2stage"},
		{tooSmall, "lower the micro-batch"},
	} {
		if _, err := Simulate(c.p, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.p.Name, err, c.want)
		}
	}
	if _, err := Simulate(noCosts, false); !errors.Is(err, ErrNoProfile) {
		t.Errorf("no costs: %v does not wrap ErrNoProfile", err)
	}
	var me *sim.MemoryError
	if _, err := Simulate(tooSmall, false); !errors.As(err, &me) {
		t.Errorf("out of memory: %v is not a *sim.MemoryError", err)
	}
}

// The baseline is the plan's own data-parallel form, simulated.
func TestBaseline(t *testing.T) {
	p := withSamples(t, load(t, ref7), 9)
	run, why := Baseline(p, false)
	if run == nil {
		t.Fatalf("no baseline: %s", why)
	}
	q, err := p.DataParallel()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Simulate(q, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(run.Metrics, want.Metrics) || !IsDataParallel(run.Plan) || len(run.Plan.Pipelines) != len(p.Devices) {
		t.Errorf("baseline %d pipelines, metrics %+v\nwant %+v", len(run.Plan.Pipelines), run.Metrics, want.Metrics)
	}
	if run.Metrics.Samples != 9 {
		t.Errorf("baseline of %d samples, want the plan's 9", run.Metrics.Samples)
	}

	// Devices just large enough for the pipeline's largest stage: a whole
	// sample (encoder, UNet and decoder on one device) does not fit.
	tight := load(t, ref7)
	pipe, err := Simulate(tight, false)
	if err != nil {
		t.Fatal(err)
	}
	need := 0.0
	for _, m := range pipe.Result.Memory {
		need = max(need, m.NeedGB)
	}
	for i := range tight.Devices {
		tight.Devices[i].MemoryGB = need
	}
	for _, c := range []struct {
		name string
		p    *plan.Plan
		want string
	}{
		{"data parallel", load(t, "../configs/svd-14f-320x576-7xa5000-dp.yaml"), "already data parallel"},
		{"no costs", load(t, "../configs/tiny-cpu-2stage.yaml"), "no cost profile"},
		{"does not fit", tight, "cannot run on these devices"},
	} {
		run, why := Baseline(c.p, false)
		if run != nil || !strings.Contains(why, c.want) || strings.Contains(why, "\n") {
			t.Errorf("%s: baseline %v, why %q, want nil and %q on one line", c.name, run != nil, why, c.want)
		}
	}
}

// TestLayoutLabel names layouts by their resolved shape.
func TestLayoutLabel(t *testing.T) {
	p, err := plan.Load("../configs/svd-14f-320x576-4xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dp, err := p.DataParallel()
	if err != nil {
		t.Fatal(err)
	}
	hy := p.Clone()
	r := 2
	if err := hy.Apply(plan.Overrides{Replicas: &r}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    *plan.Plan
		want string
	}{{p, "pipeline 1×4"}, {dp, "data parallel 4×1"}, {hy, "hybrid 2×2"}} {
		if got := LayoutLabel(c.p); got != c.want {
			t.Errorf("label %q, want %q", got, c.want)
		}
	}
}
