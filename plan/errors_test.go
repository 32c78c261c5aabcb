package plan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimal is the start of a valid plan; tests append devices and more.
const minimal = `name: t
model:
  family: svd
  frames: 14
  latent: {channels: 4, height: 40, width: 72}
sampler: {steps: 28}
workload: {samples: 10}
`

// where returns "LINE:COL" of the first needle on the given 1-based line of
// doc, so that tests state positions by pointing at the text.
func where(t *testing.T, doc string, line int, needle string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	if line < 1 || line > len(lines) {
		t.Fatalf("no line %d", line)
	}
	col := strings.Index(lines[line-1], needle)
	if col < 0 {
		t.Fatalf("line %d %q has no %q", line, lines[line-1], needle)
	}
	return fmt.Sprintf("%d:%d", line, col+1)
}

// problems parses doc and returns its problems; it fails if there are none.
func problems(t *testing.T, doc string) []*Error {
	t.Helper()
	_, err := Parse([]byte(doc), "x.yaml")
	if err == nil {
		t.Fatalf("no error for:\n%s", doc)
	}
	var list *Errors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	return list.List
}

// expect checks that some problem is at file:pos, on path, and mentions
// every word in want.
func expect(t *testing.T, list []*Error, pos, path string, want ...string) {
	t.Helper()
	prefix := "plan: x.yaml:" + pos + ": " + path + ": "
	for _, e := range list {
		s := e.Error()
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%q does not say %q", s, w)
			}
		}
		return
	}
	t.Errorf("no problem starting %q; got:\n%s", prefix, (&Errors{List: list}).Error())
}

