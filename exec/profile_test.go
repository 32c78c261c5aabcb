package exec

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
)

// TestProfile measures a fake model whose calls sleep known durations:
// the profile must have every batch size, costs at least the sleeps, load
// back through plan.ParseProfile and drive the simulator.
func TestProfile(t *testing.T) {
	p := testPlan("prof", 4, 3, 2, [][2]int{{0, 1}, {2, 3}})
	p.Model.Family = "tiny" // profiles name a real family
	costs := fakeModel{unet: 2 * time.Millisecond, firstCall: 6 * time.Millisecond, encode: time.Millisecond, decode: time.Millisecond}
	prof, err := Profile(context.Background(), p, fakeFactory(costs), ProfileOptions{Reps: 3, Warmup: 1, TCP: true, Runtime: "fake"})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := prof.Devices["cpu"]
	if !ok {
		t.Fatalf("no costs for device kind cpu: %+v", prof.Devices)
	}
	for b := 1; b <= 2; b++ {
		if c.UNetMS[b] < 2 {
			t.Errorf("unet_ms[%d] = %v, want at least the 2 ms the fake model sleeps", b, c.UNetMS[b])
		}
	}
	if c.FirstCallMS[1] < 6 || c.EncodeMS < 1 || c.DecodeMS < 1 {
		t.Errorf("first call %v, encode %v, decode %v: want at least 6, 1, 1 ms", c.FirstCallMS[1], c.EncodeMS, c.DecodeMS)
	}
	if _, ok := prof.Transports["inproc"]; !ok {
		t.Errorf("no inproc transport")
	}
	if _, ok := prof.Transports["tcp"]; !ok {
		t.Errorf("no tcp transport")
	}
	if prof.Provenance.Source != "measured" || prof.Provenance.Machine == "" || prof.Provenance.Date == "" {
		t.Errorf("provenance %+v", prof.Provenance)
	}
	b, err := MarshalProfile(prof)
	if err != nil {
		t.Fatal(err)
	}
	back, err := plan.ParseProfile(b, "measured.yaml")
	if err != nil {
		t.Fatalf("profile does not load back: %v\n%s", err, b)
	}
	if back.Devices["cpu"].UNetMS[2] != c.UNetMS[2] {
		t.Errorf("round trip changed unet_ms: %v vs %v", back.Devices["cpu"].UNetMS, c.UNetMS)
	}
	p.Profile = back
	if _, err := sim.Run(p, sim.Options{}); err != nil {
		t.Errorf("the simulator rejects the measured profile: %v", err)
	}
}

func TestRelStd(t *testing.T) {
	// Sample standard deviation of 1, 2, 3 is 1, the mean 2.
	if got := relStd([]float64{1, 2, 3}); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("relStd(1,2,3) = %v, want 0.5", got)
	}
	if got := relStd([]float64{4}); got != 0 {
		t.Errorf("relStd of one value = %v, want 0", got)
	}
}
