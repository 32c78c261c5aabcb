package study

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
)

func TestParseLayoutKinds(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []LayoutKind
		err  string
	}{
		{"pipeline,dp,hybrid", []LayoutKind{LayoutPipeline, LayoutDataParallel, LayoutHybrid}, ""},
		{"hybrid data-parallel", []LayoutKind{LayoutHybrid, LayoutDataParallel}, ""},
		{"data_parallel", []LayoutKind{LayoutDataParallel}, ""},
		{"pipeline,ring", nil, `"ring" is not a layout`},
		{" , ", nil, "no layout given"},
	} {
		got, err := ParseLayoutKinds(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "study: ") {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
}

func TestLayoutKindReplicas(t *testing.T) {
	for _, c := range []struct {
		k    LayoutKind
		n    int
		want []int
	}{
		{LayoutPipeline, 6, []int{1}},
		{LayoutDataParallel, 6, []int{6}},
		{LayoutHybrid, 12, []int{2, 3, 4, 6}},
		{LayoutHybrid, 7, nil},
		{LayoutHybrid, 1, nil},
	} {
		got := c.k.Replicas(c.n)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s on %d: %v, want %v", c.k, c.n, got, c.want)
		}
		for _, r := range got {
			if c.n%r != 0 {
				t.Errorf("%s on %d: %d pipelines do not divide the devices", c.k, c.n, r)
			}
		}
	}
}

func TestDefaultCounts(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []int
	}{{1, []int{1, 2, 4, 8}}, {2, []int{1, 2}}, {7, []int{1, 2, 4, 7}}, {8, []int{1, 2, 4, 8}}} {
		if got := DefaultCounts(c.n); !slices.Equal(got, c.want) {
			t.Errorf("DefaultCounts(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestSweep(t *testing.T) {
	p := withSamples(t, load(t, "../configs/svd-14f-320x576-1xa5000.yaml"), 4)
	res, err := Sweep(p, []int{1, 4, 40}, []LayoutKind{LayoutPipeline, LayoutDataParallel, LayoutHybrid})
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		k       LayoutKind
		n, r, s int
	}
	var got []shape
	for _, row := range res.Rows {
		got = append(got, shape{row.Kind, row.Devices, row.Replicas, row.Stages})
	}
	want := []shape{
		{LayoutPipeline, 1, 1, 1}, {LayoutDataParallel, 1, 1, 1},
		{LayoutPipeline, 4, 1, 4}, {LayoutDataParallel, 4, 4, 1}, {LayoutHybrid, 4, 2, 2},
		{LayoutPipeline, 40, 1, 40}, {LayoutDataParallel, 40, 40, 1},
		{LayoutHybrid, 40, 2, 20}, {LayoutHybrid, 40, 4, 10}, {LayoutHybrid, 40, 5, 8}, {LayoutHybrid, 40, 8, 5},
		{LayoutHybrid, 40, 10, 4}, {LayoutHybrid, 40, 20, 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}
	rows := res.Rows
	// One device is one layout, however it is named.
	if rows[0].Metrics == nil || !reflect.DeepEqual(rows[0].Metrics, rows[1].Metrics) {
		t.Errorf("1 device: pipeline %+v, data parallel %+v", rows[0].Metrics, rows[1].Metrics)
	}
	// Each row is the plan resized and simulated.
	for _, row := range rows[2:5] {
		q := p.Clone()
		if err := q.Apply(plan.Overrides{Devices: &row.Devices, Replicas: &row.Replicas}); err != nil {
			t.Fatal(err)
		}
		run, err := Simulate(q, false)
		if err != nil || row.Err != nil || !reflect.DeepEqual(*row.Metrics, run.Metrics) {
			t.Errorf("%s on %d: row %v %+v, simulated %v %+v", row.Kind, row.Devices, row.Err, row.Metrics, err, run)
		}
	}
	// 28 steps cannot fill 40 stages: a row with its reason, not a failure.
	if r := rows[5]; r.Metrics != nil || r.Err == nil || !strings.Contains(r.Err.Error(), "cannot fill 40 stages") {
		t.Errorf("40 stages: %+v", r)
	}
	if len(res.Notes) != 0 || res.Plan.Name != p.Name {
		t.Errorf("notes %v, plan %s", res.Notes, res.Plan.Name)
	}
}

// A plan with an explicit layout is swept with even splits, and says so;
// the caller's plan is left as it was.
func TestSweepExplicitLayout(t *testing.T) {
	p := withSamples(t, load(t, ref7), 3)
	p.Layout.Assignment = plan.AssignExplicit // as if its stages were listed
	res, err := Sweep(p, []int{2}, []LayoutKind{LayoutPipeline})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "explicit layout") {
		t.Errorf("notes %q", res.Notes)
	}
	if res.Rows[0].Err != nil || res.Plan.Layout.Assignment != plan.AssignEven {
		t.Errorf("row %+v, swept assignment %q", res.Rows[0], res.Plan.Layout.Assignment)
	}
	if p.Layout.Assignment != plan.AssignExplicit {
		t.Errorf("the caller's plan changed: assignment %q", p.Layout.Assignment)
	}
}

func TestSweepErrors(t *testing.T) {
	if _, err := Sweep(load(t, "../configs/tiny-cpu-2stage.yaml"), []int{1}, []LayoutKind{LayoutPipeline}); err == nil {
		t.Error("swept a plan without costs")
	}
	if _, err := Sweep(load(t, ref7), nil, []LayoutKind{LayoutPipeline}); err == nil {
		t.Error("swept no device counts")
	}
}

func TestSweepRowSeries(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range []SweepRow{
		{Kind: LayoutPipeline, Replicas: 1}, {Kind: LayoutDataParallel, Replicas: 4},
		{Kind: LayoutHybrid, Replicas: 2}, {Kind: LayoutHybrid, Replicas: 3},
	} {
		if s := r.Series(); s == "" || seen[s] {
			t.Errorf("%s × %d: series %q empty or taken", r.Kind, r.Replicas, s)
		}
		seen[r.Series()] = true
	}
}
