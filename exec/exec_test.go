package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vdpp/vdpp/exec/nccl"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// readOutputs returns every file of every sample directory in dir, with
// sample.json reduced to the fields that must not depend on the layout.
func readOutputs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(filepath.Base(filepath.Dir(path)), ".") {
			t.Errorf("temporary output left behind: %s", rel)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if filepath.Base(path) == "sample.json" {
			var r SampleRecord
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			b = []byte(fmt.Sprintf("sample %d seed %d cond %q frames %d %dx%d latent %s", r.Sample, r.Seed, r.Conditioning, r.Frames, r.Width, r.Height, r.LatentSHA256))
		}
		out[rel] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runPlan(t *testing.T, p *plan.Plan, f Factory, opts Options) (*Result, error) {
	t.Helper()
	if opts.Images == nil {
		opts.Images = fakeImages(p)
	}
	return Run(context.Background(), p, f, opts)
}

// TestLayoutsGiveIdenticalOutputs: the same samples under 1, 2 and 3
// stages (even and uneven), replicas and hybrids give byte-identical
// videos and final latents.
func TestLayoutsGiveIdenticalOutputs(t *testing.T) {
	const steps, samples = 7, 5
	layouts := map[string][][][2]int{
		"1 stage":             {{{0, 6}}},
		"2 stages even":       {{{0, 3}, {4, 6}}},
		"3 stages uneven":     {{{0, 0}, {1, 5}, {6, 6}}},
		"2 replicas":          {{{0, 6}}, {{0, 6}}},
		"2 replicas x 2":      {{{0, 1}, {2, 6}}, {{0, 4}, {5, 6}}},
		"3 stages 1 per step": {{{0, 4}, {5, 5}, {6, 6}}},
	}
	names := make([]string, 0, len(layouts))
	for n := range layouts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, mb := range []int{1, 2} {
		for _, handoff := range plan.HandoffBlocking.Values() {
			var base map[string][]byte
			for _, name := range append([]string{"1 stage"}, names...) {
				p := testPlan(name, steps, samples, mb, layouts[name]...)
				p.Layout.Handoff = handoff
				dir := t.TempDir()
				res, err := runPlan(t, p, fakeFactory(fakeModel{}), Options{OutDir: dir})
				if err != nil {
					t.Fatalf("%s mb %d %s: %v", name, mb, handoff, err)
				}
				if res.Done != samples || len(res.Outputs) != samples {
					t.Fatalf("%s: %d samples done, %d outputs, want %d", name, res.Done, len(res.Outputs), samples)
				}
				if err := timeline.ValidateSteps(res.Timeline, steps); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				got := readOutputs(t, dir)
				if base == nil {
					base = got
					// Different samples must give different outputs, or
					// the comparison proves nothing.
					if bytes.Equal(got["sample_00000/sample.json"], got["sample_00001/sample.json"]) {
						t.Fatalf("samples 0 and 1 have the same output")
					}
					if len(got) != samples*(2+2) { // 2 frames, gif, json
						t.Fatalf("%d output files, want %d", len(got), samples*4)
					}
					continue
				}
				for k, v := range base {
					if !bytes.Equal(got[k], v) {
						t.Errorf("mb %d %s: layout %q: %s differs from the 1-stage run", mb, handoff, name, k)
					}
				}
			}
		}
	}
}

// handSpans is the timeline worked out by hand for a 2-stage plan with
// steps [0,1] and [2,3], three samples released together, encode 1 ms,
// UNet 10 ms (the first call of a device 15 ms) and decode 2 ms.
func handSpans(blocking bool) []timeline.Span {
	ms := func(v int) int64 { return int64(v) * 1e6 }
	sp := func(dev string, k timeline.Kind, sample, stage, first, last, start, end int, peer string, warm bool) timeline.Span {
		return timeline.Span{Device: dev, Kind: k, Samples: []int{sample}, Stage: stage, FirstStep: first, LastStep: last, Start: ms(start), End: ms(end), Peer: peer, Warmup: warm}
	}
	E, S, D, W := timeline.KindEncode, timeline.KindStep, timeline.KindDecode, timeline.KindWait
	Tx, Rx := timeline.KindSend, timeline.KindRecv
	common := []timeline.Span{
		sp("cpu0", E, 0, 0, -1, -1, 0, 1, "", false),
		sp("cpu0", S, 0, 0, 0, 1, 1, 26, "", true), // 15 + 10
		sp("cpu0", Tx, 0, 0, -1, -1, 26, 26, "cpu1", false),
		sp("cpu1", Rx, 0, 1, -1, -1, 26, 26, "cpu0", false),
		sp("cpu1", S, 0, 1, 2, 3, 26, 51, "", true),
		sp("cpu1", D, 0, 1, -1, -1, 51, 53, "", false),
		sp("cpu0", E, 1, 0, -1, -1, 26, 27, "", false),
		sp("cpu0", S, 1, 0, 0, 1, 27, 47, "", false),
	}
	if blocking {
		// cpu1 is ready again at 53: cpu0 waits from 47 to 53, and so on.
		return append(common,
			sp("cpu0", W, 1, 0, -1, -1, 47, 53, "cpu1", false),
			sp("cpu0", Tx, 1, 0, -1, -1, 53, 53, "cpu1", false),
			sp("cpu1", Rx, 1, 1, -1, -1, 53, 53, "cpu0", false),
			sp("cpu1", S, 1, 1, 2, 3, 53, 73, "", false),
			sp("cpu1", D, 1, 1, -1, -1, 73, 75, "", false),
			sp("cpu0", E, 2, 0, -1, -1, 53, 54, "", false),
			sp("cpu0", S, 2, 0, 0, 1, 54, 74, "", false),
			sp("cpu0", W, 2, 0, -1, -1, 74, 75, "cpu1", false),
			sp("cpu0", Tx, 2, 0, -1, -1, 75, 75, "cpu1", false),
			sp("cpu1", Rx, 2, 1, -1, -1, 75, 75, "cpu0", false),
			sp("cpu1", S, 2, 1, 2, 3, 75, 95, "", false),
			sp("cpu1", D, 2, 1, -1, -1, 95, 97, "", false),
		)
	}
	// Buffered: cpu0 never waits; cpu1 takes queued samples when free.
	return append(common,
		sp("cpu0", Tx, 1, 0, -1, -1, 47, 47, "cpu1", false),
		sp("cpu1", Rx, 1, 1, -1, -1, 47, 47, "cpu0", false),
		sp("cpu1", S, 1, 1, 2, 3, 53, 73, "", false),
		sp("cpu1", D, 1, 1, -1, -1, 73, 75, "", false),
		sp("cpu0", E, 2, 0, -1, -1, 47, 48, "", false),
		sp("cpu0", S, 2, 0, 0, 1, 48, 68, "", false),
		sp("cpu0", Tx, 2, 0, -1, -1, 68, 68, "cpu1", false),
		sp("cpu1", Rx, 2, 1, -1, -1, 68, 68, "cpu0", false),
		sp("cpu1", S, 2, 1, 2, 3, 75, 95, "", false),
		sp("cpu1", D, 2, 1, -1, -1, 95, 97, "", false),
	)
}

func sortedSpans(spans []timeline.Span) []timeline.Span {
	out := append([]timeline.Span(nil), spans...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ka := fmt.Sprintf("%s %s %012d %012d %v", a.Device, a.Kind, a.Start, a.End, a.Samples)
		kb := fmt.Sprintf("%s %s %012d %012d %v", b.Device, b.Kind, b.Start, b.End, b.Samples)
		return ka < kb
	})
	return out
}

