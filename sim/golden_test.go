package sim

import (
	"bytes"
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

// Scenarios are built in Go until plan.Parse lands; then they can move to
// testdata/*.yaml next to their .golden files.
var scenarios = []struct {
	name string
	spec spec
}{
	{"blocking-3stage", spec{stepMS: []float64{30, 20, 45}, steps: []int{3, 4, 2}, firstMS: []float64{90, 60, 0},
		encMS: 8, decMS: 25, linkUS: 800, setupMS: 5, samples: 4}},
	{"buffered-3stage", spec{stepMS: []float64{30, 20, 45}, steps: []int{3, 4, 2}, firstMS: []float64{90, 60, 0},
		encMS: 8, decMS: 25, linkUS: 800, setupMS: 5, samples: 4, handoff: "buffered"}},
	{"slow-link", spec{stepMS: []float64{10, 10}, steps: []int{2, 2}, linkUS: 35000, samples: 4, handoff: "buffered"}},
	{"microbatch-poisson-replicas", spec{stepMS: []float64{12, 9}, steps: []int{2, 3}, encMS: 3, decMS: 6, linkUS: 150,
		replicas: 2, samples: 7, mb: 2, arrival: plan.Arrival{Kind: "poisson", Rate: 40}, seed: 42}},
	{"jitter-interval", spec{stepMS: []float64{10, 10, 10}, steps: []int{2, 2, 2}, jitter: 0.1, linkUS: 100,
		samples: 4, arrival: plan.Arrival{Kind: "interval", IntervalMS: 15}, seed: 7}},
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

func TestGoldenScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := run(t, sc.spec.plan())
			got := []byte(render(r))
			path := filepath.Join("testdata", sc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := 0; i < max(len(gl), len(wl)); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("%s:%d differs (run go test -update if the change is intended)\n got: %s\nwant: %s", path, i+1, g, w)
					}
				}
			}
		})
	}
}
