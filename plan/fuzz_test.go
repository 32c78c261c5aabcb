package plan

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes the loader panic, and that what it
// accepts is resolved.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../configs/*.yaml")
	profiles, _ := filepath.Glob("../configs/profiles/*.yaml")
	for _, name := range append(files, profiles...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal + "devices: {count: 3, kind: a5000}\nlayout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("devices: {count: 99999999}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err == nil && len(p.Pipelines) == 0 {
			t.Errorf("accepted a plan without pipelines")
		}
		_, _ = ParseProfile(data, "fuzz.yaml")
	})
}