func diffSpans(t *testing.T, what string, got, want []timeline.Span) {
	t.Helper()
	g, w := sortedSpans(got), sortedSpans(want)
	for i := 0; i < max(len(g), len(w)); i++ {
		switch {
		case i >= len(g):
			t.Errorf("%s: missing span %+v", what, w[i])
		case i >= len(w):
			t.Errorf("%s: extra span %+v", what, g[i])
		case !reflect.DeepEqual(g[i], w[i]):
			t.Errorf("%s: span %d:\n got %+v\nwant %+v", what, i, g[i], w[i])
		}
	}
}

var handCosts = fakeModel{unet: 10 * time.Millisecond, firstCall: 15 * time.Millisecond, encode: time.Millisecond, decode: 2 * time.Millisecond}

// TestSpansByHand runs a small plan under a fake clock and checks every
// span against the timeline worked out by hand, for both hand-off modes.
func TestSpansByHand(t *testing.T) {
	for _, handoff := range plan.HandoffBlocking.Values() {
		t.Run(string(handoff), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := testPlan("hand", 4, 3, 1, [][2]int{{0, 1}, {2, 3}})
				p.Layout.Handoff = handoff
				res, err := runPlan(t, p, fakeFactory(handCosts), Options{})
				if err != nil {
					t.Fatal(err)
				}
				diffSpans(t, string(handoff), res.Timeline.Spans, handSpans(handoff == plan.HandoffBlocking))
				want := []timeline.Sample{{ID: 0, Release: 0, Done: 53e6}, {ID: 1, Done: 75e6}, {ID: 2, Done: 97e6}}
				if !reflect.DeepEqual(res.Timeline.Samples, want) {
					t.Errorf("samples %+v, want %+v", res.Timeline.Samples, want)
				}
			})
		})
	}
}

