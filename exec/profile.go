package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	osexec "os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vdpp/vdpp/exec/gpu"
	"github.com/vdpp/vdpp/internal/atomicfile"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// ProfileOptions control Profile.
type ProfileOptions struct {
	// Reps is the number of timed repetitions of each measurement
	// (default 10); Warmup the untimed calls before them (default 2).
	Reps, Warmup int
	// TCP also measures hand-offs over loopback TCP (Transports["tcp"]).
	TCP bool
	// Runtime names the inference runtime for the provenance, e.g.
	// "onnxruntime 1.24.3 cpu".
	Runtime string
	// Date overrides the provenance date (YYYY-MM-DD; default today).
	Date string
	// Images, if set, returns the conditioning image of a sample as
	// Options.Images does ([3, 8h, 8w], values in [-1, 1]); the probes
	// encode samples 0..micro_batch-1. It may be called from several
	// goroutines at once. Nil: a synthetic pattern (give the images a run
	// would use, e.g. models/family.Images, so that the timed calls see
	// real data).
	Images func(sample int) ([]float32, error)
	// WorkerCommand starts a worker process for the profile's short run of
	// the plan when its transport runs one process per device (tcp): as
	// Options.WorkerCommand, for a run of samples samples (the plan's
	// workload with that many samples). Nil: the short run stays in this
	// process, over the transport's link, and a note says so.
	WorkerCommand func(device, rendezvous string, samples int) (*osexec.Cmd, error)
	// NVML, when set, measures the memory of devices with provider cuda
	// on their GPUs (gpu.Open; gpumock in tests). Nil, or NVML failing:
	// their memory comes from the host's resident set, as a cpu device's
	// does, and the notes say so.
	NVML gpu.NVML
}

// Profile measures, on this machine, what the plan's work costs and
// returns a cost profile the simulator can use (device kinds and model as
// in the plan). Every stage's device runs at once, each with its own model
// session, as in a real run, so that stages contend for memory bandwidth
// and clocks as they will then:
//
//   - unet_ms[b] for b = 1..micro_batch: the mean UNet call of a sampler
//     step (both CFG halves when the plan uses CFG); median, min and max in
//     notes. The mean, not the median: a run's time is the sum of its calls,
//     and on a machine whose speed drifts the mean is what sums right.
//     The probes walk a real sampling trajectory (step 0, 1, …, the last,
//     then again from the same noise), so every noise level's data is timed;
//   - first_call_ms[1]: the warm-up of a fresh session, as the time of one
//     call that also carries it: the median steady call plus the excess over
//     it of the session's first Warmup+1 calls (a session's first calls are
//     slower than its later ones, not only the very first);
//   - jitter: the relative standard deviation of the batch-1 UNet calls,
//     which the simulator applies to each step, independently;
//   - encode_ms, decode_ms: per sample, batch 1; decode includes encoding
//     the sample's GIF and PNG frames, which the decode stage does too;
//     encode_first_ms, decode_first_ms: a fresh session's first calls
//     that ran slower than its steady ones (plan.SplitWarm), call by call
//     the median over the kind's devices;
//   - host_ms_per_step: median of (sampler step − its UNet call), batch 1;
//   - transports inproc, tcp when asked, and the plan's own: a hand-off of
//     a one-value state over the transport's link gives the latency, one of
//     the plan's latent gives the bandwidth, so that the cost of the plan's
//     latent is what was measured;
//   - from a short run of the plan itself, as it runs (measureRun):
//     sample_first_ms, sample_last_ms, the plan's transport's latency,
//     receive_us and setup_ms, the run's encode and decode times, and the
//     factor by which its steps ran slower (or faster) than the isolated
//     calls, which scales unet_ms and first_call_ms (contention: the other
//     stages, the output writer, other processes);
//   - drift: the UNet calls timed again after the isolated measurements
//     (before the run of the plan, which may close the sessions), (max −
//     min) / mean of the two passes' means, the largest over the kind's
//     devices;
//   - memory: weights from the model files' sizes; activations and runtime
//     overhead from the memory in use before and after opening the
//     sessions and after measuring: on a cuda device its GPU's used memory
//     from NVML (this process's where the driver lists it, else the whole
//     GPU's), divided among the stages on that GPU; on a cpu device the
//     process's resident set, divided among the devices (rough: one
//     process, shared allocator). A note per device says which it is:
//     "memory: host RSS (CPU)" or "memory: NVML used memory of GPU N".
func Profile(ctx context.Context, p *plan.Plan, f Factory, opts ProfileOptions) (*plan.Profile, error) {
	if p == nil || f == nil {
		return nil, errors.New("exec: profile: nil plan or factory")
	}
	if err := checkPlan(p); err != nil {
		return nil, err
	}
	pr := newProfiler(p, opts)
	if err := pr.open(f); err != nil {
		return nil, err
	}
	defer pr.close()
	if err := pr.measureUNet(ctx); err != nil {
		return nil, err
	}
	if err := pr.measureCoders(ctx); err != nil {
		return nil, err
	}
	prof := pr.assemble()
	if err := pr.measureHandoffs(ctx, prof); err != nil {
		return nil, err
	}
	if err := pr.measureDrift(ctx, prof); err != nil {
		return nil, err
	}
	if err := pr.measureRun(ctx, prof); err != nil {
		return nil, err
	}
	prof.Provenance = pr.provenance()
	return prof, nil
}