func TestMalformed(t *testing.T) {
	dev3 := "devices: {count: 3, kind: a5000}\n"
	for _, tc := range []struct {
		name   string
		doc    string
		line   int
		needle string // text the problem points at, on line
		path   string
		want   []string
	}{
		{"unknown field", minimal + "devices: {count: 2, kind: a5000}\nlayout: {replica: 2}\n",
			9, "replica", "layout.replica", []string{`unknown field "replica"`, `did you mean "replicas"`, "valid fields"}},
		{"unknown field in device", minimal + "devices:\n  - {name: gpu0, kind: a5000, memory: 24}\n",
			9, "memory", "devices[0].memory", []string{`unknown field "memory"`, "memory_gb"}},
		{"wrong type", strings.Replace(minimal, "frames: 14", "frames: fourteen", 1) + dev3,
			4, "fourteen", "model.frames", []string{"want a whole number", `"fourteen"`}},
		{"wrong type list", strings.Replace(minimal, "sampler: {steps: 28}", "sampler: {steps: [0, 4]}", 1) + dev3,
			6, "[0", "sampler.steps", []string{"want a whole number", "list"}},
		{"wrong type mapping", minimal + dev3 + "links: pcie4\n",
			9, "pcie4", "links", []string{"want a mapping"}},
		{"zero steps", strings.Replace(minimal, "steps: 28", "steps: 0", 1) + dev3,
			6, "0}", "sampler.steps", []string{"at least 1", "got 0"}},
		{"missing steps", strings.Replace(minimal, "sampler: {steps: 28}", "sampler: {rho: 7}", 1) + dev3,
			6, "{", "sampler.steps", []string{"missing", "steps"}},
		{"negative rate", strings.Replace(minimal, "workload: {samples: 10}", "workload: {samples: 10, arrival: {kind: poisson, rate: -2}}", 1) + dev3,
			7, "-2", "workload.arrival.rate", []string{"rate > 0", "-2"}},
		{"rate without poisson", strings.Replace(minimal, "workload: {samples: 10}", "workload: {samples: 10, arrival: {rate: 2}}", 1) + dev3,
			7, "2}}", "workload.arrival.rate", []string{"only for kind poisson", "kind: poisson"}},
		{"zero interval", strings.Replace(minimal, "workload: {samples: 10}", "workload:\n  samples: 10\n  arrival: {kind: interval}", 1) + dev3,
			9, "{kind", "workload.arrival.interval_ms", []string{"interval_ms > 0"}},
		{"overlapping ranges", minimal + dev3 + "layout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n    - {device: gpu1, steps: [8, 18]}\n    - {device: gpu2, steps: [19, 27]}\n",
			12, "[8", "layout.stages[1].steps", []string{"8..18 overlaps", "steps 0..9", "start at step 10"}},
		{"gap", minimal + dev3 + "layout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n    - {device: gpu1, steps: [12, 18]}\n    - {device: gpu2, steps: [19, 27]}\n",
			12, "[12", "layout.stages[1].steps", []string{"steps 10..11 are not assigned"}},
		{"range past the end", minimal + dev3 + "layout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n    - {device: gpu1, steps: [10, 19]}\n    - {device: gpu2, steps: [20, 31]}\n",
			13, "[20", "layout.stages[2].steps", []string{"range 20..31 ends past step 27 (steps: 28)"}},
		{"steps left over", minimal + dev3 + "layout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n    - {device: gpu1, steps: [10, 19]}\n    - {device: gpu2, steps: [20, 25]}\n",
			13, "[20", "layout.stages[2].steps", []string{"steps 26..27 are not assigned"}},
		{"backwards range", minimal + dev3 + "layout:\n  stages:\n    - {device: gpu0, steps: [9, 0]}\n",
			11, "[9", "layout.stages[0].steps", []string{"backwards"}},
		{"range of three", minimal + dev3 + "layout:\n  stages:\n    - {device: gpu0, steps: [0, 9, 12]}\n",
			11, "[0", "layout.stages[0].steps", []string{"list of 2 items"}},
		{"missing device", minimal + dev3 + "layout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n    - {device: gpu7, steps: [10, 27]}\n",
			12, "gpu7", "layout.stages[1].device", []string{`"gpu7" is not in devices`, "gpu0, gpu1, gpu2"}},
		{"device twice", minimal + dev3 + "layout:\n  pipelines:\n    - stages: [{device: gpu0, steps: [0, 27]}]\n    - stages: [{device: gpu0, steps: [0, 27]}]\n",
			12, "gpu0", "layout.pipelines[1].stages[0].device", []string{"already runs layout.pipelines[0].stages[0]"}},
		{"stages with even", minimal + dev3 + "layout:\n  assignment: even\n  stages: [{device: gpu0, steps: [0, 27]}]\n",
			11, "[{", "layout.stages", []string{"assignment: explicit"}},
		{"replicas do not divide", minimal + dev3 + "layout: {replicas: 2}\n",
			9, "2}", "layout.replicas", []string{"3 devices do not split into 2"}},
		{"too few steps", strings.Replace(minimal, "steps: 28", "steps: 2", 1) + dev3,
			6, "2}", "sampler.steps", []string{"2 steps cannot fill 3 stages"}},
		{"duplicate device name", minimal + "devices:\n  - {name: gpu0, kind: a5000}\n  - {name: gpu0, kind: a5000}\n",
			10, "gpu0", "devices[1].name", []string{`"gpu0" is already used by devices[0]`}},
		{"override names missing device", minimal + dev3 + "links: {default: pcie4, overrides: [{between: [gpu2, gpu3], kind: cross-socket}]}\n",
			9, "gpu3", "links.overrides[0].between[1]", []string{`"gpu3" is not in devices`}},
		{"bad dtype", strings.Replace(minimal, "frames: 14", "frames: 14\n  dtype: bf16", 1) + dev3,
			5, "bf16", "model.dtype", []string{`"bf16" is not allowed`, "fp16, fp32"}},
		{"sigma order", strings.Replace(minimal, "steps: 28", "steps: 28, sigma_min: 5, sigma_max: 1", 1) + dev3,
			6, "1}", "sampler.sigma_max", []string{"greater than sigma_min"}},
		{"short form count", minimal + "devices: {count: 0, kind: a5000}\n",
			8, "0,", "devices.count", []string{"from 1 to"}},
		{"duplicate key", minimal + dev3 + "transport: tcp\ntransport: nccl\n",
			10, "transport", "transport", []string{"given twice"}},
		{"balanced without profile", minimal + dev3 + "layout: {assignment: balanced}\n",
			9, "balanced", "layout.assignment", []string{"needs a cost profile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, problems(t, tc.doc), where(t, tc.doc, tc.line, tc.needle), tc.path, tc.want...)
		})
	}
}