// simProfile is the cost profile matching a fakeModel.
func simProfile(m fakeModel, mb int) *plan.Profile {
	msf := func(d time.Duration) float64 { return float64(d) / 1e6 }
	unet := map[int]float64{}
	first := map[int]float64{}
	for b := 1; b <= mb; b++ {
		unet[b] = msf(m.unet)
		first[b] = msf(m.firstCall)
	}
	return &plan.Profile{
		Provenance: plan.Provenance{Source: "estimate", Date: "2025-01-01", Reference: "exec test fake model"},
		Model:      plan.ProfileModel{Family: "fake"},
		Devices: map[string]plan.DeviceCosts{"cpu": {
			UNetMS: unet, FirstCallMS: first, EncodeMS: msf(m.encode), DecodeMS: msf(m.decode),
		}},
		Links:      map[string]plan.LinkCosts{"default": {}},
		Transports: map[string]plan.LinkCosts{"inproc": {}},
	}
}

// TestMatchesSimulator: under a fake clock with the fake model's costs,
// the executor produces the simulator's spans and sample records exactly,
// for several plans (pipelines, replicas, uneven splits, micro-batches,
// both hand-off modes, poisson and interval arrivals).
func TestMatchesSimulator(t *testing.T) {
	cases := []struct {
		name   string
		mb     int
		splits [][][2]int
		arr    plan.Arrival
	}{
		{"2 stages", 1, [][][2]int{{{0, 1}, {2, 3}}}, plan.Arrival{Kind: "batch"}},
		{"3 uneven", 1, [][][2]int{{{0, 0}, {1, 2}, {3, 3}}}, plan.Arrival{Kind: "batch"}},
		{"hybrid", 1, [][][2]int{{{0, 2}, {3, 3}}, {{0, 1}, {2, 3}}}, plan.Arrival{Kind: "batch"}},
		{"micro-batch 2", 2, [][][2]int{{{0, 1}, {2, 3}}}, plan.Arrival{Kind: "batch"}},
		{"poisson", 1, [][][2]int{{{0, 1}, {2, 3}}}, plan.Arrival{Kind: "poisson", Rate: 40}},
		{"interval", 2, [][][2]int{{{0, 2}, {3, 3}}}, plan.Arrival{Kind: "interval", IntervalMS: 7}},
	}
	for _, c := range cases {
		for _, handoff := range plan.HandoffBlocking.Values() {
			t.Run(c.name+" "+string(handoff), func(t *testing.T) {
				p := testPlan(c.name, 4, 7, c.mb, c.splits...)
				p.Layout.Handoff = handoff
				p.Workload.Arrival = c.arr
				p.Profile = simProfile(handCosts, c.mb)
				want, err := sim.Run(p, sim.Options{Trace: true})
				if err != nil {
					t.Fatalf("sim: %v", err)
				}
				synctest.Test(t, func(t *testing.T) {
					res, err := runPlan(t, p, fakeFactory(handCosts), Options{})
					if err != nil {
						t.Fatal(err)
					}
					sameAsSim(t, res.Timeline, want.Timeline)
				})
			})
		}
	}
}

