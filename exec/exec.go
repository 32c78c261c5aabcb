package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// Factory opens the model of one stage on its device: for a CPU device a
// session with the device's own intra-op thread count, for a CUDA device a
// session bound to its device id. The executor calls it once per stage,
// before any work starts, and closes the model afterwards when it
// implements io.Closer.
type Factory func(d plan.Device, st plan.Stage) (models.Model, error)

// Interruption modes (Options.OnInterrupt).
const (
	// InterruptFinish lets the samples already admitted complete.
	InterruptFinish = "finish"
	// InterruptAbandon stops every stage at its next step boundary; the
	// samples in flight produce no outputs.
	InterruptAbandon = "abandon"
)

// DefaultTimeout is how long the TCP rendezvous waits for its workers.
const DefaultTimeout = 30 * time.Second

// ProgressEvent reports the run's progress as samples finish.
type ProgressEvent struct {
	Done, Total int
	// Elapsed is the time since the run's start.
	Elapsed time.Duration
	// Throughput is Done / Elapsed in samples per second.
	Throughput float64
}

// Options control a run. The zero value runs the plan in-process without
// writing files.
type Options struct {
	// OutDir receives one directory per finished sample (see doc.go);
	// "" writes nothing.
	OutDir string
	// Images returns the conditioning image of a sample, [3, 8h, 8w] with
	// values in [-1, 1]. Nil: the tiny model's templates for family tiny
	// (sample i gets template i mod K); an error for family svd. With
	// several pipelines it is called from several goroutines at once.
	Images func(sample int) ([]float32, error)
	// Conditioning names the conditioning of a sample in its JSON record
	// (nil: "tiny template k" for the default images, else "image i").
	// Like Images, it may be called from several goroutines at once.
	Conditioning func(sample int) string
	// OnInterrupt is InterruptFinish (default) or InterruptAbandon.
	OnInterrupt string
	// Progress, if set, is called (from one goroutine) each time a sample's
	// outputs are complete.
	Progress func(ProgressEvent)
	// Recorder, if set, receives every span and sample record as the run
	// produces them, from one goroutine at a time.
	Recorder timeline.Recorder
	// WorkerCommand builds the command that starts the worker process of a
	// device for transport tcp; the process must call RunWorker with the
	// same plan, this device and this rendezvous address.
	WorkerCommand func(device, rendezvous string) (*osexec.Cmd, error)
	// Timeout bounds the TCP rendezvous, and how long workers told to
	// abandon may take to exit before they are killed (default
	// DefaultTimeout).
	Timeout time.Duration
	// Versions are added to the timeline's metadata (e.g. "onnxruntime").
	Versions map[string]string
}

// Result is what a run produced. Run returns it even when the run was
// interrupted or failed part way.
type Result struct {
	// Timeline holds every span and sample record, spans ordered by start.
	Timeline *timeline.Timeline
	// Done is the number of samples that finished.
	Done int
	// Total is the number of samples the workload asked for.
	Total int
	// Interrupted reports that ctx was cancelled and, because of that, at
	// least one sample of the workload did not finish (Done < Total).
	Interrupted bool
	// Outputs are the sample directories written, in completion order.
	Outputs []string
}

// errAbandoned stops a stage that was told to abandon its work.
var errAbandoned = errors.New("abandoned")

// Run executes a resolved plan (Plan.Pipelines filled, as plan.Load does)
// with the models that f opens, and returns the measured timeline. All
// checks happen, and every model is opened, before the clock starts.
// Cancelling ctx stops admitting samples (see Options.OnInterrupt); the
// result is still returned, with Interrupted set and a nil error. A stage
// that fails stops the run with an error naming the stage, its device and
// the samples it held; the outputs finished by then stay.
func Run(ctx context.Context, p *plan.Plan, f Factory, opts Options) (*Result, error) {
	if err := check(p, f, &opts); err != nil {
		return nil, err
	}
	if p.Transport == "tcp" {
		return runTCP(ctx, p, opts)
	}
	return runInproc(ctx, p, f, opts)
}

