package plan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// profileFile is the profile the tests' plans point at.
const profileFile = "../configs/profiles/a5000-svd-14f-320x576.yaml"

// withCosts is minimal with one a5000 and the a5000 profile.
func withCosts(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(profileFile)
	if err != nil {
		t.Fatal(err)
	}
	return minimal + "devices: {count: 1, kind: a5000, memory_gb: 24}\nlinks: {default: pcie4}\ncosts: " + abs + "\n"
}

func errorsOf(t *testing.T, err error) *Errors {
	t.Helper()
	var list *Errors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	return list
}

// A plan file over MaxFileBytes is refused before it is read or parsed,
// with its size and the limit; a 50 MB name once took 227 s and 1 GB.
func TestFileTooBig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	name := bytes.Repeat([]byte("n"), 50<<20)
	if err := os.WriteFile(path, append(append([]byte("name: "), name...), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := fmt.Sprintf("plan: %s: file is %d bytes; a plan is at most %d bytes (1 MiB)", path, 50<<20+7, MaxFileBytes)
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, err := LoadProfile(path); err == nil || !strings.HasPrefix(err.Error(), "profile: "+path+": file is") || !strings.Contains(err.Error(), "a cost profile is at most") {
		t.Errorf("profile: got %v", err)
	}
	// Bytes given to Parse are held to the same limit.
	if _, err := Parse(make([]byte, MaxFileBytes+1), "b.yaml"); err == nil || !strings.Contains(err.Error(), "b.yaml: file is 1048577 bytes") {
		t.Errorf("Parse: got %v", err)
	}
	// Exactly the limit is read (and is then simply not a plan).
	at := bytes.Repeat([]byte("#"), MaxFileBytes)
	if _, err := Parse(at, "b.yaml"); err == nil || strings.Contains(err.Error(), "file is") {
		t.Errorf("a file of exactly %d bytes: got %v", MaxFileBytes, err)
	}
}

// A plan with many unknown fields lists MaxErrors of them and counts the
// rest in one line; 1.5 M once printed 1.5 M messages in 33 s and 1.9 GB.
func TestErrorsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "devices: {count: 1, kind: a5000}\n")
	const n = 60000 // as many as fit in 1 MiB
	for i := range n {
		fmt.Fprintf(&b, "k%d: 1\n", i)
	}
	if b.Len() > MaxFileBytes {
		t.Fatalf("test plan is %d bytes, over the limit", b.Len())
	}
	_, err := Parse([]byte(b.String()), "x.yaml")
	list := errorsOf(t, err)
	if len(list.List) != MaxErrors || list.More != n-MaxErrors {
		t.Errorf("%d problems listed, %d more; want %d and %d", len(list.List), list.More, MaxErrors, n-MaxErrors)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != MaxErrors+1 || lines[len(lines)-1] != fmt.Sprintf("... and %d more problems (fix the ones above first)", n-MaxErrors) {
		t.Errorf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
	if !strings.HasPrefix(lines[0], "plan: x.yaml:9:1: k0: unknown field") {
		t.Errorf("first line %q", lines[0])
	}
	// A profile's problems, merged into the plan's, keep the count.
	c := newChecker("x.yaml", map[string]Pos{})
	c.merge("costs", list)
	if got := c.err().(*Errors); len(got.List) != MaxErrors || got.More != n-MaxErrors {
		t.Errorf("merged: %d listed, %d more", len(got.List), got.More)
	}
}

// An alias that repeats a list of aliases asks for millions of values
// from a small file: decoding stops at maxNodes with one problem.
func TestAliasExpansionBounded(t *testing.T) {
	stage := "&s {device: gpu0, steps: [0, 27]}"
	row := "&r [" + stage + strings.Repeat(", *s", 999) + "]"
	doc := minimal + "devices: {count: 1, kind: a5000}\nlayout:\n  assignment: explicit\n  pipelines:\n    - {stages: " + row + "}\n" + strings.Repeat("    - {stages: *r}\n", 999)
	_, err := Parse([]byte(doc), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d values", maxNodes)) {
		t.Errorf("got %v", err)
	}
}

func TestZeroIsNotDefault(t *testing.T) {
	// Left out: defaults.
	p, err := Parse([]byte(minimal+"devices: {count: 1, kind: a5000}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Layout.Replicas != 1 || p.Layout.MicroBatch != 1 || p.Sampler.Rho != DefaultRho || p.Devices[0].Speed != 1 || p.Devices[0].Threads != 1 || p.Model.MotionBucket != DefaultMotion {
		t.Errorf("defaults not filled: %+v %+v %+v", p.Layout, p.Sampler, p.Devices[0])
	}
	// Written as 0: kept, so motion_bucket 0 is 0 and the others are errors.
	p, err = Parse([]byte(strings.Replace(minimal, "frames: 14", "frames: 14\n  motion_bucket: 0", 1)+"devices: {count: 1, kind: a5000}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Model.MotionBucket != 0 {
		t.Errorf("motion_bucket: 0 became %d", p.Model.MotionBucket)
	}
	dev := "devices: {count: 1, kind: a5000}\n"
	for _, tc := range []struct{ field, old, new string }{
		{"layout.replicas", dev, dev + "layout: {replicas: 0}\n"},
		{"layout.micro_batch", dev, dev + "layout: {micro_batch: 0}\n"},
		{"layout.handoff", dev, dev + "layout: {handoff: \"\"}\n"},
		{"sampler.rho", "steps: 28", "steps: 28, rho: 0"},
		{"sampler.sigma_min", "steps: 28", "steps: 28, sigma_min: 0"},
		{"devices[0].speed", dev, "devices: [{kind: a5000, speed: 0}]\n"},
		{"devices[0].threads", dev, "devices: [{kind: a5000, threads: 0}]\n"},
		{"devices[0].name", dev, "devices: [{kind: a5000, name: \"\"}]\n"},
		{"devices.speed", dev, "devices: {count: 2, kind: a5000, speed: 0}\n"},
		{"model.fps", "frames: 14", "frames: 14\n  fps: 0"},
		{"model.dtype", "frames: 14", "frames: 14\n  dtype: \"\""},
		{"links.default", dev, dev + "links: {default: \"\"}\n"},
		{"transport", dev, dev + "transport: \"\"\n"},
		{"workload.arrival.kind", "samples: 10", "samples: 10, arrival: {kind: \"\"}"},
	} {
		doc := strings.Replace(minimal+dev, tc.old, tc.new, 1)
		found := false
		for _, e := range problems(t, doc) {
			found = found || (e.Path == tc.field && e.Pos.Line > 0)
		}
		if !found {
			_, err := Parse([]byte(doc), "x.yaml")
			t.Errorf("%s written as zero or empty: no problem on it at a line; got %v", tc.field, err)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name, field, want string
	}{
		{`"gpu 0"`, "devices[0].name", "holds a space"},
		{`"gpu\n0"`, "devices[0].name", "holds a newline"},
		{`"gpu\e[0m"`, "devices[0].name", "control character U+001B"},
		{`"gpü"`, "devices[0].name", "the character 'ü'"},
		{strings.Repeat("g", MaxNameLen+1), "devices[0].name", "65 characters long; at most 64"},
	} {
		list := problems(t, minimal+"devices: [{name: "+tc.name+", kind: a5000}]\n")
		expect(t, list, "8:18", tc.field, tc.want)
	}
	for _, ok := range []string{"gpu0", "node-1/gpu:0", "a_b.c+d@e", strings.Repeat("g", MaxNameLen)} {
		if _, err := Parse([]byte(minimal+"devices: [{name: "+ok+", kind: a5000}]\n"), "x.yaml"); err != nil {
			t.Errorf("name %q: %v", ok, err)
		}
	}
	if _, err := Parse([]byte(strings.Replace(minimal, "name: t", "name: my plan 2", 1)+"devices: {count: 1, kind: a5000}\n"), "x.yaml"); err != nil {
		t.Errorf("a plan name with spaces: %v", err)
	}
	// A name taken from the file is made into a valid one.
	if got := nameFromFile("/d/my\tplan\n.yaml"); got != "my-plan-" {
		t.Errorf("nameFromFile = %q", got)
	}
}

func TestThreadsBounded(t *testing.T) {
	list := problems(t, minimal+"devices: [{kind: cpu, threads: 2000}]\n")
	expect(t, list, "8:32", "devices[0].threads", "at most 256, got 2000")
	if _, err := Parse([]byte(minimal+"devices: [{kind: cpu, threads: 256}]\n"), "x.yaml"); err != nil {
		t.Errorf("threads 256: %v", err)
	}
}

func TestTimesFit(t *testing.T) {
	base := withCosts(t)
	for _, tc := range []struct{ what, old, new, field, want string }{
		{"one interval", "workload: {samples: 10}", "workload: {samples: 10, arrival: {kind: interval, interval_ms: 1e300}}", "workload.arrival.interval_ms", "at most 1e12 ms"},
		{"last release", "workload: {samples: 10}", "workload: {samples: 10000, arrival: {kind: interval, interval_ms: 1e9}}", "workload.arrival.interval_ms", "10000 samples would be released over 1e+10 s"},
		{"poisson", "workload: {samples: 10}", "workload: {samples: 10, arrival: {kind: poisson, rate: 1e-300}}", "workload.arrival.rate", "at least 1e-07"},
		{"work", "workload: {samples: 10}", "workload: {samples: 1000000000}", "workload.samples", "would take about 9.29e+09 s of work"},
	} {
		_, err := Parse([]byte(strings.Replace(base, tc.old, tc.new, 1)), "x.yaml")
		found := false
		if err != nil {
			for _, e := range errorsOf(t, err).List {
				found = found || (e.Path == tc.field && strings.Contains(e.Msg, tc.want) && e.Pos.Line == 7)
			}
		}
		if !found {
			t.Errorf("%s: want a problem on %s saying %q at line 7; got %v", tc.what, tc.field, tc.want, err)
		}
	}
	// Just under the limits is fine: 100 samples one every 1e7 s.
	if _, err := Parse([]byte(strings.Replace(base, "workload: {samples: 10}", "workload: {samples: 100, arrival: {kind: interval, interval_ms: 1e10}}", 1)), "x.yaml"); err != nil {
		t.Errorf("a release span of 1e9 s − 1e7 s: %v", err)
	}
	// Ready catches a plan changed in place to overflow.
	p, err := Parse([]byte(base), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Workload.Samples = 1 << 30
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "workload.samples") {
		t.Errorf("Ready with 2^30 samples of 9.3 s: %v", err)
	}
	// A profile's cost over the limit is the profile's problem, at its line.
	data, err := os.ReadFile(profileFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "unet_ms: {1: 300}", "unet_ms: {1: 1e300}", 1)
	_, err = ParseProfile([]byte(bad), "p.yaml")
	if err == nil || !regexpMatch(`^profile: p\.yaml:\d+:\d+: devices\.a5000\.unet_ms\[1\]: is too large: at most 1e\+12 ms, got 1e\+300`, err.Error()) {
		t.Errorf("unet_ms 1e300: got %v", err)
	}
}

func TestSecondDocument(t *testing.T) {
	doc := minimal + "devices: {count: 1, kind: a5000}\n---\nname: other\n"
	if list := problems(t, doc); len(list) != 1 || !strings.HasPrefix(list[0].Error(), "plan: x.yaml:9:1: a second YAML document starts here") {
		t.Errorf("got %v", &Errors{List: list})
	}
	// An empty document after --- (a trailing separator) holds nothing.
	if _, err := Parse([]byte(minimal+"devices: {count: 1, kind: a5000}\n---\n"), "x.yaml"); err != nil {
		t.Errorf("a trailing ---: %v", err)
	}
}

func TestNotEchoed(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
	_, err := Parse([]byte(passwd), "x.yaml")
	if err == nil || strings.Contains(err.Error(), "root") || !strings.Contains(err.Error(), "not a plan") || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("plan: got %v", err)
	}
	_, err = ParseProfile([]byte(passwd), "p.yaml")
	if err == nil || strings.Contains(err.Error(), "root") || !strings.HasPrefix(err.Error(), "profile: p.yaml:1:1: not a cost profile") {
		t.Errorf("profile: got %v", err)
	}
	// A long value quoted in a message is cut to maxFragment characters.
	long := strings.Repeat("x", 500)
	_, err = Parse([]byte(strings.Replace(minimal, "frames: 14", "frames: "+long, 1)+"devices: {count: 1, kind: a5000}\n"), "x.yaml")
	if err == nil || strings.Contains(err.Error(), strings.Repeat("x", maxFragment+1)) || !strings.Contains(err.Error(), strings.Repeat("x", maxFragment)+`"…`) {
		t.Errorf("long value: got %v", err)
	}
}

func TestSyntaxErrorColumn(t *testing.T) {
	for _, tc := range []struct{ doc, pos string }{
		{"name: a: b\n", "1:8"},
		{"name: a\nmodel:\n  family: svd\n\tframes: 4\n", "4:1"},
		{"name: a: b\nmodel: 1\n", "1:8"},
		{"name: a\nmodel: {a: b\n", "2:1"},
		{"name: a\nmodel: [1, 2\n", "2:1"},
	} {
		_, err := Parse([]byte(tc.doc), "x.yaml")
		prefix := "plan: x.yaml:" + tc.pos + ": not valid YAML"
		if tc.pos == "" {
			prefix = "plan: x.yaml: not valid YAML"
		}
		if err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("%q: got %v, want at %s", tc.doc, err, tc.pos)
		}
	}
}

func TestNotices(t *testing.T) {
	base := withCosts(t)
	p, err := Parse([]byte(base), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Notices(); len(n) != 0 {
		t.Errorf("micro-batch 1, measured: notices %q", n)
	}
	if err := p.Apply(Overrides{MicroBatch: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	n := p.Notices()
	if len(n) != 2 || !strings.Contains(n[0], "no unet_ms for micro-batch 3 on a5000 (it has micro-batch 1)") || !strings.Contains(n[0], "300 ms × 3/1 = 900 ms") ||
		!strings.Contains(n[1], "no first_call_ms for micro-batch 3") {
		t.Errorf("micro-batch 3: notices %q", n)
	}
	// The number in the notice is the one the plan uses.
	w, ok := p.WorkNS(0, 3)
	if !ok || w.Step != 900e6 {
		t.Errorf("step at micro-batch 3: %+v", w)
	}
	// Between two measured sizes: interpolated.
	dc := p.Profile.Devices["a5000"]
	if got := derived(map[int]float64{1: 300, 4: 600}, 2); got != "interpolated linearly between micro-batch 1 (300 ms) and 4 (600 ms): 400 ms" {
		t.Errorf("derived = %q", got)
	}
	if got := derived(dc.UNetMS, 1); got != "" {
		t.Errorf("measured size: derived = %q", got)
	}
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	p, err := Parse([]byte(withCosts(t)), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(Overrides{MicroBatch: ptr(40)})
	if err == nil || !strings.HasPrefix(err.Error(), "plan: --micro-batch 40: layout.micro_batch: ") && !strings.Contains(err.Error(), "memory_gb") {
		t.Errorf("micro-batch 40 on a 24 GiB device: %v", err)
	}
	err = p.Apply(Overrides{Samples: ptr(1 << 30)})
	if err == nil || !strings.HasPrefix(err.Error(), "plan: --samples 1073741824: workload.samples: ") || strings.Contains(err.Error(), "x.yaml") {
		t.Errorf("2^30 samples: %v", err)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