// WriteProfile writes a profile as YAML to path atomically.
func WriteProfile(path string, pr *plan.Profile) error {
	b, err := pr.Marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("exec: profile: %w", err)
	}
	return nil
}

// profiler is one Profile: its phases are open, measure the UNet, measure
// encode and decode, assemble the device costs, measure the hand-offs.
type profiler struct {
	p      *plan.Plan
	opts   ProfileOptions
	scfg   models.SamplerConfig
	shape1 models.Shape // one sample
	px     int          // values in a conditioning image
	images func(int) ([]float32, error)
	probes []*probe // one per stage, in plan order
	notes  []string
	// the resident set before opening, after opening, after measuring
	rss0, rssOpen, rssRun int64
	gpus                  *gpuMeter // the same, on the GPUs of cuda devices
}

// probe is one stage's device under measurement.
type probe struct {
	dev      plan.Device
	model    models.Model
	smp      *models.Sampler // on the model, its UNet calls timed into last
	last     time.Duration   // UNet time of the current step
	states   []*models.State
	x0       [][]float32
	warm     []float64 // the session's first calls, ms
	unet     map[int][]float64
	host     map[int][]float64
	enc, dec []float64
	// a fresh session's first encode and decode calls (untimed warm-up
	// included), ms
	encWarm, decWarm []float64
	// the mean batch-1 UNet call of the second pass (measureDrift)
	again float64
}

func newProfiler(p *plan.Plan, opts ProfileOptions) *profiler {
	if opts.Reps <= 0 {
		opts.Reps = 10
	}
	if opts.Warmup < 0 {
		opts.Warmup = 0
	} else if opts.Warmup == 0 {
		opts.Warmup = 2
	}
	scfg, _ := samplerConfig(p)
	pr := &profiler{p: p, opts: opts, scfg: scfg, px: 3 * 64 * scfg.Height * scfg.Width, images: opts.Images}
	pr.shape1 = models.Shape{Batch: 1, Frames: scfg.Frames, Channels: scfg.Channels, Height: scfg.Height, Width: scfg.Width}
	if pr.images == nil {
		pr.images = func(i int) ([]float32, error) {
			img := make([]float32, pr.px)
			for k := range img {
				img[k] = float32((k*7+i)%13)/6.5 - 1
			}
			return img, nil
		}
	}
	return pr
}

