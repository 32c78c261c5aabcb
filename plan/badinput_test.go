package plan

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// onlyProblems checks that doc's problems are exactly one per path in
// want (a path may be listed once), each mentioning its words.
func onlyProblems(t *testing.T, doc string, want map[string]string) {
	t.Helper()
	list := problems(t, doc)
	got := map[string]bool{}
	for _, e := range list {
		w, ok := want[e.Path]
		if !ok || got[e.Path] {
			t.Errorf("unexpected problem %q", e.Error())
			continue
		}
		got[e.Path] = true
		if !strings.Contains(e.Msg, w) {
			t.Errorf("%q does not say %q", e.Error(), w)
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("no problem on %s; got:\n%s", p, (&Errors{List: list}).Error())
		}
	}
}

// A whole number with a leading zero is octal in YAML: refused, whatever
// field it is in; a prefix that says its base is read as written.
func TestLeadingZero(t *testing.T) {
	dev := "devices: {count: 1, kind: a5000}\n"
	for _, tc := range []struct{ old, new, path, want string }{
		{"steps: 28", "steps: 010", "sampler.steps", `got "010": write 10; a leading zero would be read as octal 8`},
		{"steps: 28", "steps: -010", "sampler.steps", `write -10; a leading zero would be read as octal -8`},
		{"steps: 28", "steps: 00", "sampler.steps", `got "00": write 0 without the leading zero`},
		{"steps: 28", "steps: 09", "sampler.steps", `got "09": write 9 without the leading zero`},
		{"samples: 10", "samples: 10, seed: 017", "workload.seed", "octal 15"},
		{"frames: 14", "frames: 016", "model.frames", "write 16; a leading zero would be read as octal 14"},
		{"kind: a5000}", "kind: a5000, memory_gb: 024}", "devices.memory_gb", "octal 20"},
	} {
		doc := strings.Replace(minimal+dev, tc.old, tc.new, 1)
		onlyProblems(t, doc, map[string]string{tc.path: tc.want})
	}
	for _, ok := range []string{"steps: 0x1c", "steps: 0o34", "steps: 28.0e0"} {
		doc := strings.Replace(minimal+dev, "steps: 28", ok, 1)
		if ok == "steps: 28.0e0" {
			// A float where a whole number goes stays an error of its own.
			onlyProblems(t, doc, map[string]string{"sampler.steps": "want a whole number"})
			continue
		}
		p, err := Parse([]byte(doc), "x.yaml")
		if err != nil || p.Sampler.Steps != 28 {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestCostsEmpty(t *testing.T) {
	doc := minimal + "devices: {count: 1, kind: a5000}\ncosts: \"\"\n"
	list := problems(t, doc)
	expect(t, list, where(t, doc, 9, `""`), "costs", "empty; name the cost profile file")
	if _, err := Parse([]byte(minimal+"devices: {count: 1, kind: a5000}\n"), "x.yaml"); err != nil {
		t.Errorf("costs left out: %v", err)
	}
}

// A value reported once is not reported again by the checks that follow
// from it.
func TestNoFollowOns(t *testing.T) {
	two := "devices: [{name: gpu0, kind: a5000}, {name: gpu1, kind: a5000}]\n"
	for _, tc := range []struct {
		name, doc string
		want      map[string]string
	}{
		{"count negative", minimal + "devices: {count: -1, kind: a5000}\n",
			map[string]string{"devices.count": "got -1"}},
		{"count huge", minimal + "devices: {count: 100000000, kind: a5000}\n",
			map[string]string{"devices.count": "got 100000000"}},
		{"backwards range", minimal + two + "layout: {assignment: explicit, stages: [{device: gpu0, steps: [13, 0]}, {device: gpu1, steps: [14, 27]}]}\n",
			map[string]string{"layout.stages[0].steps": "range 13..0 is backwards"}},
		{"out of order", minimal + two + "layout: {assignment: explicit, stages: [{device: gpu1, steps: [14, 27]}, {device: gpu0, steps: [0, 13]}]}\n",
			map[string]string{"layout.stages[1].steps": "list the stages in step order"}},
		{"gap after a sound range", minimal + two + "layout: {assignment: explicit, stages: [{device: gpu0, steps: [0, 9]}, {device: gpu1, steps: [14, 27]}]}\n",
			map[string]string{"layout.stages[1].steps": "steps 10..13 are not assigned: the previous stage (steps 0..9) ends at 9; start at step 10"}},
		{"three in between", minimal + two + "links: {default: pcie4, overrides: [{between: [gpu0, gpu1, gpu0], kind: x}]}\n",
			map[string]string{"links.overrides[0].between": "want a list of 2 items"}},
		{"override not a mapping", minimal + two + "links: {default: pcie4, overrides: [3]}\n",
			map[string]string{"links.overrides[0]": "want a mapping"}},
		{"memory short form", minimal + "devices: {count: 3, kind: a5000, memory_gb: -24}\n",
			map[string]string{"devices.memory_gb": "got -24"}},
		{"numa short form", minimal + "devices: {count: 3, kind: a5000, numa: -1}\n",
			map[string]string{"devices.numa": "got -1"}},
		{"kind missing short form", minimal + "devices: {count: 3}\n",
			map[string]string{"devices.kind": "missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) { onlyProblems(t, tc.doc, tc.want) })
	}
	// The list form still reports each device.
	onlyProblems(t, minimal+"devices: [{kind: a5000, numa: -1}, {kind: a5000, numa: -2}]\n",
		map[string]string{"devices[0].numa": "got -1", "devices[1].numa": "got -2"})
}

// frames: .nan is reported once, not again as "0 frames" against the
// profile.
func TestNoFollowOnAgainstProfile(t *testing.T) {
	_, err := loadWith(t, strings.Replace(minimal, "frames: 14", "frames: .nan", 1)+"devices: {count: 1, kind: a5000}\n", func(s string) string { return s })
	if err == nil {
		t.Fatal("no error")
	}
	list := errorsOf(t, err)
	if len(list.List) != 1 || list.List[0].Path != "model.frames" {
		t.Errorf("want one problem on model.frames, got:\n%v", err)
	}
}

// An alias of the wrong type is reported where the alias is written.
func TestAliasPosition(t *testing.T) {
	doc := strings.Replace(minimal, "model:", "model: &m", 1) + "devices: {count: 1, kind: a5000,\n  memory_gb: *m}\n"
	list := problems(t, doc)
	expect(t, list, where(t, doc, 9, "*m"), "devices.memory_gb", "want a number, got a mapping")
}

func TestProfileFirstCallAndDate(t *testing.T) {
	base := minimal + "devices: {count: 1, kind: a5000}\nlinks: {default: pcie4}\n"
	for _, tc := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"first call below step", func(s string) string {
			return strings.Replace(s, "unet_ms: {1: 300}", "unet_ms: {1: 300}\n    first_call_ms: {1: 10}", 1)
		}, "prof.yaml:6:24: devices.a5000.first_call_ms[1]: 10 ms is below unet_ms[1] (300 ms)"},
		{"first call below derived step", func(s string) string {
			return strings.Replace(s, "unet_ms: {1: 300}", "unet_ms: {1: 300, 4: 600}\n    first_call_ms: {2: 100}", 1)
		}, "devices.a5000.first_call_ms[2]: 100 ms is below the step time at micro-batch 2 (400 ms, derived from unet_ms)"},
		{"date in the future", func(s string) string { return strings.Replace(s, "2026-01-02", "2999-01-01", 1) },
			"provenance.date: 2999-01-01 is after today"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(t, base, tc.edit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want %q", err, tc.want)
			}
		})
	}
	// A first call at least as long as the step, and today, are fine.
	today := time.Now().UTC().Format("2006-01-02")
	if _, err := loadWith(t, base, func(s string) string {
		return strings.Replace(strings.Replace(s, "unet_ms: {1: 300}", "unet_ms: {1: 300}\n    first_call_ms: {1: 300}", 1), "2026-01-02", today, 1)
	}); err != nil {
		t.Errorf("first call = step, dated today: %v", err)
	}
}

func TestPartialMicroBatchNotice(t *testing.T) {
	p, err := Parse([]byte(withCosts(t)), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	samples := p.Workload.Samples
	mb := samples + 1
	if err := p.Apply(Overrides{MicroBatch: &mb}); err != nil {
		t.Fatal(err)
	}
	n := p.Notices()
	if len(n) == 0 || !strings.HasPrefix(n[0], "layout: micro-batch") || !strings.Contains(n[0], "every micro-batch is partial") {
		t.Errorf("micro-batch %d over %d samples: notices %q", mb, samples, n)
	}
	mb = samples
	if err := p.Apply(Overrides{MicroBatch: &mb}); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Notices() {
		if strings.Contains(s, "partial") {
			t.Errorf("micro-batch = samples: %q", s)
		}
	}
}

// A named pipe would block the loader until something writes to it: it
// is refused. A pipe handed to the process (/dev/fd/N, as <(...) gives)
// is read.
func TestNamedPipe(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "plan.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Load(fifo)
	if err == nil || !strings.Contains(err.Error(), "is a named pipe (FIFO)") {
		t.Errorf("Load(fifo): %v", err)
	}
	if _, err := LoadProfile(fifo); err == nil || !strings.HasPrefix(err.Error(), "profile: "+fifo+": is a named pipe") {
		t.Errorf("LoadProfile(fifo): %v", err)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.WriteString(minimal + "devices: {count: 1, kind: a5000}\n")
		w.Close()
	}()
	path := "/dev/fd/" + strconv.Itoa(int(r.Fd()))
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no /dev/fd: %v", err)
	}
	if p, err := Load(path); err != nil || p.Sampler.Steps != 28 {
		t.Errorf("Load(%s): %v", path, err)
	}
}