// TestMatchesSimulatorWithOverheads holds the executor to the simulator
// with every overhead the model has, under a fake clock where the test
// hooks give them their cost: per-sample host work on the first and last
// stage, a receive time per hand-off, transfers that take time (latency
// and bytes over bandwidth), first encode and decode warm-up, devices of
// different speeds, micro-batches, both hand-off modes. In buffered mode
// the in-process link copies a micro-batch on the sender's goroutine,
// where the model overlaps the transfer with the sender's next work, so
// transfers are free there (the simulator's buffered transfers are checked
// by its own reference recursion).
func TestMatchesSimulatorWithOverheads(t *testing.T) {
	cases := []struct {
		name   string
		mb     int
		splits [][][2]int
		speeds []float64
		arr    plan.Arrival
	}{
		{"2 stages", 1, [][][2]int{{{0, 1}, {2, 3}}}, []float64{1, 2}, plan.Arrival{Kind: "batch"}},
		{"3 uneven", 2, [][][2]int{{{0, 0}, {1, 2}, {3, 3}}}, []float64{0.5, 1, 1.25}, plan.Arrival{Kind: "batch"}},
		{"1 stage", 1, [][][2]int{{{0, 3}}}, []float64{1}, plan.Arrival{Kind: "interval", IntervalMS: 9}},
		{"hybrid", 1, [][][2]int{{{0, 2}, {3, 3}}, {{0, 1}, {2, 3}}}, []float64{1, 0.8, 2, 1}, plan.Arrival{Kind: "poisson", Rate: 60}},
	}
	costs := handCosts
	costs.encodeWarm, costs.decodeWarm = 4*time.Millisecond, 7*time.Millisecond
	const firstMS, lastMS, receiveUS, latencyUS, bwGBps = 0.75, 1.5, 300, 1200, 0.0005
	for _, c := range cases {
		for _, handoff := range plan.HandoffBlocking.Values() {
			t.Run(c.name+" "+string(handoff), func(t *testing.T) {
				p := testPlan(c.name, 4, 7, c.mb, c.splits...)
				p.Layout.Handoff = handoff
				p.Workload.Arrival = c.arr
				for i := range p.Devices {
					p.Devices[i].Speed = c.speeds[i]
				}
				p.Profile = simProfile(costs, c.mb)
				d := p.Profile.Devices["cpu"]
				d.SampleFirstMS, d.SampleLastMS = firstMS, lastMS
				d.EncodeFirstMS = []float64{d.EncodeMS + float64(costs.encodeWarm)/1e6}
				d.DecodeFirstMS = []float64{d.DecodeMS + float64(costs.decodeWarm)/1e6}
				p.Profile.Devices["cpu"] = d
				hop := plan.LinkCosts{ReceiveUS: receiveUS}
				if handoff == plan.HandoffBlocking {
					hop.LatencyUS, hop.BandwidthGBps = latencyUS, bwGBps
				}
				p.Profile.Transports["inproc"] = hop
				want, err := sim.Run(p, sim.Options{Trace: true})
				if err != nil {
					t.Fatalf("sim: %v", err)
				}
				hooks := &testHooks{
					host: func(role string, n int) {
						switch role {
						case "first":
							time.Sleep(time.Duration(n) * time.Duration(firstMS*1e6))
						case "last":
							time.Sleep(time.Duration(n) * time.Duration(lastMS*1e6))
						case "receive":
							time.Sleep(time.Duration(hop.ReceiveNS()))
						}
					},
					xfer: func(n int) { time.Sleep(time.Duration(hop.TransferNS(int64(n) * p.Model.LatentBytes()))) },
				}
				synctest.Test(t, func(t *testing.T) {
					res, err := runPlan(t, p, fakeFactory(costs), Options{hooks: hooks})
					if err != nil {
						t.Fatal(err)
					}
					if n := countKind(want.Timeline.Spans, timeline.KindHost); n == 0 {
						t.Fatal("the simulator made no host spans: the case tests nothing")
					}
					sameAsSim(t, res.Timeline, want.Timeline)
				})
			})
		}
	}
}

