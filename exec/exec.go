package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// DefaultTimeout is how long the rendezvous of the process-per-device
// layout waits for its workers.
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
	// values in [-1, 1]; required (models.ImageSet.Image fits, and
	// models/family.Images has a family's built-in images, such as the
	// tiny model's templates). With several pipelines it is called from
	// several goroutines at once.
	Images func(sample int) ([]float32, error)
	// Conditioning names the conditioning of a sample in its JSON record
	// (models.ImageSet.Label fits; nil: "image i"). Like Images, it may be
	// called from several goroutines at once.
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
	// device in the process-per-device layout (transport tcp); the process
	// must call RunWorker with the same plan, this device and this
	// rendezvous address.
	WorkerCommand func(device, rendezvous string) (*osexec.Cmd, error)
	// Listen is the address (HOST:PORT) the coordinator of the
	// process-per-device layout binds for its rendezvous; "" is
	// 127.0.0.1:0 (loopback, a free port). Workers on other hosts need an
	// address they can reach (0.0.0.0:PORT, or this host's IP).
	Listen string
	// ExternalWorkers: the coordinator starts no worker process
	// (WorkerCommand stays nil); someone else (Slurm, Kubernetes,
	// torchrun, a person) starts one `vdexec worker` per stage device,
	// and the coordinator waits, within Timeout, for all of them to join.
	// Token is then required.
	ExternalWorkers bool
	// Token is the run's shared secret (EnvWorkerToken) that every
	// worker's hello and data link must carry; "" draws a random one,
	// which only workers the coordinator starts can know.
	Token string
	// Listening, if set, is called once with the address the coordinator
	// listens on, before it waits for workers.
	Listening func(addr string)
	// Timeout bounds the rendezvous of the process-per-device layout, and
	// how long workers told to abandon may take to exit before they are
	// killed (default DefaultTimeout).
	Timeout time.Duration
	// Versions are added to the timeline's metadata (e.g. "onnxruntime").
	Versions map[string]string
	// Log, if set, receives the coordinator's notices of the
	// process-per-device layout (a stranger dropped at the rendezvous), one
	// line each, possibly from several goroutines; nil: stderr.
	Log func(msg string)

	// hooks, set only by this package's tests, give host work and
	// in-process transfers a cost that a fake clock sees.
	hooks *testHooks
}

// testHooks let the package's tests give the executor's host work and
// in-process transfers a cost under testing/synctest's fake clock, where
// everything but a sleep takes no time, so that a run can be held to the
// simulator's timeline with every overhead the model has. Nil in every
// real run.
type testHooks struct {
	// host is called in the host work on a micro-batch of n samples:
	// role "first" (the first stage's preparation), "receive" or "last"
	// (the last stage's output handling).
	host func(role string, n int)
	// xfer is called inside an in-process transfer of n samples.
	xfer func(n int)
}