// check validates everything that can be checked before work starts.
func check(p *plan.Plan, f Factory, opts *Options) error {
	if p == nil {
		return errors.New("exec: nil plan")
	}
	if f == nil && p.Transport != "tcp" {
		return fmt.Errorf("exec: plan %s: no model factory", p.Name)
	}
	switch opts.OnInterrupt {
	case "":
		opts.OnInterrupt = InterruptFinish
	case InterruptFinish, InterruptAbandon:
	default:
		return fmt.Errorf("exec: on-interrupt %q: want %q or %q", opts.OnInterrupt, InterruptFinish, InterruptAbandon)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	switch p.Transport {
	case "", "inproc":
	case "tcp":
		if opts.WorkerCommand == nil {
			return fmt.Errorf("exec: plan %s: transport tcp needs a worker command (Options.WorkerCommand) to start one process per device", p.Name)
		}
	case "nccl":
		return fmt.Errorf("exec: plan %s: transport nccl is not available in this build (no CUDA/NCCL here); use transport: inproc or tcp", p.Name)
	default:
		return fmt.Errorf("exec: plan %s: unknown transport %q (want inproc, tcp or nccl)", p.Name, p.Transport)
	}
	if err := checkPlan(p); err != nil {
		return err
	}
	return conditioningDefaults(p, opts)
}

// conditioningDefaults fills opts.Images and opts.Conditioning when unset:
// the plan family's built-in images (the tiny model's templates), and names
// for them.
func conditioningDefaults(p *plan.Plan, opts *Options) error {
	if opts.Images == nil {
		img, name, err := defaultImages(p)
		if err != nil {
			return err
		}
		opts.Images = img
		if opts.Conditioning == nil {
			opts.Conditioning = name
		}
	}
	if opts.Conditioning == nil {
		opts.Conditioning = func(i int) string { return fmt.Sprintf("image %d", i) }
	}
	return nil
}

// checkPlan checks the parts of a plan the executor depends on.
func checkPlan(p *plan.Plan) error {
	if len(p.Pipelines) == 0 {
		return fmt.Errorf("exec: plan %s has no resolved pipelines (load it with plan.Load)", p.Name)
	}
	if _, err := samplerConfig(p); err != nil {
		return err
	}
	if p.Workload.Samples < 0 {
		return fmt.Errorf("exec: plan %s: workload.samples %d is negative", p.Name, p.Workload.Samples)
	}
	if _, err := releases(p); err != nil {
		return err
	}
	switch p.Layout.Handoff {
	case "", "blocking", "buffered":
	default:
		return fmt.Errorf("exec: plan %s: layout.handoff %q: want blocking or buffered", p.Name, p.Layout.Handoff)
	}
	for _, f := range []struct{ field, path string }{{"model.onnx.unet", p.Model.ONNX.UNet}, {"model.onnx.encoder", p.Model.ONNX.Encoder}, {"model.onnx.decoder", p.Model.ONNX.Decoder}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(p.Path(f.path)); err != nil {
			return fmt.Errorf("exec: plan %s: %s: model file %s is missing: fix the path (relative to the plan file) or generate the model: %w", p.Name, f.field, p.Path(f.path), err)
		}
	}
	owner := map[string]plan.Stage{}
	steps := p.Sampler.Steps
	for pi, pl := range p.Pipelines {
		if len(pl.Stages) == 0 {
			return fmt.Errorf("exec: plan %s: pipeline %d has no stages", p.Name, pi)
		}
		next := plan.StepIndex(0)
		for si, st := range pl.Stages {
			where := fmt.Sprintf("exec: plan %s: pipeline %d stage %d (device %s)", p.Name, pi, si, st.Device)
			if st.DevIdx < 0 || st.DevIdx >= len(p.Devices) || p.Devices[st.DevIdx].Name != st.Device {
				return fmt.Errorf("%s: not a device of the plan", where)
			}
			if prev, ok := owner[st.Device]; ok {
				return fmt.Errorf("%s: the device already runs stage %d of pipeline %d; the executor runs one stage per device: give each stage its own device", where, prev.Index, prev.Pipeline)
			}
			owner[st.Device] = st
			if st.First != next || st.Last < st.First {
				return fmt.Errorf("%s: steps %d..%d do not continue the previous stage (want to start at step %d)", where, st.First, st.Last, next)
			}
			next = st.Last + 1
			if st.Encode != (si == 0) {
				return fmt.Errorf("%s: the image encoder must run on the first stage (the UNet needs the conditioning from step 0): set layout.encode_on: first", where)
			}
			if st.Decode != (si == len(pl.Stages)-1) {
				return fmt.Errorf("%s: the decoder must run on the last stage: set layout.decode_on: last", where)
			}
			switch prov := p.Devices[st.DevIdx].Provider; prov {
			case "", "cpu", "cuda":
			default:
				return fmt.Errorf("%s: unknown provider %q (want cpu or cuda)", where, prov)
			}
		}
		if int(next) != steps {
			return fmt.Errorf("exec: plan %s: pipeline %d covers steps 0..%d, want 0..%d", p.Name, pi, next-1, steps-1)
		}
	}
	return nil
}

// samplerConfig builds the sampler configuration the plan describes.
func samplerConfig(p *plan.Plan) (models.SamplerConfig, error) {
	m := p.Model
	if m.Frames < 1 || m.Latent.Channels < 1 || m.Latent.Height < 1 || m.Latent.Width < 1 {
		return models.SamplerConfig{}, fmt.Errorf("exec: plan %s: model shape %d frames × %d×%d×%d must be positive", p.Name, m.Frames, m.Latent.Channels, m.Latent.Height, m.Latent.Width)
	}
	s := p.Sampler
	if s.Kind != "" && s.Kind != "euler-karras" {
		return models.SamplerConfig{}, fmt.Errorf("exec: plan %s: sampler.kind %q: only euler-karras is implemented", p.Name, s.Kind)
	}
	min, max, rho := s.SigmaMin, s.SigmaMax, s.Rho
	if min == 0 {
		min = plan.DefaultSigmaMin
	}
	if max == 0 {
		max = plan.DefaultSigmaMax
	}
	if rho == 0 {
		rho = plan.DefaultRho
	}
	sig, err := models.KarrasSigmas(s.Steps, min, max, rho)
	if err != nil {
		return models.SamplerConfig{}, fmt.Errorf("exec: plan %s: sampler: %w", p.Name, err)
	}
	fps := m.FPS
	if fps == 0 {
		fps = plan.DefaultFPS
	}
	cfg := models.SamplerConfig{
		Frames: m.Frames, Channels: m.Latent.Channels, Height: m.Latent.Height, Width: m.Latent.Width,
		Sigmas:  sig,
		TimeIDs: [3]float32{float32(fps - 1), float32(m.MotionBucket), float32(m.NoiseAug)},
	}
	if m.CFG != nil {
		cfg.CFG = &models.Guidance{Min: m.CFG.Min, Max: m.CFG.Max}
	}
	return cfg, nil
}

// Arrival stream of the workload's seed (the simulator uses the same).
const streamArrival = 0x61727269766c // "arrivl"

// releases returns the release time of every sample, in ns from the run's
// start: all 0 for batch; Poisson gaps drawn in order from a PCG stream of
// the workload seed, sample 0 at 0; interval: i × interval.
func releases(p *plan.Plan) ([]int64, error) {
	w := p.Workload
	out := make([]int64, w.Samples)
	switch w.Arrival.Kind {
	case "", "batch":
	case "poisson":
		if !(w.Arrival.Rate > 0) || math.IsInf(w.Arrival.Rate, 0) {
			return nil, fmt.Errorf("exec: plan %s: workload.arrival.rate %g must be positive for poisson arrivals", p.Name, w.Arrival.Rate)
		}
		r := rand.New(rand.NewPCG(w.Seed, streamArrival))
		for i := 1; i < len(out); i++ {
			out[i] = out[i-1] + int64(math.Round(r.ExpFloat64()/w.Arrival.Rate*1e9))
		}
	case "interval":
		if w.Arrival.IntervalMS < 0 {
			return nil, fmt.Errorf("exec: plan %s: workload.arrival.interval_ms %g is negative", p.Name, w.Arrival.IntervalMS)
		}
		for i := range out {
			out[i] = int64(math.Round(float64(i) * w.Arrival.IntervalMS * 1e6))
		}
	default:
		return nil, fmt.Errorf("exec: plan %s: workload.arrival.kind %q: want batch, poisson or interval", p.Name, w.Arrival.Kind)
	}
	return out, nil
}

// newMeta is the timeline metadata of an executor run.
func newMeta(p *plan.Plan, extra map[string]string) timeline.Meta {
	v := map[string]string{"go": runtime.Version()}
	for k, x := range extra {
		v[k] = x
	}
	devs := make([]string, len(p.Devices))
	for i, d := range p.Devices {
		devs[i] = d.Name
	}
	handoff := p.Layout.Handoff
	if handoff == "" {
		handoff = "blocking"
	}
	transport := p.Transport
	if transport == "" {
		transport = "inproc"
	}
	return timeline.Meta{
		Plan: p.Name, Source: "exec", Machine: Machine(), Versions: v,
		Created: time.Now().UTC().Format(time.RFC3339), Devices: devs,
		Notes: []string{fmt.Sprintf("transport %s, handoff %s, micro_batch %d", transport, handoff, max(p.Layout.MicroBatch, 1))},
	}
}

// collector gathers spans and sample records from all stages.
type collector struct {
	mu  sync.Mutex
	tl  *timeline.Timeline
	ext timeline.Recorder
}

func (c *collector) AddSpan(s timeline.Span) {
	c.mu.Lock()
	c.tl.AddSpan(s)
	if c.ext != nil {
		c.ext.AddSpan(s)
	}
	c.mu.Unlock()
}

func (c *collector) AddSample(s timeline.Sample) {
	c.mu.Lock()
	c.tl.AddSample(s)
	if c.ext != nil {
		c.ext.AddSample(s)
	}
	c.mu.Unlock()
}

// sortTimeline orders spans by start, end, device (plan order) and stream,
// and samples by id, so a timeline does not depend on goroutine timing.
func sortTimeline(t *timeline.Timeline) {
	dev := map[string]int{}
	for i, d := range t.Meta.Devices {
		dev[d] = i
	}
	sort.SliceStable(t.Spans, func(i, j int) bool {
		a, b := &t.Spans[i], &t.Spans[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.End != b.End {
			return a.End < b.End
		}
		if dev[a.Device] != dev[b.Device] {
			return dev[a.Device] < dev[b.Device]
		}
		return timeline.StreamOf(a.Kind) < timeline.StreamOf(b.Kind)
	})
	sort.SliceStable(t.Samples, func(i, j int) bool { return t.Samples[i].ID < t.Samples[j].ID })
}

// openModels opens one model per stage, in plan order, closing the ones
// already open when one fails.
func openModels(p *plan.Plan, f Factory) (map[string]models.Model, error) {
	out := map[string]models.Model{}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			m, err := f(p.Devices[st.DevIdx], st)
			if err == nil && m == nil {
				err = errors.New("factory returned no model")
			}
			if err != nil {
				closeModels(out)
				return nil, fmt.Errorf("exec: open model for stage %d of pipeline %d on device %s: %w", st.Index, st.Pipeline, st.Device, err)
			}
			out[st.Device] = m
		}
	}
	return out, nil
}