// TestAllProblemsAtOnce checks that one pass reports every problem, one
// per line, in file order.
func TestAllProblemsAtOnce(t *testing.T) {
	doc := `name: t
model:
  family: svd
  frames: 0
  latent: {channels: 4, height: 40, width: 72}
  colour: red
sampler: {steps: 28}
devices: {count: 3, kind: a5000}
layout:
  stages:
    - {device: gpu0, steps: [0, 9]}
    - {device: gpu9, steps: [8, 27]}
workload: {samples: 10, arrival: {kind: poisson, rate: -1}}
`
	list := problems(t, doc)
	expect(t, list, where(t, doc, 4, "0"), "model.frames", "at least 1")
	expect(t, list, where(t, doc, 6, "colour"), "model.colour", "unknown field")
	expect(t, list, where(t, doc, 12, "gpu9"), "layout.stages[1].device", "not in devices")
	expect(t, list, where(t, doc, 12, "[8"), "layout.stages[1].steps", "overlaps")
	expect(t, list, where(t, doc, 13, "-1"), "workload.arrival.rate", "rate > 0")
	if len(list) != 5 {
		t.Errorf("got %d problems, want 5:\n%s", len(list), (&Errors{List: list}).Error())
	}
	_, err := Parse([]byte(doc), "x.yaml")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(list) {
		t.Errorf("Error() has %d lines for %d problems", len(lines), len(list))
	}
	for i := 1; i < len(list); i++ {
		if list[i].Pos.Line < list[i-1].Pos.Line {
			t.Errorf("problems not in line order: %v before %v", list[i-1], list[i])
		}
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse([]byte("name: t\nmodel: {family: svd\nsampler: x\n"), "bad.yaml")
	if err == nil || !strings.Contains(err.Error(), "plan: bad.yaml:") || !strings.Contains(err.Error(), "not valid YAML") {
		t.Errorf("got %v, want a YAML syntax error naming bad.yaml", err)
	}
	if _, err := Parse(nil, "empty.yaml"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty plan: got %v", err)
	}
}

func TestDefaultsAndShortForm(t *testing.T) {
	p, err := Parse([]byte(minimal+"devices: {count: 3, kind: a5000, memory_gb: 24}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Devices) != 3 {
		t.Fatalf("short form gave %d devices, want 3", len(p.Devices))
	}
	for i, d := range p.Devices {
		if d.Name != fmt.Sprintf("gpu%d", i) || d.Kind != "a5000" || d.MemoryGB != 24 || d.Speed != 1 || d.Threads != 1 || d.Provider != "cuda" || d.Index != i {
			t.Errorf("device %d = %+v", i, d)
		}
	}
	if p.Model.Dtype != "fp16" || p.Sampler.Kind != "euler-karras" || p.Sampler.SigmaMax != 700 || p.Layout.Replicas != 1 ||
		p.Layout.Assignment != "even" || p.Layout.MicroBatch != 1 || p.Transport != "inproc" || p.Workload.Arrival.Kind != "batch" {
		t.Errorf("defaults not filled: %+v", p)
	}
	off, err := Parse([]byte(strings.Replace(minimal, "frames: 14", "frames: 14\n  cfg: false", 1)+"devices: {count: 1, kind: a5000}\n"), "x.yaml")
	if err != nil || off.Model.CFG != nil {
		t.Errorf("cfg: false should mean no cfg: %v", err)
	}
	cpu, err := Parse([]byte(minimal+"devices: {count: 2, kind: cpu}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cpu.Devices[1].Name != "cpu1" || cpu.Devices[1].Provider != "cpu" {
		t.Errorf("cpu short form: %+v", cpu.Devices[1])
	}
	// A written cuda index is kept; unwritten ones count cuda devices.
	mixed, err := Parse([]byte(minimal+"devices:\n  - {name: c, kind: cpu}\n  - {name: a, kind: a5000, index: 3}\n  - {name: b, kind: a5000}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if mixed.Devices[1].Index != 3 || mixed.Devices[2].Index != 1 {
		t.Errorf("cuda indices %d, %d; want 3 (written) and 1 (second cuda device)", mixed.Devices[1].Index, mixed.Devices[2].Index)
	}
}

// writeProfile writes a valid profile for minimal's model, changed by edit.
func writeProfile(t *testing.T, dir string, edit func(string) string) string {
	t.Helper()
	prof := `provenance: {source: estimate, date: 2026-01-02, reference: test}
model: {family: svd, frames: 14, latent: {channels: 4, height: 40, width: 72}, dtype: fp16, cfg: false}
devices:
  a5000:
    unet_ms: {1: 300}
    decode_ms: 800
    memory_gb: {unet: 3, activations_per_sample: 2}
links:
  pcie4: {latency_us: 15, bandwidth_gbps: 22}
`
	path := filepath.Join(dir, "prof.yaml")
	if err := os.WriteFile(path, []byte(edit(prof)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadWith(t *testing.T, planText string, edit func(string) string) (*Plan, error) {
	t.Helper()
	dir := t.TempDir()
	writeProfile(t, dir, edit)
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(planText+"costs: prof.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestProfileChecks(t *testing.T) {
	same := func(s string) string { return s }
	base := minimal + "devices: {count: 2, kind: a5000, memory_gb: 24}\nlinks: {default: pcie4}\n"
	if p, err := loadWith(t, base, same); err != nil || p.Profile == nil {
		t.Fatalf("valid plan and profile: %v", err)
	}
	for _, tc := range []struct {
		name string
		plan string
		edit func(string) string
		want []string
	}{
		{"model mismatch", strings.Replace(base, "frames: 14", "frames: 25", 1), same,
			[]string{"plan.yaml:", "costs: profile", "is for svd, 14 frames", "plan's model is svd, 25 frames"}},
		{"cfg mismatch", strings.Replace(base, "frames: 14", "frames: 14\n  cfg: {min: 1, max: 3}", 1), same,
			[]string{"cfg off", "cfg on"}},
		{"device kind missing", strings.Replace(base, "a5000", "a6000", 1), same,
			[]string{"devices.kind", `no costs for kind "a6000"`, "it has: a5000"}},
		{"link kind missing", strings.Replace(base, "pcie4", "nvlink", 1), same,
			[]string{"links.default", `link kind "nvlink" (gpu0→gpu1)`, "it has: pcie4"}},
		{"no provenance", base, func(s string) string { return strings.Replace(s, "source: estimate, ", "", 1) },
			[]string{"prof.yaml:1:", "provenance.source: missing"}},
		{"no reference", base, func(s string) string { return strings.Replace(s, ", reference: test", "", 1) },
			[]string{"provenance.reference: missing"}},
		{"bad date", base, func(s string) string { return strings.Replace(s, "2026-01-02", "yesterday", 1) },
			[]string{"provenance.date: want a real date"}},
		{"negative step time", base, func(s string) string { return strings.Replace(s, "{1: 300}", "{1: -3}", 1) },
			[]string{"prof.yaml:5:", "devices.a5000.unet_ms[1]: must be > 0"}},
		{"unknown profile field", base, func(s string) string { return strings.Replace(s, "decode_ms", "decoder_ms", 1) },
			[]string{"prof.yaml:6:5: devices.a5000.decoder_ms: unknown field"}},
		{"out of memory", strings.Replace(base, "samples: 10}", "samples: 10}\nlayout: {micro_batch: 12}", 1), same,
			[]string{"devices.memory_gb", "needs 27.00 GiB", "gpu0 has 24 GiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(t, tc.plan, tc.edit)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestMissingProfileFile(t *testing.T) {
	_, err := Parse([]byte(minimal+"devices: {count: 1, kind: a5000}\ncosts: /nonexistent/p.yaml\n"), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), `x.yaml:9:8: costs: cost profile: open "/nonexistent/p.yaml"`) {
		t.Errorf("got %v", err)
	}
}
