package exec

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdpp/vdpp/models"
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
	// The first call is estimated as the steady call plus the excess of the
	// session's warm-up calls over it, so the other warm-up calls' own noise
	// (a call a little faster than the mean) can take up to about a
	// millisecond off the 6 ms the fake sleeps; it must still stand clearly
	// above a steady call.
	if c.FirstCallMS[1] < 5 || c.FirstCallMS[1] <= c.UNetMS[1] || c.EncodeMS < 1 || c.DecodeMS < 1 {
		t.Errorf("first call %v (unet %v), encode %v, decode %v: want at least 5 and above the unet call, 1, 1 ms", c.FirstCallMS[1], c.UNetMS[1], c.EncodeMS, c.DecodeMS)
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
	b, err := prof.Marshal()
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

// encodeSpy records the conditioning images its model encodes.
type encodeSpy struct {
	models.Model
	mu   *sync.Mutex
	seen *[][]float32
}

func (e encodeSpy) Encode(s models.Shape, images, emb, lat []float32) error {
	e.mu.Lock()
	*e.seen = append(*e.seen, append([]float32(nil), images...))
	e.mu.Unlock()
	return e.Model.Encode(s, images, emb, lat)
}

// TestProfileImages: the probes encode the caller's conditioning images
// (samples 0..micro_batch-1) when ProfileOptions.Images is set, and a
// failing or malformed image stops the profile naming the sample.
func TestProfileImages(t *testing.T) {
	p := testPlan("prof-images", 3, 2, 2, [][2]int{{0, 2}})
	var mu sync.Mutex
	var seen [][]float32
	f := func(d plan.Device, st plan.Stage) (models.Model, error) {
		return encodeSpy{Model: &fakeModel{}, mu: &mu, seen: &seen}, nil
	}
	want := fakeImages(p)
	if _, err := Profile(context.Background(), p, f, ProfileOptions{Reps: 1, Warmup: 1, Images: want}); err != nil {
		t.Fatal(err)
	}
	// The probes encode samples 0 and 1 one at a time; the profile's short
	// run of the plan encodes its samples in micro-batches.
	var wants [][]float32
	for i := range 3 { // fakeImages repeats every 3 samples
		w, _ := want(i)
		wants = append(wants, w)
	}
	got := map[int]int{}
	for _, img := range seen {
		for len(img) > 0 {
			i := slices.IndexFunc(wants, func(w []float32) bool { return len(img) >= len(w) && reflect.DeepEqual(img[:len(w)], w) })
			if i < 0 {
				t.Fatalf("the profile encoded an image that is none of the caller's first %d", len(wants))
			}
			got[i]++
			img = img[len(wants[i]):]
		}
	}
	if got[0] == 0 || got[1] == 0 {
		t.Errorf("images of samples 0 and 1 encoded %d and %d times, want both", got[0], got[1])
	}

	errImage := errors.New("no such image")
	bad := func(i int) ([]float32, error) {
		if i == 1 {
			return nil, errImage
		}
		return want(i)
	}
	_, err := Profile(context.Background(), p, f, ProfileOptions{Reps: 1, Warmup: 1, Images: bad})
	if !errors.Is(err, errImage) || !strings.Contains(err.Error(), "sample 1") || !strings.Contains(err.Error(), "device cpu0") {
		t.Errorf("failing image: error %v, want it to wrap the image's error and name device cpu0 and sample 1", err)
	}
	short := func(i int) ([]float32, error) { return make([]float32, 5), nil }
	if _, err := Profile(context.Background(), p, f, ProfileOptions{Reps: 1, Warmup: 1, Images: short}); err == nil || !strings.Contains(err.Error(), "has 5 values") {
		t.Errorf("malformed image: error %v, want it to say the image has 5 values", err)
	}
}

// TestProfileRefusesUnresolvedPlan: Profile, like Run, takes only a plan
// that plan.Ready accepts (an unresolved one used to measure nothing, and
// a micro-batch of 0 to hang).
func TestProfileRefusesUnresolvedPlan(t *testing.T) {
	p := testPlan("unresolved", 4, 2, 1, [][2]int{{0, 1}, {2, 3}})
	p.Layout.MicroBatch = 0
	_, err := Profile(context.Background(), p, fakeFactory(fakeModel{}), ProfileOptions{Reps: 1, Images: fakeImages(p)})
	if err == nil || !strings.Contains(err.Error(), "layout.micro_batch") {
		t.Fatalf("profile of a plan with micro_batch 0: err %v", err)
	}
}

// The profile's run of the plan releases every sample at once: a workload
// that arrives slowly (one sample a minute here) would otherwise make the
// profile last as long as the workload.
func TestProfileRunIgnoresArrivalPace(t *testing.T) {
	p := testPlan("prof-slow-arrivals", 3, 4, 1, [][2]int{{0, 1}, {2, 2}})
	p.Workload.Arrival = plan.Arrival{Kind: plan.ArrivalPoisson, Rate: 1.0 / 60}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prof, err := Profile(ctx, p, fakeFactory(fakeModel{}), ProfileOptions{Reps: 1, Warmup: 1, Images: fakeImages(p)})
	if err != nil {
		t.Fatalf("profile of a slowly arriving workload: %v", err)
	}
	if !strings.Contains(prof.Provenance.Notes, "a run of the plan with") {
		t.Errorf("no note of the run of the plan:\n%s", prof.Provenance.Notes)
	}
}