// sameAsSim checks that a run's spans and sample records are the
// simulator's.
func sameAsSim(t *testing.T, got, want *timeline.Timeline) {
	t.Helper()
	diffSpans(t, "exec vs sim", got.Spans, want.Spans)
	ws := append([]timeline.Sample(nil), want.Samples...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	if !reflect.DeepEqual(got.Samples, ws) {
		t.Errorf("samples\n got %+v\nwant %+v", got.Samples, ws)
	}
}

func countKind(spans []timeline.Span, k timeline.Kind) int {
	n := 0
	for _, s := range spans {
		if s.Kind == k {
			n++
		}
	}
	return n
}

// TestInterrupt cancels a run after its first sample and checks both
// modes: finish completes the admitted samples, abandon drops them; no
// partial output is ever left and the timeline is returned.
func TestInterrupt(t *testing.T) {
	for _, mode := range []string{InterruptFinish, InterruptAbandon} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := testPlan("interrupt", 4, 6, 1, [][2]int{{0, 1}, {2, 3}})
				dir := t.TempDir()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				opts := Options{OutDir: dir, OnInterrupt: mode, Images: fakeImages(p)}
				go func() {
					time.Sleep(60 * time.Millisecond)
					cancel()
				}()
				res, err := Run(ctx, p, fakeFactory(handCosts), opts)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Interrupted {
					t.Errorf("Interrupted not set")
				}
				// By hand (see handSpans): at 60 ms sample 0 is done (53),
				// sample 1 runs on stage 1 (53–75), sample 2 on stage 0
				// (54–74), samples 3–5 wait to be admitted.
				wantDone := 1
				if mode == InterruptFinish {
					wantDone = 3 // samples 1 and 2 had been admitted
				}
				if res.Done != wantDone {
					t.Errorf("%d samples done, want %d", res.Done, wantDone)
				}
				files := readOutputs(t, dir)
				if len(files) != 4*wantDone {
					t.Errorf("%d output files, want %d", len(files), 4*wantDone)
				}
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), ".") {
						t.Errorf("partial output %s", e.Name())
					}
				}
				if err := res.Timeline.Validate(); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

// cancelAt cancels a context when the n-th sample record arrives.
type cancelAt struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (c *cancelAt) AddSpan(timeline.Span) {}

func (c *cancelAt) AddSample(timeline.Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		c.cancel()
	}
}