// open opens one model session per stage, in plan order.
func (pr *profiler) open(f Factory) error {
	pr.gpus = newGPUMeter(pr.opts.NVML, cudaIndices(pr.p))
	pr.gpus.read(memBefore)
	pr.rss0 = rss()
	for _, pl := range pr.p.Pipelines {
		for _, st := range pl.Stages {
			m, err := f(pr.p.Devices[st.DevIdx], st)
			if err == nil && m == nil {
				err = errors.New("factory returned no model")
			}
			if err != nil {
				pr.close()
				return fmt.Errorf("exec: profile: open model on device %s: %w", st.Device, err)
			}
			pb := &probe{dev: pr.p.Devices[st.DevIdx], model: m, unet: map[int][]float64{}, host: map[int][]float64{}}
			pr.probes = append(pr.probes, pb)
			if pb.smp, err = models.NewSampler(&timedModel{Model: m, add: func(d time.Duration) { pb.last += d }}, pr.scfg); err != nil {
				pr.close()
				return fmt.Errorf("exec: profile: %w", err)
			}
		}
	}
	pr.rssOpen = rss()
	pr.gpus.read(memOpen)
	return nil
}

// close closes the sessions and NVML.
func (pr *profiler) close() {
	pr.gpus.close()
	for _, pb := range pr.probes {
		if c, ok := pb.model.(io.Closer); ok {
			c.Close()
		}
	}
	pr.probes = nil
}