// hostWork runs the host hook, if any.
func (h *testHooks) hostWork(role string, n int) {
	if h != nil && h.host != nil {
		h.host(role, n)
	}
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
// with the models that f opens, and returns the measured timeline. The
// plan's transport picks the link between stages and the process layout
// (see doc.go). All checks happen, and every model is opened, before the
// clock starts. Cancelling ctx stops admitting samples (see
// Options.OnInterrupt); the result is still returned, with Interrupted set
// and a nil error (with transport tcp also while the workers start: an
// empty timeline). A stage that fails stops the run with an error naming
// the stage, its device and the samples it held; the outputs finished by
// then stay, and the result returned with the error counts them.
func Run(ctx context.Context, p *plan.Plan, f Factory, opts Options) (*Result, error) {
	spec, err := check(p, f, &opts)
	if err != nil {
		return nil, err
	}
	return spec.layout.run(ctx, p, f, opts)
}

// check validates what is the executor's to check before work starts:
// the plan is resolved (plan.Ready: its defaults, step ranges and ends
// were checked once, by the plan), this build has its transport, and what
// only the executor and the transport's process layout need.
func check(p *plan.Plan, f Factory, opts *Options) (transportSpec, error) {
	if err := checkPlan(p); err != nil {
		return transportSpec{}, err
	}
	spec, err := transportFor(p.Transport)
	if err != nil {
		return transportSpec{}, fmt.Errorf("exec: plan %s: %w", p.Name, err)
	}
	switch opts.OnInterrupt {
	case "":
		opts.OnInterrupt = InterruptFinish
	case InterruptFinish, InterruptAbandon:
	default:
		return transportSpec{}, fmt.Errorf("exec: on-interrupt %q: want %q or %q", opts.OnInterrupt, InterruptFinish, InterruptAbandon)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if err := spec.layout.check(p, f, opts); err != nil {
		return transportSpec{}, err
	}
	return spec, conditioningDefaults(p, opts)
}

// conditioningDefaults checks that the caller gave conditioning images
// (the executor knows no model family: models/family has the built-in
// ones) and names them "image i" when the caller did not.
func conditioningDefaults(p *plan.Plan, opts *Options) error {
	if opts.Images == nil {
		return fmt.Errorf("exec: plan %s: model family %s: no conditioning images: set Options.Images (models/family.Images gives a family's built-in ones)", p.Name, p.Model.Family)
	}
	if opts.Conditioning == nil {
		opts.Conditioning = func(i int) string { return fmt.Sprintf("image %d", i) }
	}
	return nil
}

// checkPlan checks, for Run, RunWorker and Profile alike, that the plan is
// resolved (plan.Ready: the plan's own rules) and what the executor needs
// beyond them: its model files exist with the plan's dtype, its sampler is one the executor
// implements, and each device runs one stage (the simulator can time-share
// a device between pipelines; the executor gives each stage a device).
func checkPlan(p *plan.Plan) error {
	if err := p.Ready(); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if _, err := samplerConfig(p); err != nil {
		return err
	}
	if err := CheckModelFiles(p, FileCheck{}); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if err := CheckModelTypes(p); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	owner := map[string]plan.Stage{}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			if prev, ok := owner[st.Device]; ok {
				return fmt.Errorf("exec: plan %s: pipeline %d stage %d (device %s): the device already runs stage %d of pipeline %d; the executor runs one stage per device: give each stage its own device", p.Name, pl.Index, st.Index, st.Device, prev.Index, prev.Pipeline)
			}
			owner[st.Device] = st
		}
	}
	return nil
}

// samplerConfig builds the sampler configuration the plan describes.
func samplerConfig(p *plan.Plan) (models.SamplerConfig, error) {
	m, s := p.Model, p.Sampler // euler-karras: the only kind the plan allows
	sig, err := models.KarrasSigmas(s.Steps, s.SigmaMin, s.SigmaMax, s.Rho)
	if err != nil {
		return models.SamplerConfig{}, fmt.Errorf("exec: plan %s: sampler: %w", p.Name, err)
	}
	cfg := models.SamplerConfig{
		Frames: m.Frames, Channels: m.Latent.Channels, Height: m.Latent.Height, Width: m.Latent.Width,
		Sigmas:  sig,
		TimeIDs: [3]float32{float32(m.FPS - 1), float32(m.MotionBucket), float32(m.NoiseAug)},
	}
	if m.CFG != nil {
		cfg.CFG = &models.Guidance{Min: m.CFG.Min, Max: m.CFG.Max}
	}
	return cfg, nil
}

// newMeta is the timeline metadata of an executor run.
func newMeta(p *plan.Plan, extra map[string]string) timeline.Meta {
	v := map[string]string{"go": runtime.Version()}
	for k, x := range extra {
		v[k] = x
	}
	return timeline.Meta{
		Plan: p.Name, Source: "exec", Machine: Machine(), Versions: v,
		PlanHash: p.Hash(), Steps: p.Sampler.Steps, PlannedSamples: p.Workload.Samples,
		Created: time.Now().UTC().Format(time.RFC3339), Devices: p.Devices.Names(),
		Notes: []string{fmt.Sprintf("transport %s, handoff %s, micro_batch %d", p.Transport, p.Layout.Handoff, p.Layout.MicroBatch)},
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