func closeModels(ms map[string]models.Model) {
	for _, m := range ms {
		if c, ok := m.(io.Closer); ok {
			c.Close()
		}
	}
}

// runInproc runs every stage as a goroutine of this process.
func runInproc(ctx context.Context, p *plan.Plan, f Factory, opts Options) (*Result, error) {
	scfg, _ := samplerConfig(p)
	rel, _ := releases(p)
	mods, err := openModels(p, f)
	if err != nil {
		return nil, err
	}
	defer closeModels(mods)

	tl := &timeline.Timeline{Meta: newMeta(p, opts.Versions), Spans: []timeline.Span{}, Samples: []timeline.Sample{}}
	col := &collector{tl: tl, ext: opts.Recorder}
	res := &Result{Timeline: tl, Total: p.Workload.Samples}

	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	out := newOutputs(p, opts, start, len(rel))
	var workers []*stageWorker
	queues := map[int]*entryQueue{}
	mb := max(p.Layout.MicroBatch, 1)
	blocking := p.Layout.Handoff != "buffered"
	for _, pl := range p.Pipelines {
		q := newEntryQueue(mb)
		queues[pl.Index] = q
		var in source = q
		for si, st := range pl.Stages {
			w, err := newStageWorker(p, st, mods[st.Device], scfg, opts.Images, now)
			if err != nil {
				return nil, err
			}
			w.in = in
			w.emit = col
			if st.Decode {
				w.encode, w.finish = out.encode, out.finish
			}
			if si+1 < len(pl.Stages) {
				l := newChanLink(blocking, len(rel)+1, now)
				w.out = l
				w.peer = pl.Stages[si+1].Device
				in = l
			}
			workers = append(workers, w)
		}
	}

	// Interruption: stop admitting; abandon also stops the stages.
	var interrupted, abandoned bool
	var imu sync.Mutex
	stopRelease := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			imu.Lock()
			interrupted = true
			abandoned = opts.OnInterrupt == InterruptAbandon
			imu.Unlock()
			close(stopRelease)
			closeAll(queues)
			if opts.OnInterrupt == InterruptAbandon {
				cancel(errAbandoned)
			}
		case <-watchDone:
		}
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		release(runCtx, rel, len(p.Pipelines), queues, start, stopRelease)
	}()
	var emu sync.Mutex
	var firstErr error
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.run(runCtx)
			if err == nil || runCtx.Err() != nil {
				return // done, abandoned, or stopped by another stage's failure
			}
			emu.Lock()
			if firstErr == nil {
				firstErr = err
				cancel(err)
			}
			emu.Unlock()
		}()
	}
	wg.Wait()
	close(watchDone)
	closeAll(queues)
	outs := out.wait()
	res.Outputs = outs.dirs
	res.Done = len(tl.Samples)
	// A cancellation that came after every sample had finished (before
	// the watcher stopped) interrupted nothing.
	imu.Lock()
	res.Interrupted = (interrupted || abandoned) && res.Done < res.Total
	imu.Unlock()
	sortTimeline(tl)
	if firstErr != nil {
		return res, firstErr
	}
	if outs.err != nil {
		return res, outs.err
	}
	return res, nil
}

