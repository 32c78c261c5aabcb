package plan

import (
	"strings"
	"testing"
)

// The fuzz targets' seed corpora are committed under testdata/fuzz/FuzzX/
// (the repository's plans and profiles and the bad inputs of
// cmd/vdsim/testdata/bad); go test runs every seed as a test.

// FuzzParse checks that no input makes the plan loader panic or overrun
// its bounds, and that what it accepts is resolved and passes Ready.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal + "devices: {count: 3, kind: a5000}\nlayout:\n  stages:\n    - {device: gpu0, steps: [0, 9]}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("devices: {count: 99999999}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err != nil {
			checkBounded(t, err)
			return
		}
		if len(p.Pipelines) == 0 {
			t.Errorf("accepted a plan without pipelines")
		}
		if err := p.Ready(); err != nil {
			t.Errorf("accepted a plan that Ready rejects: %v", err)
		}
	})
}

// FuzzParseProfile checks that no input makes the cost-profile loader
// panic or overrun its bounds, and that what it accepts has a UNet time
// for every device kind.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte("provenance: {source: estimate, date: 2026-01-02, reference: x}\nmodel: {family: tiny, frames: 1, latent: {channels: 1, height: 1, width: 1}, dtype: fp32}\ndevices: {cpu: {unet_ms: {1: 5}}}\n"))
	f.Add([]byte("devices: {a: {unet_ms: {0: 1, 99999999999999999999: 2}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		prof, err := ParseProfile(data, "fuzz.yaml")
		if err != nil {
			checkBounded(t, err)
			if !strings.HasPrefix(err.Error(), "profile: ") {
				t.Errorf("a profile's error does not start with profile: %v", err)
			}
			return
		}
		for k, d := range prof.Devices {
			if _, ok := d.StepNS(1); !ok {
				t.Errorf("accepted device kind %q without unet_ms", k)
			}
		}
	})
}

// checkBounded checks what every error must be: at most MaxErrors
// problems listed, each on one line.
func checkBounded(t *testing.T, err error) {
	t.Helper()
	if list, ok := err.(*Errors); ok {
		if len(list.List) > MaxErrors {
			t.Errorf("%d problems listed, more than %d", len(list.List), MaxErrors)
		}
		for _, e := range list.List {
			if strings.ContainsAny(e.Error(), "\n\r") {
				t.Errorf("a problem spans lines: %q", e.Error())
			}
		}
	}
}
