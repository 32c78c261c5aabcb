package plan

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// readyPlan is a small resolved plan: 4 steps on two devices, batch of 3.
func readyPlan(t *testing.T) *Plan {
	t.Helper()
	p := &Plan{
		Name:     "ready",
		Model:    Model{Family: "tiny", Frames: 2, Latent: Latent{4, 8, 8}},
		Sampler:  Sampler{Steps: 4},
		Devices:  Devices{{Name: "a", Kind: "cpu"}, {Name: "b", Kind: "cpu"}},
		Workload: Workload{Samples: 3},
	}
	p.EnsureDefaults()
	if err := p.Resolve(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnumsValid(t *testing.T) {
	for _, v := range TransportInproc.Values() {
		if !v.Valid() {
			t.Errorf("transport %s not valid", v)
		}
	}
	for _, bad := range []bool{Transport("").Valid(), Transport("gloo").Valid(), Handoff("async").Valid(),
		ArrivalKind("burst").Valid(), Assignment("random").Valid(), End("middle").Valid(), Provider("tpu").Valid(), Dispatch("random").Valid()} {
		if bad {
			t.Error("an unknown word is valid")
		}
	}
	if !ArrivalPoisson.Valid() || !AssignBalanced.Valid() || !EndLast.Valid() || !HandoffBuffered.Valid() || !ProviderCUDA.Valid() || !DispatchRoundRobin.Valid() {
		t.Error("a known word is not valid")
	}
}

// TestReady: what sim and exec refuse, named by the plan's own checks.
func TestReady(t *testing.T) {
	cases := []struct {
		name string
		edit func(p *Plan)
		want string // "" = ready
	}{
		{"resolved", func(p *Plan) {}, ""},
		{"no defaults", func(p *Plan) { p.defaulted = false }, "defaults not filled"},
		{"no layout", func(p *Plan) { p.Pipelines = nil }, "no resolved layout"},
		{"micro-batch changed", func(p *Plan) { p.Layout.MicroBatch = -1 }, "layout.micro_batch: must be at least 1"},
		{"handoff changed", func(p *Plan) { p.Layout.Handoff = "async" }, `layout.handoff: "async" is not allowed; want one of blocking, buffered`},
		{"gap", func(p *Plan) { p.Pipelines[0].Stages[1].First = 3 }, "steps 2..2 are not assigned"},
		{"more steps", func(p *Plan) { p.Sampler.Steps = 6 }, "steps 4..5 are not assigned"},
		{"wrong device index", func(p *Plan) { p.Pipelines[0].Stages[1].DevIdx = 0 }, `device "b" at index 0`},
		{"decode moved", func(p *Plan) { p.Pipelines[0].Stages[0].Decode = true }, "decode true, but the plan makes it pipeline 0 stage 0 on a (device 0), steps 0..1, encode true, decode false"},
		{"stage's pipeline", func(p *Plan) { p.Pipelines[0].Stages[1].Pipeline = 3 }, "is pipeline 3 stage 1"},
		{"stage's index", func(p *Plan) { p.Pipelines[0].Stages[1].Index = 9 }, "is pipeline 0 stage 9"},
		{"pipeline's index", func(p *Plan) { p.Pipelines[0].Index = 4 }, "pipelines[0]: has index 4"},
		{"negative unet", func(p *Plan) { p.Profile = costProfile(-5, 1) }, "devices.cpu.unet_ms[1]: must be > 0 ms, got -5"},
		{"NaN bandwidth", func(p *Plan) { p.Profile = costProfile(5, math.NaN()) }, "links.default.bandwidth_gbps: must be ≥ 0 GB/s (0 or +Inf: latency only), got NaN"},
		{"profile without the hop", func(p *Plan) { p.Profile = costProfile(5, 1); p.Profile.Links = nil }, `link kind "default" (a→b) has no costs`},
		{"usable profile", func(p *Plan) { p.Profile = costProfile(5, 0) }, ""},
		{"infinite bandwidth", func(p *Plan) { p.Profile = costProfile(5, math.Inf(1)) }, ""},
	}
	for _, c := range cases {
		p := readyPlan(t)
		c.edit(p)
		err := p.Ready()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err %v, want one with %q", c.name, err, c.want)
		}
	}
	var nilPlan *Plan
	if nilPlan.Ready() == nil {
		t.Error("nil plan is ready")
	}
}

// costProfile is a profile built in code for readyPlan's devices: UNet
// time unet ms, link bandwidth bw GB/s (0: pure latency).
func costProfile(unet, bw float64) *Profile {
	return &Profile{
		Devices: map[string]DeviceCosts{"cpu": {UNetMS: map[int]float64{1: unet}}},
		Links:   map[string]LinkCosts{DefaultLink: {LatencyUS: 3, BandwidthGBps: bw}},
	}
}

func TestUsePipelines(t *testing.T) {
	stages := func(dev ...string) Pipeline {
		var pl Pipeline
		for i, d := range dev {
			pl.Stages = append(pl.Stages, Stage{Device: d, First: StepIndex(2 * i), Last: StepIndex(2*i + 1)})
		}
		return pl
	}
	cases := []struct {
		name  string
		pipes []Pipeline
		want  string
	}{
		{"two stages", []Pipeline{stages("a", "b")}, ""},
		{"shared across pipelines", []Pipeline{stages("a", "b"), stages("b", "a")}, ""},
		{"same device twice in a pipeline", []Pipeline{stages("a", "a")}, "a device runs one stage"},
		{"unknown device", []Pipeline{stages("a", "z")}, `device "z" is not in devices`},
		{"short", []Pipeline{stages("a")}, "steps 2..3 are not assigned"},
		{"none", nil, "no pipelines"},
	}
	for _, c := range cases {
		p := readyPlan(t)
		before := p.Pipelines
		err := p.UsePipelines(c.pipes)
		switch {
		case c.want == "":
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if err := p.Ready(); err != nil {
				t.Errorf("%s: not ready after UsePipelines: %v", c.name, err)
			}
			for _, pl := range p.Pipelines {
				if st := pl.Stages; !st[0].Encode || !st[len(st)-1].Decode || st[0].DevIdx != indexOf(p, st[0].Device) {
					t.Errorf("%s: ends or device indices not filled: %+v", c.name, st)
				}
			}
		case err == nil || !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: err %v, want one with %q", c.name, err, c.want)
		case len(p.Pipelines) != len(before):
			t.Errorf("%s: a failed UsePipelines changed the layout", c.name)
		}
	}
}

func indexOf(p *Plan, name string) int {
	for i, d := range p.Devices {
		if d.Name == name {
			return i
		}
	}
	return -1
}

// TestReleases checks each arrival process against its definition,
// computed here independently.
func TestReleases(t *testing.T) {
	w := Workload{Samples: 50, Seed: 9, Arrival: Arrival{Kind: ArrivalPoisson, Rate: 3}}
	got := w.ReleaseTimes()
	rng := rand.New(rand.NewPCG(9, StreamArrival))
	var t0 int64
	for i, g := range got {
		if g != t0 {
			t.Fatalf("poisson sample %d at %d ns, want %d", i, g, t0)
		}
		t0 += int64(math.Round(rng.ExpFloat64() / 3 * 1e9))
	}
	w.Arrival = Arrival{Kind: ArrivalInterval, IntervalMS: 0.3}
	for i, g := range w.ReleaseTimes() {
		if want := int64(math.Round(float64(i) * 0.3 * 1e6)); g != want {
			t.Fatalf("interval sample %d at %d ns, want %d", i, g, want)
		}
	}
	w.Arrival = Arrival{Kind: ArrivalBatch}
	for i, g := range w.ReleaseTimes() {
		if g != 0 {
			t.Fatalf("batch sample %d at %d ns", i, g)
		}
	}
	// The stream and the list agree, and a second stream starts over.
	w.Arrival = Arrival{Kind: ArrivalPoisson, Rate: 100}
	list, r := w.ReleaseTimes(), w.Releases()
	for i := range list {
		if v := r.Next(); v != list[i] {
			t.Fatalf("stream sample %d at %d, list %d", i, v, list[i])
		}
	}
}

// TestHopCost: a measured transport prices every hop; otherwise the link
// kind does; within a device nothing moves.
func TestHopCost(t *testing.T) {
	p := readyPlan(t)
	p.Links.Overrides = []LinkOverride{{Between: [2]string{"a", "b"}, Kind: "slow"}}
	p.Profile = &Profile{Links: map[string]LinkCosts{"slow": {LatencyUS: 100, BandwidthGBps: 1}}}
	lat := p.Model.LatentBytes()
	h, ok := p.HopCost(0, 1)
	if !ok || h.Kind != "slow" || h.Measured {
		t.Fatalf("link hop: %+v %v", h, ok)
	}
	if ns, _ := p.HopNS(0, 1, 2); ns != 100_000+2*lat {
		t.Errorf("link hop of 2 latents: %d ns, want %d", ns, 100_000+2*lat)
	}
	if ns, ok := p.HopNS(1, 1, 2); !ok || ns != 0 {
		t.Errorf("hop within a device: %d ns %v", ns, ok)
	}
	p.Profile.Transports = map[string]LinkCosts{"inproc": {LatencyUS: 5}}
	if h, _ := p.HopCost(0, 1); !h.Measured || h.LatencyUS != 5 || !p.TransportMeasured() {
		t.Errorf("measured transport not used: %+v", h)
	}
	p.Transport = TransportTCP // measured inproc only: the link prices it
	if h, _ := p.HopCost(0, 1); h.Measured || h.LatencyUS != 100 {
		t.Errorf("tcp hop with only inproc measured: %+v", h)
	}
	p.Profile.Links = nil
	if _, ok := p.HopCost(0, 1); ok {
		t.Error("hop without costs reports ok")
	}
}