// release pushes samples into the entry queues of their pipelines at
// their release times (round robin by sample id over np pipelines),
// releasing samples due at the same instant together. Pipelines without a
// queue (another process feeds them) are skipped. Closing stop stops
// admission: the queues drop what they hold.
func release(ctx context.Context, rel []int64, np int, queues map[int]*entryQueue, start time.Time, stop <-chan struct{}) {
	for i := 0; i < len(rel); {
		if d := time.Until(start.Add(time.Duration(rel[i]))); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
			case <-ctx.Done():
				t.Stop()
			}
		}
		select {
		case <-stop:
			closeAll(queues)
			return
		case <-ctx.Done():
			closeAll(queues)
			return
		default:
		}
		j := i
		for j < len(rel) && rel[j] == rel[i] {
			j++
		}
		for pi := 0; pi < np; pi++ {
			q := queues[pi]
			if q == nil {
				continue
			}
			var items []*item
			for id := i + ((pi-i%np)+np)%np; id < j; id += np {
				items = append(items, &item{id: id, release: rel[id]})
			}
			if len(items) > 0 {
				q.push(items)
			}
		}
		i = j
	}
	for _, q := range queues {
		q.finish()
	}
}

func closeAll(qs map[int]*entryQueue) {
	for _, q := range qs {
		q.close()
	}
}