// TestCancelAfterLastSample: a cancellation that arrives once every sample
// has finished, while the stages are still running (the decode stage
// records the last sample, then the context is cancelled), interrupted
// nothing: Interrupted stays false, in both modes.
func TestCancelAfterLastSample(t *testing.T) {
	for _, mode := range []string{InterruptFinish, InterruptAbandon} {
		t.Run(mode, func(t *testing.T) {
			p := testPlan("late-cancel", 4, 3, 1, [][2]int{{0, 1}, {2, 3}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := &cancelAt{n: p.Workload.Samples, cancel: cancel}
			res, err := Run(ctx, p, fakeFactory(fakeModel{}), Options{OnInterrupt: mode, Images: fakeImages(p), Recorder: rec})
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Err() == nil {
				t.Fatal("the context was not cancelled")
			}
			if res.Done != res.Total || res.Interrupted {
				t.Errorf("done %d of %d, interrupted %v: want all done, not interrupted", res.Done, res.Total, res.Interrupted)
			}
		})
	}
}

// TestFailureNamesStageAndSample: a UNet error on stage 1 stops the run
// with a message naming the stage, the device and the samples.
func TestFailureNamesStageAndSample(t *testing.T) {
	p := testPlan("fail", 4, 5, 1, [][2]int{{0, 1}, {2, 3}})
	dir := t.TempDir()
	f := func(d plan.Device, st plan.Stage) (models.Model, error) {
		m := &fakeModel{}
		if st.Index == 1 {
			m.failAt = 5 // third sample's first step on stage 1
		}
		return m, nil
	}
	res, err := runPlan(t, p, f, Options{OutDir: dir})
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, errFake) {
		t.Errorf("error does not wrap the model's: %v", err)
	}
	for _, want := range []string{"stage 1", "device cpu1", "samples [2]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if res == nil || res.Done != 2 {
		t.Fatalf("result %+v: want the 2 samples finished before the failure", res)
	}
	if got := len(readOutputs(t, dir)); got != 8 {
		t.Errorf("%d files kept, want the 8 of the two finished samples", got)
	}
}

// TestRefusesBeforeWork: plans the executor cannot run fail before any
// model is opened, saying what to change.
func TestRefusesBeforeWork(t *testing.T) {
	opened := 0
	f := func(d plan.Device, st plan.Stage) (models.Model, error) {
		opened++
		return &fakeModel{}, nil
	}
	cases := []struct {
		name string
		edit func(p *plan.Plan)
		want string
	}{
		{"nccl without NCCL", func(p *plan.Plan) {
			t.Setenv(nccl.EnvNCCLLib, "/nonexistent/libnccl.so.2")
			p.Transport = plan.TransportNCCL
		}, "transport nccl cannot run here"},
		{"tcp without command", func(p *plan.Plan) { p.Transport = "tcp" }, "WorkerCommand"},
		{"missing model file", func(p *plan.Plan) { p.Model.ONNX.UNet = "/nonexistent/unet.onnx" }, `model.onnx.unet: model file "/nonexistent/unet.onnx" not found`},
		{"shared device", func(p *plan.Plan) {
			p.Pipelines[0].Stages[1].Device, p.Pipelines[0].Stages[1].DevIdx = "cpu0", 0
		}, "a device runs one stage"},
		{"device in two pipelines", func(p *plan.Plan) {
			// The plan allows it for the simulator; the executor does not.
			pl := []plan.Pipeline{p.Pipelines[0], {Stages: []plan.Stage{{Device: "cpu0", First: 0, Last: 3}}}}
			if err := p.UsePipelines(pl); err != nil {
				t.Fatal(err)
			}
		}, "one stage per device"},
		{"unresolved", func(p *plan.Plan) { p.Pipelines = nil }, "plan.Load"},
		{"bad interrupt", nil, "on-interrupt"},
	}
	for _, c := range cases {
		p := testPlan("bad", 4, 2, 1, [][2]int{{0, 1}, {2, 3}})
		opts := Options{Images: fakeImages(p)}
		if c.edit != nil {
			c.edit(p)
		} else {
			opts.OnInterrupt = "later"
		}
		_, err := Run(context.Background(), p, f, opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.name, err, c.want)
		}
	}
	// family svd without images
	p := testPlan("svd", 4, 2, 1, [][2]int{{0, 3}})
	p.Model.Family = "svd"
	if _, err := Run(context.Background(), p, f, Options{}); err == nil || !strings.Contains(err.Error(), "Options.Images") {
		t.Errorf("svd without images: %v", err)
	}
	if opened != 0 {
		t.Errorf("%d models opened by plans that were refused", opened)
	}
}

// TestImageFailureNamesSample: a conditioning image that cannot be read
// stops the run naming the stage, its device and the very sample whose
// image failed, not only the micro-batch holding it.
func TestImageFailureNamesSample(t *testing.T) {
	p := testPlan("image", 2, 4, 2, [][2]int{{0, 0}, {1, 1}})
	errImage := errors.New("unreadable image")
	good := fakeImages(p)
	images := func(i int) ([]float32, error) {
		if i == 3 {
			return nil, errImage
		}
		return good(i)
	}
	_, err := Run(context.Background(), p, fakeFactory(fakeModel{}), Options{Images: images})
	if !errors.Is(err, errImage) {
		t.Fatalf("error %v does not wrap the image's", err)
	}
	for _, want := range []string{"stage 0", "device cpu0", "samples [2 3]", "image of sample 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
