package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/exec"
)

// sampleOutputs reads the outputs of every sample folder in dir that must
// not depend on the layout: the PNG frames, the GIF and the final latent's
// hash (sample.json's timings do depend on it), by relative path.
// differingOutputs lists, sorted, the outputs of ref that got lacks or
// holds with other contents.
func differingOutputs(ref, got map[string]string) []string {
	var differ []string
	for k, v := range ref {
		if got[k] != v {
			differ = append(differ, k)
		}
	}
	sort.Strings(differ)
	return differ
}

func sampleOutputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	samples, err := filepath.Glob(filepath.Join(dir, "sample_*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		files, err := os.ReadDir(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			path := filepath.Join(s, f.Name())
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			key := filepath.Join(filepath.Base(s), f.Name())
			if f.Name() == "sample.json" {
				var rec exec.SampleRecord
				if err := json.Unmarshal(data, &rec); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				out[key+" latent_sha256"] = rec.LatentSHA256
				continue
			}
			out[key] = string(data)
		}
	}
	return out
}

// TestLayoutsGiveIdenticalVideosORT: the promise "same videos whatever the
// layout", through ONNX Runtime with the tiny model (the executor's own
// test uses an element-wise fake model): one stage, two stages, two
// replicas, micro-batch 2 and transport tcp give byte-identical frames,
// GIFs and final latents for the same samples.
func TestLayoutsGiveIdenticalVideosORT(t *testing.T) {
	needORT(t)
	t.Setenv(envWorker, "1") // transport tcp re-executes this binary as vdexec
	inproc := writePlan(t)
	tcp := writePlan(t, "transport: inproc", "transport: tcp")
	common := []string{"--samples", "4", "--steps", "4"}
	layouts := []struct {
		name string
		plan string
		args []string
	}{
		{"one stage", inproc, []string{"--devices", "1"}},
		{"two stages", inproc, nil},
		{"two replicas", inproc, []string{"--replicas", "2"}},
		{"micro-batch 2", inproc, []string{"--micro-batch", "2"}},
		{"tcp two stages", tcp, []string{"--timeout", "60s"}},
	}
	var ref map[string]string
	for i, l := range layouts {
		dir := filepath.Join(t.TempDir(), "run")
		args := append(append([]string{"run", l.plan, "--out", dir}, common...), l.args...)
		if _, errOut, err := runApp(t, args...); err != nil {
			t.Fatalf("%s: %v\n%s", l.name, err, errOut)
		}
		got := sampleOutputs(t, dir)
		if i == 0 {
			ref = got
			// 4 samples × (8 frames + GIF + latent hash).
			if len(ref) != 4*10 {
				keys := make([]string, 0, len(ref))
				for k := range ref {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				t.Fatalf("%s: %d outputs, want 40: %s", l.name, len(ref), strings.Join(keys, ", "))
			}
			continue
		}
		if len(got) != len(ref) {
			t.Errorf("%s: %d outputs, %s %d", l.name, len(got), layouts[0].name, len(ref))
		}
		if differ := differingOutputs(ref, got); len(differ) > 0 {
			t.Errorf("%s differs from %s in %d outputs: %s", l.name, layouts[0].name, len(differ), strings.Join(differ, ", "))
		}
	}
}
