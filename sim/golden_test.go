package sim

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// A golden scenario is a plan file testdata/NAME.yaml; its expected output,
// as render writes it, is testdata/NAME.golden. Cost profiles the plans name
// in costs: are testdata/*.costs.yaml, and are not scenarios themselves.
const profileSuffix = ".costs.yaml"

// scenarioFiles lists the scenario plans in testdata, sorted.
func scenarioFiles(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var plans []string
	for _, f := range all {
		if !strings.HasSuffix(f, profileSuffix) {
			plans = append(plans, f)
		}
	}
	if len(plans) == 0 {
		t.Fatal("no scenarios in testdata/*.yaml")
	}
	return plans
}

// render writes a timeline as text, one span per line, for golden files.
func render(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "makespan %d ns, %d events, devices %s\n", r.Makespan, r.Events, strings.Join(r.Meta.Devices, " "))
	for _, s := range r.Timeline.Samples {
		fmt.Fprintf(&b, "sample %d pipeline %d release %d done %d latency %d\n", s.ID, s.Pipeline, s.Release, s.Done, s.Done-s.Release)
	}
	for _, s := range r.Timeline.Spans {
		fmt.Fprintf(&b, "%-5s %-6s %v p%d s%d", s.Device, s.Kind, s.Samples, s.Pipeline, s.Stage)
		if s.Kind == timeline.KindStep {
			fmt.Fprintf(&b, " steps %d..%d", s.FirstStep, s.LastStep)
		}
		fmt.Fprintf(&b, " [%d, %d)", s.Start, s.End)
		if s.Peer != "" {
			fmt.Fprintf(&b, " peer %s", s.Peer)
		}
		if s.Warmup {
			b.WriteString(" warmup")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestGoldenScenarios simulates every testdata/*.yaml plan and compares
// the rendered timeline with its .golden file; -update rewrites them.
func TestGoldenScenarios(t *testing.T) {
	for _, path := range scenarioFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			p, err := plan.Load(path)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			got := render(run(t, p))
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./sim/ -run Golden -update to create it)", err)
			}
			if msg := firstDiff(got, string(want)); msg != "" {
				t.Errorf("%s: %s\n(run go test ./sim/ -run Golden -update if the change is intended)", golden, msg)
			}
		})
	}
}

// TestGoldenOrphans fails on a .golden file whose scenario plan is gone.
func TestGoldenOrphans(t *testing.T) {
	goldens, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens {
		yml := strings.TrimSuffix(g, ".golden") + ".yaml"
		if _, err := os.Stat(yml); err != nil {
			t.Errorf("%s has no scenario %s; remove it or restore the plan", g, yml)
		}
	}
}

// firstDiff describes where got first differs from want: line, column and
// both lines; "" when they are equal.
func firstDiff(got, want string) string {
	if got == want {
		return ""
	}
	gl, wl := lines(got), lines(want)
	i := 0
	for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
		i++
	}
	switch {
	case i == len(gl):
		return fmt.Sprintf("line %d: output ends; want: %s", i+1, strings.TrimSuffix(wl[i], "\n"))
	case i == len(wl):
		return fmt.Sprintf("line %d: extra output: %s", i+1, strings.TrimSuffix(gl[i], "\n"))
	}
	g, w := gl[i], wl[i]
	col := 0
	for col < min(len(g), len(w)) && g[col] == w[col] {
		col++
	}
	g, w = strings.TrimSuffix(g, "\n"), strings.TrimSuffix(w, "\n")
	note := ""
	if g == w {
		note = " (only the final newline)"
	}
	return fmt.Sprintf("line %d col %d differs%s\n got: %s\nwant: %s", i+1, col+1, note, g, w)
}

// lines splits s into lines that keep their newline.
func lines(s string) []string {
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

func TestFirstDiff(t *testing.T) {
	for _, c := range []struct{ got, want, has string }{
		{"a\nb\n", "a\nb\n", ""},
		{"a\nbx\n", "a\nby\n", "line 2 col 2 differs"},
		{"a\n", "a\nb\n", "line 2: output ends; want: b"},
		{"a\nb\n", "a\n", "line 2: extra output: b"},
		{"a\nb", "a\nb\n", "line 2 col 2 differs (only the final newline)"},
		{"", "a\n", "line 1: output ends; want: a"},
	} {
		msg := firstDiff(c.got, c.want)
		if (c.has == "") != (msg == "") || !strings.Contains(msg, c.has) {
			t.Errorf("firstDiff(%q, %q) = %q, want it to contain %q", c.got, c.want, msg, c.has)
		}
	}
}