// all runs fn on every device at once.
func (pr *profiler) all(ctx context.Context, fn func(pb *probe) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("exec: profile: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(pr.probes))
	for i, pb := range pr.probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(pb)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// image returns the conditioning image of sample i, checked.
func (pr *profiler) image(pb *probe, i int) ([]float32, error) {
	img, err := pr.images(i)
	if err != nil {
		return nil, fmt.Errorf("device %s: conditioning image of sample %d: %w", pb.dev.Name, i, err)
	}
	if len(img) != pr.px {
		return nil, fmt.Errorf("device %s: conditioning image of sample %d has %d values, want %d (3×%d×%d)", pb.dev.Name, i, len(img), pr.px, 8*pr.scfg.Height, 8*pr.scfg.Width)
	}
	return img, nil
}

// start encodes samples 0..b-1 and starts their states (once per batch
// size that needs more states than the probe has).
func (pr *profiler) start(pb *probe, b int) error {
	pb.states = pb.states[:0]
	for i := 0; i < b; i++ {
		cond := models.Conditioning{Embedding: make([]float32, models.Embedding), ImageLatent: make([]float32, pr.scfg.Channels*pr.scfg.Height*pr.scfg.Width)}
		img, err := pr.image(pb, i)
		if err != nil {
			return err
		}
		if err := models.EncodeConditioning(pb.model, pr.shape1, img, pr.p.Workload.Seed, []int{i}, pr.p.Model.NoiseAug, cond.Embedding, cond.ImageLatent); err != nil {
			return fmt.Errorf("device %s: encode: %w", pb.dev.Name, err)
		}
		pb.states = append(pb.states, pb.smp.Start(pr.p.Workload.Seed, i, cond))
	}
	pb.x0 = make([][]float32, b)
	for i := range b {
		pb.x0[i] = append([]float32(nil), pb.states[i].X...)
	}
	return nil
}

// step runs one sampler step of a micro-batch of b, walking the sampling
// trajectory (from the same noise again after the last step), and records
// its UNet and host time when record is set.
func (pr *profiler) step(pb *probe, b int, record bool) error {
	if len(pb.states) < b {
		if err := pr.start(pb, b); err != nil {
			return err
		}
	}
	batch := pb.states[:b]
	if int(batch[0].Next) >= pr.scfg.Steps() {
		for i, st := range batch {
			st.Next = 0
			copy(st.X, pb.x0[i])
		}
	}
	pb.last = 0
	t0 := time.Now()
	if err := pb.smp.Step(batch); err != nil {
		return fmt.Errorf("device %s: %w", pb.dev.Name, err)
	}
	total := time.Since(t0)
	if record {
		pb.unet[b] = append(pb.unet[b], msOf(pb.last))
		pb.host[b] = append(pb.host[b], msOf(total-pb.last))
	}
	return nil
}

// measureUNet times a fresh session's first calls, then the steady calls
// of every micro-batch size up to the plan's.
func (pr *profiler) measureUNet(ctx context.Context) error {
	if err := pr.all(ctx, func(pb *probe) error {
		for r := 0; r <= pr.opts.Warmup; r++ {
			if err := pr.step(pb, 1, false); err != nil {
				return err
			}
			pb.warm = append(pb.warm, msOf(pb.last))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("exec: profile: first call: %w", err)
	}
	for b := 1; b <= pr.p.Layout.MicroBatch; b++ {
		if err := pr.all(ctx, func(pb *probe) error {
			for r := 0; r < pr.opts.Warmup+pr.opts.Reps; r++ {
				if err := pr.step(pb, b, r >= pr.opts.Warmup); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("exec: profile: unet batch %d: %w", b, err)
		}
	}
	return nil
}

// measureCoders times the image encode (as a run does it, so twice when
// model.noise_aug > 0: models.EncodeConditioning) and the decode (with the video
// encoding the decode stage also does) of one sample.
func (pr *profiler) measureCoders(ctx context.Context) error {
	c := pr.scfg
	err := pr.all(ctx, func(pb *probe) error {
		emb := make([]float32, models.Embedding)
		lat := make([]float32, c.Channels*c.Height*c.Width)
		img, err := pr.image(pb, 0)
		if err != nil {
			return err
		}
		frames := make([]float32, c.Frames*3*64*c.Height*c.Width)
		for r := 0; r < pr.opts.Warmup+pr.opts.Reps; r++ {
			t0 := time.Now()
			if err := models.EncodeConditioning(pb.model, pr.shape1, img, pr.p.Workload.Seed, []int{0}, pr.p.Model.NoiseAug, emb, lat); err != nil {
				return fmt.Errorf("device %s: encode: %w", pb.dev.Name, err)
			}
			t1 := time.Now()
			if err := pb.model.Decode(pr.shape1, pb.x0[0], frames); err != nil {
				return fmt.Errorf("device %s: decode: %w", pb.dev.Name, err)
			}
			// The decode stage also encodes the videos (see stageWorker).
			if _, err := models.EncodeVideo(frames, c.Frames, 8*c.Height, 8*c.Width, gifDelayCS); err != nil {
				return fmt.Errorf("device %s: decode: %w", pb.dev.Name, err)
			}
			if r >= pr.opts.Warmup {
				pb.enc = append(pb.enc, msOf(t1.Sub(t0)))
				pb.dec = append(pb.dec, msOf(time.Since(t1)))
			} else {
				pb.encWarm = append(pb.encWarm, msOf(t1.Sub(t0)))
				pb.decWarm = append(pb.decWarm, msOf(time.Since(t1)))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("exec: profile: %w", err)
	}
	pr.rssRun = rss()
	pr.gpus.read(memRun)
	return nil
}

// assemble turns the measurements into a profile's device costs, one entry
// per device kind (the devices of a kind pooled), with notes.
func (pr *profiler) assemble() *plan.Profile {
	p := pr.p
	prof := &plan.Profile{
		Model:      plan.ProfileModel{Family: p.Model.Family, Frames: p.Model.Frames, Latent: p.Model.Latent, Dtype: p.Model.Dtype, CFG: p.Model.CFG != nil},
		Devices:    map[string]plan.DeviceCosts{},
		Links:      map[string]plan.LinkCosts{},
		Transports: map[string]plan.LinkCosts{},
	}
	kinds := map[string][]*probe{}
	var order []string
	for _, pb := range pr.probes {
		if _, ok := kinds[pb.dev.Kind]; !ok {
			order = append(order, pb.dev.Kind)
		}
		kinds[pb.dev.Kind] = append(kinds[pb.dev.Kind], pb)
	}
	for _, k := range order {
		prof.Devices[k] = pr.deviceCosts(kinds[k])
	}
	pr.notes = append(pr.notes, fmt.Sprintf("all %d devices measured at once (one session each); %d warm-up and %d timed repetitions", len(pr.probes), pr.opts.Warmup, pr.opts.Reps))
	return prof
}

// deviceCosts pools the measurements of the devices of one kind.
func (pr *profiler) deviceCosts(pbs []*probe) plan.DeviceCosts {
	p, mb := pr.p, pr.p.Layout.MicroBatch
	c := plan.DeviceCosts{UNetMS: map[int]float64{}, FirstCallMS: map[int]float64{}}
	var first, enc, dec, host, calls []float64
	var encWarm, decWarm [][]float64
	for _, pb := range pbs {
		w, _ := plan.SplitWarm(append(slices.Clone(pb.encWarm), pb.enc...))
		encWarm = append(encWarm, w)
		w, _ = plan.SplitWarm(append(slices.Clone(pb.decWarm), pb.dec...))
		decWarm = append(decWarm, w)
		steady := mean(pb.unet[1])
		excess := 0.0
		for _, w := range pb.warm {
			excess += w - steady
		}
		first = append(first, steady+max(excess, 0))
		enc = append(enc, pb.enc...)
		dec = append(dec, pb.dec...)
		host = append(host, pb.host[1]...)
		calls = append(calls, pb.unet[1]...)
	}
	for b := 1; b <= mb; b++ {
		var all []float64
		for _, pb := range pbs {
			all = append(all, pb.unet[b]...)
			lo, hi := spread(pb.unet[b])
			pr.notes = append(pr.notes, fmt.Sprintf("%s unet batch %d: mean %.3f ms, median %.3f, min %.3f, max %.3f over %d calls", pb.dev.Name, b, mean(pb.unet[b]), median(pb.unet[b]), lo, hi, len(pb.unet[b])))
		}
		c.UNetMS[b] = round3(mean(all))
	}
	c.FirstCallMS[1] = round3(median(first))
	encFirst, decFirst := medianCalls(encWarm), medianCalls(decWarm)
	c.EncodeMS = round3(median(enc))
	c.DecodeMS = round3(median(dec))
	c.EncodeFirstMS = round3s(encFirst)
	c.DecodeFirstMS = round3s(decFirst)
	c.HostMSPerStep = round3(max(median(host), 0))
	c.Jitter = round3(relStd(calls))
	if c.Jitter >= maxJitter {
		// A spread this wide is a busy machine's outliers, not a step's
		// noise; the profile's rule is a relative deviation below 1.
		pr.notes = append(pr.notes, fmt.Sprintf("unet batch 1 calls varied by %.3g (relative standard deviation); jitter set to %g, the largest a profile takes: was the machine busy?", c.Jitter, maxJitter))
		c.Jitter = maxJitter
	}
	// The kind's memory is its neediest device's.
	var rt, act float64
	for _, pb := range pbs {
		r, a, label := pr.memory(pb)
		rt, act = max(rt, r), max(act, a)
		pr.notes = append(pr.notes, fmt.Sprintf("%s memory: %s", pb.dev.Name, label))
	}
	c.Memory = plan.MemoryCosts{
		UNet: round3(fileGB(p, p.Model.ONNX.UNet)), Encoder: round3(fileGB(p, p.Model.ONNX.Encoder)), Decoder: round3(fileGB(p, p.Model.ONNX.Decoder)),
		ActivationsPerSample: round3(act),
		Runtime:              round3(rt),
	}
	return c
}

// maxJitter is the largest jitter a profile takes (plan's rule: below 1).
const maxJitter = 0.999

// measureDrift times the batch-1 UNet calls again, after the other
// isolated measurements (before the run of the plan), and sets each kind's
// drift: (max − min) / mean of the two passes' means,
// the largest over the kind's devices.
func (pr *profiler) measureDrift(ctx context.Context, prof *plan.Profile) error {
	if err := pr.all(ctx, func(pb *probe) error {
		var again []float64
		for r := 0; r < pr.opts.Reps; r++ {
			if err := pr.step(pb, 1, false); err != nil {
				return err
			}
			again = append(again, msOf(pb.last))
		}
		pb.again = mean(again)
		return nil
	}); err != nil {
		return fmt.Errorf("exec: profile: second pass: %w", err)
	}
	for _, pb := range pr.probes {
		first := mean(pb.unet[1])
		d := 0.0
		if m := (first + pb.again) / 2; m > 0 {
			d = math.Abs(first-pb.again) / m
		}
		c := prof.Devices[pb.dev.Kind]
		c.Drift = max(c.Drift, min(round3(d), maxJitter))
		prof.Devices[pb.dev.Kind] = c
		pr.notes = append(pr.notes, fmt.Sprintf("%s unet batch 1, second pass: mean %.3f ms (first pass %.3f)", pb.dev.Name, pb.again, first))
	}
	return nil
}

// fileGB is the size of a model file of the plan in GiB (0 when unnamed or
// unreadable).
func fileGB(p *plan.Plan, rel string) float64 {
	if rel == "" {
		return 0
	}
	fi, err := os.Stat(p.Path(rel))
	if err != nil {
		return 0
	}
	return gpu.GiB(uint64(fi.Size()))
}

// measureHandoffs measures the hand-off over the link of transport
// inproc, of tcp when asked, and of the plan's own transport when it can
// run here (nccl: between two ranks of this process, where NCCL takes
// them), into prof.Transports.
func (pr *profiler) measureHandoffs(ctx context.Context, prof *plan.Profile) error {
	ts := []plan.Transport{plan.TransportInproc}
	if pr.opts.TCP {
		ts = append(ts, plan.TransportTCP)
	}
	if t := pr.p.Transport; !slices.Contains(ts, t) && CheckTransport(t) == nil {
		ts = append(ts, t)
	}
	for _, t := range ts {
		spec, err := transportFor(t)
		if err != nil {
			return fmt.Errorf("exec: profile: %w", err)
		}
		h := handoff{blocking: true, capacity: 1}
		l := spec.link(h)
		if spec.commID != nil {
			// Both ends in this process: two ranks of their own
			// communicator, on the CUDA devices of the plan's first
			// hand-off. NCCL takes two ranks of one process only on two
			// GPUs of one host.
			from, to, ok := pr.firstHop()
			if why := pairRefused(from, to, ok); why != "" {
				pr.notes = append(pr.notes, fmt.Sprintf("transport %s: hand-off not measured: %s; the simulator prices its hand-offs from the profile's links", t, why))
				continue
			}
			pair, err := newNCCLPair(ctx, h, from, to)
			if err != nil {
				return fmt.Errorf("exec: profile: transport %s: %w", t, err)
			}
			defer pair.close()
			l = pair
		}
		c, err := measureHandoff(ctx, l, pr.scfg, pr.p.Model.LatentBytes(), pr.opts.Reps)
		if err != nil {
			return err
		}
		prof.Transports[string(t)] = c
	}
	return nil
}

// firstHop is the devices of the plan's first hand-off; false when no
// stage of the plan hands off.
func (pr *profiler) firstHop() (from, to plan.Device, ok bool) {
	for _, pl := range pr.p.Pipelines {
		if sts := pl.Stages; len(sts) > 1 {
			return pr.p.Devices[sts[0].DevIdx], pr.p.Devices[sts[1].DevIdx], true
		}
	}
	return plan.Device{}, plan.Device{}, false
}

// pairRefused says why a hand-off between from and to cannot be measured
// with two ranks of this process ("": it can).
func pairRefused(from, to plan.Device, ok bool) string {
	switch {
	case !ok:
		return "no stage of the plan hands off"
	case from.Host != to.Host:
		return fmt.Sprintf("its first hand-off goes from host %s to host %s, and this process runs on one", from.Host, to.Host)
	case from.Index == to.Index:
		return fmt.Sprintf("its first hand-off stays on CUDA device %d (%s to %s), and NCCL refuses two ranks of one process on one GPU", from.Index, from.Name, to.Name)
	}
	return ""
}

// provenance says where, when and with what the profile was measured.
func (pr *profiler) provenance() plan.Provenance {
	var threads []string
	for _, pb := range pr.probes {
		threads = append(threads, fmt.Sprintf("%s %s×%d", pb.dev.Name, pb.dev.Provider, pb.dev.Threads))
	}
	rt := strings.TrimSpace(pr.opts.Runtime + ", " + runtime.Version())
	rt = strings.TrimPrefix(rt, ", ")
	date := pr.opts.Date
	if date == "" {
		date = time.Now().Format("2006-01-02")
	}
	return plan.Provenance{
		Source: "measured", Date: date, Machine: Machine(),
		Runtime: rt + "; threads: " + strings.Join(threads, ", "),
		Notes:   strings.Join(pr.notes, "\n"),
	}
}

// measureHandoff times blocking hand-offs over l of a one-value state and
// of the plan's latent (with its conditioning) and fits latency and
// bandwidth so that the plan's latent costs what was measured.
func measureHandoff(ctx context.Context, l link, scfg models.SamplerConfig, latentBytes int64, reps int) (plan.LinkCosts, error) {
	clk := clock{start: time.Now()}
	small := &models.State{X: []float32{0}}
	big := &models.State{
		X:    make([]float32, scfg.LatentLen()),
		Cond: models.Conditioning{Embedding: make([]float32, models.Embedding), ImageLatent: make([]float32, scfg.Channels*scfg.Height*scfg.Width)},
	}
	ts, err := timeHandoff(ctx, l, clk, small, reps)
	if err != nil {
		return plan.LinkCosts{}, err
	}
	tb, err := timeHandoff(ctx, l, clk, big, reps)
	if err != nil {
		return plan.LinkCosts{}, err
	}
	c := plan.LinkCosts{LatencyUS: round3(ts)}
	bytes := float64(max(latentBytes, 1))
	if tb > ts {
		c.BandwidthGBps = sig4(bytes / ((tb - ts) * 1e3)) // bytes per ns = GB/s
	} else {
		// Size made no measurable difference: a bandwidth at which the
		// plan's latent costs 1 ns more than the latency.
		c.BandwidthGBps = sig4(bytes)
	}
	return c, nil
}

// timeHandoff connects a fresh hand-off over l and returns the median
// time, in µs, of reps blocking hand-offs of st (after two untimed ones).
func timeHandoff(ctx context.Context, l link, clk clock, st *models.State, reps int) (float64, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in, out, err := connect(cctx, l)
	if err != nil {
		return 0, fmt.Errorf("exec: profile: hand-off: %w", err)
	}
	defer in.close()
	defer out.close()
	s, r := out.open(cctx, clk), in.open(cctx, clk)
	done := make(chan error, 1)
	go func() {
		for {
			if _, _, err := r.next(cctx); err != nil {
				if errors.Is(err, io.EOF) || cctx.Err() != nil {
					done <- nil
				} else {
					done <- err
				}
				return
			}
		}
	}()
	b := &batch{items: []*item{{id: 0, state: st}}}
	var times []float64
	for i := 0; i < reps+2; i++ {
		_, _, x, err := s.send(cctx, b)
		if err != nil {
			return 0, fmt.Errorf("exec: profile: hand-off: %w", err)
		}
		if i >= 2 {
			times = append(times, float64(x.end-x.start)/1e3) // µs
		}
	}
	s.close()
	if err := <-done; err != nil {
		return 0, fmt.Errorf("exec: profile: hand-off: %w", err)
	}
	return median(times), nil
}
