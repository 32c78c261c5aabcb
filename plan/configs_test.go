package plan

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigsLoad loads every plan and profile in configs/.
func TestConfigsLoad(t *testing.T) {
	plans, _ := filepath.Glob("../configs/*.yaml")
	profiles, _ := filepath.Glob("../configs/profiles/*.yaml")
	if len(plans) < 7 || len(profiles) < 3 {
		t.Fatalf("found %d plans and %d profiles in configs/, want at least 7 and 3", len(plans), len(profiles))
	}
	for _, f := range plans {
		p, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(p.Pipelines) == 0 {
			t.Errorf("%s: no pipelines resolved", f)
		}
		checkCovers(t, p)
		var b strings.Builder
		p.Describe(&b)
		if !strings.Contains(b.String(), p.Name) {
			t.Errorf("%s: Describe does not name the plan:\n%s", f, b.String())
		}
	}
	for _, f := range profiles {
		prof, err := LoadProfile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if prof.Provenance.Source != "publication" {
			t.Errorf("%s: source %q, want publication (these are published numbers)", f, prof.Provenance.Source)
		}
	}
}

// checkCovers checks that every pipeline runs every step exactly once, in
// order, with encode and decode marked once each.
func checkCovers(t *testing.T, p *Plan) {
	t.Helper()
	used := map[int]bool{}
	for _, pl := range p.Pipelines {
		next := StepIndex(0)
		enc, dec := 0, 0
		for _, st := range pl.Stages {
			if st.First != next || st.Last < st.First {
				t.Errorf("%s: pipeline %d stage %d runs %d..%d, want to start at %d", p.Name, pl.Index, st.Index, st.First, st.Last, next)
			}
			next = st.Last + 1
			if used[st.DevIdx] {
				t.Errorf("%s: device %s in two stages", p.Name, st.Device)
			}
			used[st.DevIdx] = true
			if p.Devices[st.DevIdx].Name != st.Device {
				t.Errorf("%s: stage device %s but DevIdx %d is %s", p.Name, st.Device, st.DevIdx, p.Devices[st.DevIdx].Name)
			}
			if st.Encode {
				enc++
			}
			if st.Decode {
				dec++
			}
		}
		if int(next) != p.Sampler.Steps {
			t.Errorf("%s: pipeline %d ends at step %d, want %d", p.Name, pl.Index, next-1, p.Sampler.Steps-1)
		}
		if enc != 1 || dec != 1 {
			t.Errorf("%s: pipeline %d has %d encode and %d decode stages, want 1 each", p.Name, pl.Index, enc, dec)
		}
	}
}

// TestReferenceConfigs checks what the reference plans are meant to say.
func TestReferenceConfigs(t *testing.T) {
	for _, tc := range []struct {
		file                   string
		pipelines, stages      int
		frames, height, width  int
		steps                  int
		cfg                    bool
		devices, samples, numa int // numa: devices on node 1
	}{
		{"svd-14f-320x576-1xa5000.yaml", 1, 1, 14, 40, 72, 28, false, 1, 10, 0},
		{"svd-14f-320x576-2xa5000.yaml", 1, 2, 14, 40, 72, 28, false, 2, 10, 0},
		{"svd-14f-320x576-4xa5000.yaml", 1, 4, 14, 40, 72, 28, false, 4, 10, 0},
		{"svd-14f-320x576-7xa5000.yaml", 1, 7, 14, 40, 72, 28, false, 7, 10, 3},
		{"svd-14f-320x576-7xa5000-dp.yaml", 7, 1, 14, 40, 72, 28, false, 7, 10, 3},
		{"svdxt-25f-576x1024-cfg-7xa5000.yaml", 1, 7, 25, 72, 128, 25, true, 7, 10, 3},
		{"tiny-cpu-2stage.yaml", 1, 2, 8, 16, 16, 28, false, 2, 12, 0},
	} {
		p, err := Load(filepath.Join("..", "configs", tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		numa := 0
		for _, d := range p.Devices {
			numa += d.NUMA
		}
		if len(p.Pipelines) != tc.pipelines || len(p.Pipelines[0].Stages) != tc.stages ||
			p.Model.Frames != tc.frames || p.Model.Latent.Height != tc.height || p.Model.Latent.Width != tc.width ||
			p.Sampler.Steps != tc.steps || (p.Model.CFG != nil) != tc.cfg || len(p.Devices) != tc.devices ||
			p.Workload.Samples != tc.samples || numa != tc.numa {
			t.Errorf("%s: got %d pipelines × %d stages, %d frames %d×%d, %d steps, cfg %v, %d devices, %d samples, %d on numa 1; want %+v",
				tc.file, len(p.Pipelines), len(p.Pipelines[0].Stages), p.Model.Frames, p.Model.Latent.Height, p.Model.Latent.Width,
				p.Sampler.Steps, p.Model.CFG != nil, len(p.Devices), p.Workload.Samples, numa, tc)
		}
		if tc.devices == 7 && p.Links.LinkKind("gpu4", "gpu3") != "cross-socket" {
			t.Errorf("%s: gpu3–gpu4 link is %q, want cross-socket", tc.file, p.Links.LinkKind("gpu4", "gpu3"))
		}
	}
	tiny, err := Load("../configs/tiny-cpu-2stage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("..", "models", "tiny", "unet.onnx"); tiny.Path(tiny.Model.ONNX.UNet) != filepath.Join("..", "configs", want) {
		t.Errorf("tiny unet path resolves to %s, want %s", tiny.Path(tiny.Model.ONNX.UNet), filepath.Join("..", "configs", want))
	}
}

func TestEvenSplit(t *testing.T) {
	for _, tc := range []struct {
		n, s int
		want []int
	}{
		{28, 3, []int{10, 9, 9}},
		{28, 7, []int{4, 4, 4, 4, 4, 4, 4}},
		{25, 7, []int{4, 4, 4, 4, 3, 3, 3}},
		{5, 5, []int{1, 1, 1, 1, 1}},
		{28, 1, []int{28}},
	} {
		got := evenSplit(tc.n, tc.s)
		if !equalInts(got, tc.want) {
			t.Errorf("evenSplit(%d, %d) = %v, want %v", tc.n, tc.s, got, tc.want)
		}
	}
}

// TestEven28Over3 loads a plan with 28 steps on 3 devices: 10/9/9, not an error.
func TestEven28Over3(t *testing.T) {
	p, err := Parse([]byte(minimal+"devices: {count: 3, kind: a5000}\n"), "three.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]StepIndex
	for _, st := range p.Pipelines[0].Stages {
		got = append(got, [2]StepIndex{st.First, st.Last})
	}
	want := [][2]StepIndex{{0, 9}, {10, 18}, {19, 27}}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("28 steps on 3 devices: %v, want %v", got, want)
	}
	if !p.Pipelines[0].Stages[0].Encode || !p.Pipelines[0].Stages[2].Decode {
		t.Errorf("encode and decode not on first and last stage: %+v", p.Pipelines[0].Stages)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
