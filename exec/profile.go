package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

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
	// goroutines at once. Nil: the tiny model's templates for family tiny,
	// a synthetic pattern otherwise.
	Images func(sample int) ([]float32, error)
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
//   - host_ms_per_step: median of (sampler step − its UNet call), batch 1;
//   - transports inproc (and tcp when asked): a hand-off of a one-value
//     state gives the latency, one of the plan's latent gives the bandwidth,
//     so that the cost of the plan's latent is what was measured;
//   - memory: weights from the model files' sizes; activations and runtime
//     overhead from the process's resident set before and after, divided
//     among the devices (rough: one process, shared allocator).
func Profile(ctx context.Context, p *plan.Plan, f Factory, opts ProfileOptions) (*plan.Profile, error) {
	if p == nil || f == nil {
		return nil, errors.New("exec: profile: nil plan or factory")
	}
	if err := checkPlan(p); err != nil {
		return nil, err
	}
	if opts.Reps <= 0 {
		opts.Reps = 10
	}
	if opts.Warmup < 0 {
		opts.Warmup = 0
	} else if opts.Warmup == 0 {
		opts.Warmup = 2
	}
	scfg, _ := samplerConfig(p)
	mb := p.Layout.MicroBatch
	var stages []plan.Stage
	for _, pl := range p.Pipelines {
		stages = append(stages, pl.Stages...)
	}
	n := len(stages)
	rss0 := rss()
	probes := make([]*probe, n)
	for i, st := range stages {
		m, err := f(p.Devices[st.DevIdx], st)
		if err == nil && m == nil {
			err = errors.New("factory returned no model")
		}
		if err != nil {
			for _, pr := range probes[:i] {
				closeModels(map[string]models.Model{"": pr.model})
			}
			return nil, fmt.Errorf("exec: profile: open model on device %s: %w", st.Device, err)
		}
		t := &timedModel{Model: m}
		smp, err := models.NewSampler(t, scfg)
		if err != nil {
			return nil, fmt.Errorf("exec: profile: %w", err)
		}
		probes[i] = &probe{dev: p.Devices[st.DevIdx], model: m, timed: t, smp: smp, unet: map[int][]float64{}, host: map[int][]float64{}}
	}
	defer func() {
		for _, pr := range probes {
			closeModels(map[string]models.Model{"": pr.model})
		}
	}()
	rssOpen := rss()
	// The conditioning images a run would use (the caller's, else the tiny
	// model's templates), so that the timed calls see real data; a
	// synthetic pattern otherwise.
	px := 3 * 64 * scfg.Height * scfg.Width
	images := opts.Images
	if images == nil {
		if real, _, err := defaultImages(p); err == nil {
			images = real
		} else {
			images = func(i int) ([]float32, error) {
				img := make([]float32, px)
				for k := range img {
					img[k] = float32((k*7+i)%13)/6.5 - 1
				}
				return img, nil
			}
		}
	}
	image := func(pr *probe, i int) ([]float32, error) {
		img, err := images(i)
		if err != nil {
			return nil, fmt.Errorf("device %s: conditioning image of sample %d: %w", pr.dev.Name, i, err)
		}
		if len(img) != px {
			return nil, fmt.Errorf("device %s: conditioning image of sample %d has %d values, want %d (3×%d×%d)", pr.dev.Name, i, len(img), px, 8*scfg.Height, 8*scfg.Width)
		}
		return img, nil
	}
	shape1 := models.Shape{Batch: 1, Frames: scfg.Frames, Channels: scfg.Channels, Height: scfg.Height, Width: scfg.Width}
	// Every phase runs on all devices at once.
	all := func(fn func(pr *probe) error) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("exec: profile: %w", err)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, pr := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = fn(pr)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	step := func(pr *probe, b int, record bool) error {
		if len(pr.states) < b {
			pr.states = pr.states[:0]
			for i := 0; i < b; i++ {
				cond := models.Conditioning{Embedding: make([]float32, models.Embedding), ImageLatent: make([]float32, scfg.Channels*scfg.Height*scfg.Width)}
				img, err := image(pr, i)
				if err != nil {
					return err
				}
				if err := pr.model.Encode(shape1, img, cond.Embedding, cond.ImageLatent); err != nil {
					return fmt.Errorf("device %s: encode: %w", pr.dev.Name, err)
				}
				pr.states = append(pr.states, pr.smp.Start(p.Workload.Seed, i, cond))
			}
			pr.x0 = make([][]float32, b)
			for i := range b {
				pr.x0[i] = append([]float32(nil), pr.states[i].X...)
			}
		}
		batch := pr.states[:b]
		if int(batch[0].Next) >= scfg.Steps() {
			for i, st := range batch {
				st.Next = 0
				copy(st.X, pr.x0[i])
			}
		}
		pr.timed.last = 0
		t0 := time.Now()
		if err := pr.smp.Step(batch); err != nil {
			return fmt.Errorf("device %s: %w", pr.dev.Name, err)
		}
		total := time.Since(t0)
		if record {
			pr.unet[b] = append(pr.unet[b], msOf(pr.timed.last))
			pr.host[b] = append(pr.host[b], msOf(total-pr.timed.last))
		}
		return nil
	}
	// The first calls of a fresh session.
	if err := all(func(pr *probe) error {
		for r := 0; r <= opts.Warmup; r++ {
			if err := step(pr, 1, false); err != nil {
				return err
			}
			pr.warm = append(pr.warm, msOf(pr.timed.last))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("exec: profile: first call: %w", err)
	}
	for b := 1; b <= mb; b++ {
		if err := all(func(pr *probe) error {
			for r := 0; r < opts.Warmup+opts.Reps; r++ {
				if err := step(pr, b, r >= opts.Warmup); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("exec: profile: unet batch %d: %w", b, err)
		}
	}
	shape := shape1
	if err := all(func(pr *probe) error {
		emb := make([]float32, models.Embedding)
		lat := make([]float32, scfg.Channels*scfg.Height*scfg.Width)
		img, err := image(pr, 0)
		if err != nil {
			return err
		}
		frames := make([]float32, scfg.Frames*3*64*scfg.Height*scfg.Width)
		for r := 0; r < opts.Warmup+opts.Reps; r++ {
			t0 := time.Now()
			if err := pr.model.Encode(shape, img, emb, lat); err != nil {
				return fmt.Errorf("device %s: encode: %w", pr.dev.Name, err)
			}
			t1 := time.Now()
			if err := pr.model.Decode(shape, pr.x0[0], frames); err != nil {
				return fmt.Errorf("device %s: decode: %w", pr.dev.Name, err)
			}
			// The decode stage also encodes the videos (see stageWorker).
			if _, err := models.EncodeVideo(frames, scfg.Frames, 8*scfg.Height, 8*scfg.Width, gifDelayCS); err != nil {
				return fmt.Errorf("device %s: decode: %w", pr.dev.Name, err)
			}
			if r >= opts.Warmup {
				pr.enc = append(pr.enc, msOf(t1.Sub(t0)))
				pr.dec = append(pr.dec, msOf(time.Since(t1)))
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("exec: profile: %w", err)
	}
	rssRun := rss()

	prof := &plan.Profile{
		Model:      plan.ProfileModel{Family: p.Model.Family, Frames: p.Model.Frames, Latent: p.Model.Latent, Dtype: p.Model.Dtype, CFG: p.Model.CFG != nil},
		Devices:    map[string]plan.DeviceCosts{},
		Links:      map[string]plan.LinkCosts{},
		Transports: map[string]plan.LinkCosts{},
	}
	var notes, threads []string
	kinds := map[string][]*probe{}
	var kindOrder []string
	for _, pr := range probes {
		if _, ok := kinds[pr.dev.Kind]; !ok {
			kindOrder = append(kindOrder, pr.dev.Kind)
		}
		kinds[pr.dev.Kind] = append(kinds[pr.dev.Kind], pr)
		threads = append(threads, fmt.Sprintf("%s %s×%d", pr.dev.Name, pr.dev.Provider, pr.dev.Threads))
	}
	weights := func(rel string) float64 {
		if rel == "" {
			return 0
		}
		fi, err := os.Stat(p.Path(rel))
		if err != nil {
			return 0
		}
		return float64(fi.Size()) / 1e9
	}
	for _, k := range kindOrder {
		prs := kinds[k]
		c := plan.DeviceCosts{UNetMS: map[int]float64{}, FirstCallMS: map[int]float64{}}
		var first, enc, dec, host []float64
		for _, pr := range prs {
			steady := mean(pr.unet[1])
			excess := 0.0
			for _, w := range pr.warm {
				excess += w - steady
			}
			first = append(first, steady+max(excess, 0))
			enc = append(enc, pr.enc...)
			dec = append(dec, pr.dec...)
			host = append(host, pr.host[1]...)
		}
		for b := 1; b <= mb; b++ {
			var all []float64
			for _, pr := range prs {
				all = append(all, pr.unet[b]...)
				lo, hi := spread(pr.unet[b])
				notes = append(notes, fmt.Sprintf("%s unet batch %d: mean %.3f ms, median %.3f, min %.3f, max %.3f over %d calls", pr.dev.Name, b, mean(pr.unet[b]), median(pr.unet[b]), lo, hi, len(pr.unet[b])))
			}
			c.UNetMS[b] = round3(mean(all))
		}
		c.FirstCallMS[1] = round3(median(first))
		c.EncodeMS = round3(median(enc))
		c.DecodeMS = round3(median(dec))
		c.HostMSPerStep = round3(max(median(host), 0))
		var calls []float64
		for _, pr := range prs {
			calls = append(calls, pr.unet[1]...)
		}
		c.Jitter = round3(relStd(calls))
		c.Memory = plan.MemoryCosts{
			UNet: round3(weights(p.Model.ONNX.UNet)), Encoder: round3(weights(p.Model.ONNX.Encoder)), Decoder: round3(weights(p.Model.ONNX.Decoder)),
			ActivationsPerSample: round3(max(float64(rssRun-rssOpen), 0) / 1e9 / float64(n*mb)),
			Runtime:              round3(max(float64(rssOpen-rss0), 0) / 1e9 / float64(n)),
		}
		prof.Devices[k] = c
	}
	notes = append(notes, fmt.Sprintf("all %d devices measured at once (one session each); %d warm-up and %d timed repetitions; memory from the resident set size (rough)", n, opts.Warmup, opts.Reps))

	lat := p.Model.LatentBytes()
	inproc, err := measureHandoff(ctx, scfg, lat, opts.Reps, nil)
	if err != nil {
		return nil, err
	}
	prof.Transports["inproc"] = inproc
	if opts.TCP || p.Transport == plan.TransportTCP {
		tcp, err := measureHandoff(ctx, scfg, lat, opts.Reps, tcpPair)
		if err != nil {
			return nil, err
		}
		prof.Transports["tcp"] = tcp
	}
	rt := strings.TrimSpace(opts.Runtime + ", " + runtime.Version())
	rt = strings.TrimPrefix(rt, ", ")
	date := opts.Date
	if date == "" {
		date = time.Now().Format("2006-01-02")
	}
	prof.Provenance = plan.Provenance{
		Source: "measured", Date: date, Machine: Machine(),
		Runtime: rt + "; threads: " + strings.Join(threads, ", "),
		Notes:   strings.Join(notes, "\n"),
	}
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

type probe struct {
	dev      plan.Device
	model    models.Model
	timed    *timedModel
	smp      *models.Sampler
	states   []*models.State
	x0       [][]float32
	warm     []float64 // the session's first calls, ms
	unet     map[int][]float64
	host     map[int][]float64
	enc, dec []float64
}

// timedModel times the UNet calls of the model it wraps.
type timedModel struct {
	models.Model
	last time.Duration
}

func (t *timedModel) UNet(in models.UNetInput, out []float32) error {
	t0 := time.Now()
	err := t.Model.UNet(in, out)
	t.last += time.Since(t0)
	return err
}

// pairFunc makes a connected sender and receiver.
type pairFunc func(ctx context.Context, now func() int64) (sender, source, error)

func tcpPair(ctx context.Context, now func() int64) (sender, source, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	r := <-ch
	if r.err != nil {
		d.Close()
		return nil, nil, r.err
	}
	start := time.Now()
	return newTCPSender(ctx, d, true, now), newTCPReceiver(ctx, r.c, true, start, now), nil
}

// measureHandoff times blocking hand-offs of a one-value state and of the
// plan's latent (with its conditioning) and fits latency and bandwidth so
// that the plan's latent costs what was measured.
func measureHandoff(ctx context.Context, scfg models.SamplerConfig, latentBytes int64, reps int, pair pairFunc) (plan.LinkCosts, error) {
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	measure := func(st *models.State) (float64, error) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var s sender
		var r source
		if pair == nil {
			l := newChanLink(true, 1, now)
			s, r = l, l
		} else {
			var err error
			if s, r, err = pair(cctx, now); err != nil {
				return 0, fmt.Errorf("exec: profile: hand-off: %w", err)
			}
		}
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
	small := &models.State{X: []float32{0}}
	big := &models.State{
		X:    make([]float32, scfg.LatentLen()),
		Cond: models.Conditioning{Embedding: make([]float32, models.Embedding), ImageLatent: make([]float32, scfg.Channels*scfg.Height*scfg.Width)},
	}
	ts, err := measure(small)
	if err != nil {
		return plan.LinkCosts{}, err
	}
	tb, err := measure(big)
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

func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

func round3(v float64) float64 {
	if v == 0 {
		return 0
	}
	return float64(int64(v*1e3+0.5)) / 1e3
}

// sig4 rounds v to 4 significant digits.
func sig4(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	scale := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

// relStd is the standard deviation of v relative to its mean (0 for fewer
// than two values).
func relStd(v []float64) float64 {
	m := mean(v)
	if len(v) < 2 || m <= 0 {
		return 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss/float64(len(v)-1)) / m
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	return slices.Min(v), slices.Max(v)
}

// rss is the process's resident set size in bytes (0 where unknown).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * int64(os.Getpagesize())
}
