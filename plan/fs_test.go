package plan

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadFSMatchesLoad(t *testing.T) {
	fsys := os.DirFS("../configs")
	got, err := LoadFS(fsys, "svd-14f-320x576-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Load("../configs/svd-14f-320x576-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got.Profile == nil || got.Profile.File != "profiles/a5000-svd-14f-320x576.yaml" {
		t.Fatalf("profile not loaded from the fs: %+v", got.Profile)
	}
	if got.Name != want.Name || len(got.Pipelines) != len(want.Pipelines) {
		t.Fatalf("LoadFS %s %d pipelines, Load %s %d", got.Name, len(got.Pipelines), want.Name, len(want.Pipelines))
	}
	for i, st := range got.Pipelines[0].Stages {
		w := want.Pipelines[0].Stages[i]
		a, _ := got.StageNS(st)
		b, _ := want.StageNS(w)
		if st != w || a != b {
			t.Errorf("stage %d: LoadFS %+v (%d ns), Load %+v (%d ns)", i, st, a, w, b)
		}
	}
}

func TestLoadFSErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"p.yaml":       {Data: []byte("name: x\nbogus: 1\n")},
		"nocosts.yaml": {Data: []byte(strings.Replace(mustRead(t, "../configs/svd-14f-320x576-1xa5000.yaml"), "profiles/a5000-svd-14f-320x576.yaml", "missing.yaml", 1))},
	}
	_, err := LoadFS(fsys, "p.yaml")
	var list *Errors
	if !errors.As(err, &list) || !strings.Contains(err.Error(), "p.yaml:2:1: bogus") {
		t.Errorf("unknown field: got %v", err)
	}
	if _, err := LoadFS(fsys, "nope.yaml"); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("missing file: got %v", err)
	}
	if _, err := LoadFS(fsys, "nocosts.yaml"); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing profile: got %v", err)
	}
}

func TestSetProfile(t *testing.T) {
	p, err := Load("../configs/tiny-cpu-2stage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Profile != nil {
		t.Fatal("tiny plan has a profile; the test expects none")
	}
	// A profile for another model shape is rejected, and the plan is unchanged.
	prof, err := LoadProfile("../configs/profiles/a5000-svd-14f-320x576.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetProfile("x.yaml", prof); err == nil {
		t.Error("svd profile accepted for the tiny cpu plan")
	}
	if p.Profile != nil || p.Costs != "" {
		t.Error("failed SetProfile changed the plan")
	}
	q, err := Load("../configs/svd-14f-320x576-4xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.SetProfile("other.yaml", prof); err != nil {
		t.Fatal(err)
	}
	if q.Costs != "other.yaml" || q.Profile != prof || len(q.Pipelines) != 1 {
		t.Errorf("SetProfile: costs %q, profile %p, %d pipelines", q.Costs, q.Profile, len(q.Pipelines))
	}
	if err := q.SetProfile("", nil); err == nil {
		t.Error("nil profile accepted")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
