package study

import (
	"strings"
	"testing"
	"time"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// simTestdata holds the simulator's golden scenarios, which the studies
// reuse as plans.
const simTestdata = "../sim/testdata/"

// day is the date the tests stamp hindsight profiles with.
var day = time.Date(2026, 3, 4, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600))

// TestHindsightReproducesRun: costs read off a run's own spans, simulated
// again, give that run back, host work and first encode and decode
// included. A simulated timeline stands in for the
// measurement, so the answer is known exactly (up to rounding of the
// per-step means to whole nanoseconds).
func TestHindsightReproducesRun(t *testing.T) {
	for _, name := range []string{"blocking-3stage", "buffered-3stage", "microbatch-poisson-replicas"} {
		p, err := plan.Load(simTestdata + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		// Link set-up is paid once per link and would be averaged into every
		// hand-off by Hindsight: leave it out so the round trip is exact.
		prof := *p.Profile
		prof.Links = map[string]plan.LinkCosts{}
		for k, l := range p.Profile.Links {
			l.SetupMS = 0
			l.ReceiveUS = 250 // one receive time on every link: Hindsight reads one
			prof.Links[k] = l
		}
		// The overheads are read off host spans and first encode and
		// decode spans: give each some.
		prof.Devices = map[string]plan.DeviceCosts{}
		for k, d := range p.Profile.Devices {
			d.SampleFirstMS, d.SampleLastMS = 0.7, 1.3
			// Warm-up calls well above 1.1 × the steady time, as
			// plan.SplitWarm reads them.
			if d.EncodeMS > 0 {
				d.EncodeFirstMS = []float64{2*d.EncodeMS + 5, 1.5*d.EncodeMS + 3}
			}
			if d.DecodeMS > 0 {
				d.DecodeFirstMS = []float64{3*d.DecodeMS + 9, 2*d.DecodeMS + 4}
			}
			prof.Devices[k] = d
		}
		p.Profile = &prof
		first, err := sim.Run(p, sim.Options{Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		hp, err := Hindsight(p, first.Timeline, day)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, err := sim.Run(hp, sim.Options{Trace: true})
		if err != nil {
			t.Fatalf("%s: simulate hindsight: %v", name, err)
		}
		done := func(tl *timeline.Timeline) map[int]int64 {
			m := map[int]int64{}
			for _, s := range tl.Samples {
				m[s.ID] = s.Done
			}
			return m
		}
		a, b := done(first.Timeline), done(again.Timeline)
		if len(a) != len(b) {
			t.Fatalf("%s: %d samples, hindsight %d", name, len(a), len(b))
		}
		for id, d := range a {
			if diff := b[id] - d; diff < -100 || diff > 100 {
				t.Errorf("%s: sample %d done at %d, hindsight %d", name, id, d, b[id])
			}
		}
		// The profile is dated by the caller, in UTC: no clock is read.
		if got, want := hp.Profile.Provenance.Date, day.UTC().Format(time.DateOnly); got != want {
			t.Errorf("%s: profile dated %s, want %s", name, got, want)
		}
		for _, d := range hp.Devices {
			if !strings.HasPrefix(d.Kind, "measured:") || d.Speed != 1 {
				t.Errorf("%s: device %s kind %q speed %v, want its own measured kind at speed 1", name, d.Name, d.Kind, d.Speed)
			}
		}
	}
}

func TestHindsightErrors(t *testing.T) {
	p, err := plan.Load(simTestdata + "blocking-3stage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tl := &timeline.Timeline{Spans: []timeline.Span{{Device: "gpu9", Kind: timeline.KindStep, FirstStep: 0, LastStep: 0, End: 1}}}
	if _, err := Hindsight(p, tl, day); err == nil || !strings.Contains(err.Error(), "gpu9") {
		t.Errorf("unknown device: %v", err)
	}
	if _, err := Hindsight(p, &timeline.Timeline{}, day); err == nil || !strings.Contains(err.Error(), "ran no step") {
		t.Errorf("empty timeline: %v", err)
	}
}

// TestHindsightFastFirstCall: a run whose first call happened to be faster
// than its steady steps (noise) still gives a hindsight profile: the first
// call counts as a steady one. It used to become 0 ms, which the profile
// rules refuse, and compare silently dropped its hindsight.
func TestHindsightFastFirstCall(t *testing.T) {
	p, err := plan.Load(simTestdata + "blocking-3stage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run, err := sim.Run(p, sim.Options{Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	tl := run.Timeline
	warm := 0
	for i := range tl.Spans {
		if s := &tl.Spans[i]; s.Warmup && s.Kind == timeline.KindStep {
			s.End = s.Start + (s.End-s.Start)/4 // a first call far faster than a step
			warm++
		}
	}
	if warm == 0 {
		t.Fatal("the simulated run has no warm-up spans to shorten")
	}
	hp, err := Hindsight(p, tl, day)
	if err != nil {
		t.Fatalf("hindsight of a run with fast first calls: %v", err)
	}
	for kind, c := range hp.Profile.Devices {
		for b, first := range c.FirstCallMS {
			if first < c.UNetMS[b] {
				t.Errorf("%s: first call %g ms below the step %g ms", kind, first, c.UNetMS[b])
			}
		}
	}
}

// TestReplayHindsight: replaying a run's own durations (SimulateHindsight)
// gives the run back exactly when the run followed the model's schedule,
// and shows a stall that the model does not have (the last stage starting
// a sample 5 ms after it could).
func TestReplayHindsight(t *testing.T) {
	for _, name := range []string{"blocking-3stage", "buffered-3stage"} {
		p, err := plan.Load(simTestdata + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		run, err := sim.Run(p, sim.Options{Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		meas := *run.Timeline
		meas.Meta.Source = "exec"
		h, err := SimulateHindsight(p, &meas, day)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equalDone(h.Result.Timeline, &meas) {
			t.Errorf("%s: replaying the run's own durations does not give it back", name)
		}
		// A stall: everything the last device does from its second
		// sample on starts 5 ms later, and the samples finish later.
		last := p.Devices[len(p.Devices)-1].Name
		stalled := meas
		stalled.Spans = append([]timeline.Span(nil), meas.Spans...)
		stalled.Samples = append([]timeline.Sample(nil), meas.Samples...)
		var from int64 = -1
		for _, s := range stalled.Spans {
			if s.Device == last && s.Kind == timeline.KindStep && (from < 0 || s.Start < from) {
				from = s.Start
			}
		}
		from++ // after the first sample's steps started there
		for i, s := range stalled.Spans {
			if s.Device == last && s.Start >= from {
				stalled.Spans[i].Start += 5e6
				stalled.Spans[i].End += 5e6
			}
		}
		for i := range stalled.Samples {
			if stalled.Samples[i].Done > from {
				stalled.Samples[i].Done += 5e6
			}
		}
		h2, err := SimulateHindsight(p, &stalled, day)
		if err != nil {
			t.Fatalf("%s stalled: %v", name, err)
		}
		if equalDone(h2.Result.Timeline, &stalled) {
			t.Errorf("%s: the replay reproduces a stall the model does not have", name)
		}
	}
}

func equalDone(a, b *timeline.Timeline) bool {
	m := map[int]int64{}
	for _, s := range a.Samples {
		m[s.ID] = s.Done
	}
	for _, s := range b.Samples {
		if m[s.ID] != s.Done {
			return false
		}
	}
	return len(a.Samples) == len(b.Samples)
}
