package models

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Guidance is classifier-free guidance: the guidance scale is ramped
// linearly over frames from Min (first frame) to Max (last frame), as SVD does.
type Guidance struct {
	Min, Max float64
}

// SamplerConfig describes what the sampler runs: the latent shape of one
// sample, the sigma schedule (len = steps + 1, ending in 0), guidance (nil:
// off, one UNet pass per step) and the added_time_ids conditioning.
type SamplerConfig struct {
	Frames, Channels, Height, Width int
	Sigmas                          []Sigma
	CFG                             *Guidance
	// TimeIDs are added_time_ids: fps − 1, motion bucket id, noise augmentation.
	TimeIDs [3]float32
}

// Steps is the number of sampler steps.
func (c SamplerConfig) Steps() int { return len(c.Sigmas) - 1 }

// LatentLen is the number of values in one sample's latent [F, C, h, w].
func (c SamplerConfig) LatentLen() int { return c.Frames * c.Channels * c.Height * c.Width }

// Conditioning is what the image encoder produced for one sample.
type Conditioning struct {
	Embedding   []float32 // [1, 1024]
	ImageLatent []float32 // [C, h, w]
}

// State is everything a stage hands to the next: which sample this is, the
// next step to run, and the current latent. Noise is drawn once, at Start,
// from (seed, sample) only, so no stage or device choice can change it.
type State struct {
	Sample int
	Seed   uint64
	Next   Step      // the next step to run; Steps() when finished
	X      []float32 // [F, C, h, w], the current noisy latent (unscaled)
	Cond   Conditioning
}

// Sampler runs Euler steps with Karras sigmas on a Model for a micro-batch of
// states. It holds reusable buffers, so one Sampler must not be used by two
// goroutines at once.
type Sampler struct {
	cfg   SamplerConfig
	model Model

	in  UNetInput
	out []float32
}

// NewSampler checks cfg and returns a sampler calling m.
func NewSampler(m Model, cfg SamplerConfig) (*Sampler, error) {
	if m == nil {
		return nil, fmt.Errorf("models: sampler: no model")
	}
	if cfg.Frames < 1 || cfg.Channels < 1 || cfg.Height < 1 || cfg.Width < 1 {
		return nil, fmt.Errorf("models: sampler: latent shape %dx%dx%dx%d must be positive", cfg.Frames, cfg.Channels, cfg.Height, cfg.Width)
	}
	if len(cfg.Sigmas) < 2 || cfg.Sigmas[len(cfg.Sigmas)-1] != 0 {
		return nil, fmt.Errorf("models: sampler: schedule needs at least one step and a final sigma of 0")
	}
	return &Sampler{cfg: cfg, model: m}, nil
}

// Config returns the sampler's configuration.
func (s *Sampler) Config() SamplerConfig { return s.cfg }

// Noise fills x with standard normal values drawn from (seed, sample) only.
func Noise(seed uint64, sample int, x []float32) {
	r := rand.New(rand.NewPCG(seed, uint64(sample)))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
}

// Start returns the initial state of a sample: seeded noise scaled by
// √(σ_max² + 1), at step 0.
func (s *Sampler) Start(seed uint64, sample int, cond Conditioning) *State {
	x := make([]float32, s.cfg.LatentLen())
	Noise(seed, sample, x)
	scale := float32(math.Sqrt(float64(s.cfg.Sigmas[0])*float64(s.cfg.Sigmas[0]) + 1))
	for i := range x {
		x[i] *= scale
	}
	return &State{Sample: sample, Seed: seed, X: x, Cond: cond}
}

// Run advances every state in batch through steps [from, to): one UNet call
// per step for the whole micro-batch. All states must be at step from.
func (s *Sampler) Run(batch []*State, from, to Step) error {
	for st := from; st < to; st++ {
		if err := s.Step(batch); err != nil {
			return err
		}
	}
	return nil
}

// Step advances every state in batch by one Euler step. All states must be
// at the same step; a state that is already finished is an error.
func (s *Sampler) Step(batch []*State) error {
	if len(batch) == 0 {
		return nil
	}
	c := s.cfg
	i := batch[0].Next
	if int(i) >= c.Steps() || i < 0 {
		return fmt.Errorf("models: sampler: sample %d: step %d outside schedule of %d steps", batch[0].Sample, i, c.Steps())
	}
	for _, st := range batch {
		if st.Next != i {
			return fmt.Errorf("models: sampler: micro-batch mixes step %d (sample %d) and step %d (sample %d)", i, batch[0].Sample, st.Next, st.Sample)
		}
		if len(st.X) != c.LatentLen() {
			return fmt.Errorf("models: sampler: sample %d: latent has %d values, want %d", st.Sample, len(st.X), c.LatentLen())
		}
	}
	sigma, next := c.Sigmas[i], c.Sigmas[i+1]
	b := len(batch)
	passes := 1
	if c.CFG != nil {
		passes = 2 // [unconditional half, conditional half]
	}
	nb := b * passes
	s.prepare(nb)

	frame := c.Channels * c.Height * c.Width
	cin := float32(sigma.CIn())
	ts := float32(sigma.Timestep())
	for p := 0; p < passes; p++ {
		cond := c.CFG == nil || p == 1
		for j, st := range batch {
			n := p*b + j
			s.in.Timestep[n] = ts
			copy(s.in.AddedTimeIDs[3*n:3*n+3], c.TimeIDs[:])
			emb := s.in.EncoderHiddenStates[n*Embedding : (n+1)*Embedding]
			if cond {
				if len(st.Cond.Embedding) != Embedding || len(st.Cond.ImageLatent) != frame {
					return fmt.Errorf("models: sampler: sample %d: conditioning has %d/%d values, want %d/%d", st.Sample, len(st.Cond.Embedding), len(st.Cond.ImageLatent), Embedding, frame)
				}
				copy(emb, st.Cond.Embedding)
			} else {
				clear(emb)
			}
			for f := 0; f < c.Frames; f++ {
				dst := s.in.Sample[(n*c.Frames+f)*2*frame:]
				src := st.X[f*frame : (f+1)*frame]
				for k, v := range src {
					dst[k] = cin * v
				}
				if cond {
					copy(dst[frame:2*frame], st.Cond.ImageLatent)
				} else {
					clear(dst[frame : 2*frame])
				}
			}
		}
	}
	if err := s.model.UNet(s.in, s.out); err != nil {
		return fmt.Errorf("models: sampler: step %d (σ=%.6g), samples %d..: %w", i, float64(sigma), batch[0].Sample, err)
	}

	cskip, cout := sigma.CSkip(), sigma.COut()
	// x ← x + (x − x̂₀)/σ·(σ_next − σ), with x̂₀ = c_skip·x + c_out·v; at the
	// last step (σ_next = 0) this is x̂₀ itself, which is taken exactly.
	k := (float64(next) - float64(sigma)) / float64(sigma)
	ll := c.LatentLen()
	for j, st := range batch {
		v := s.out[j*ll : (j+1)*ll] // the conditional pass when CFG is off
		var vc []float32
		if c.CFG != nil {
			vc = s.out[(b+j)*ll : (b+j+1)*ll]
		}
		for f := 0; f < c.Frames; f++ {
			g := c.guidanceScale(f)
			xs := st.X[f*frame : (f+1)*frame]
			vs := v[f*frame : (f+1)*frame]
			var vcs []float32
			if vc != nil {
				vcs = vc[f*frame : (f+1)*frame]
			}
			for n, x32 := range xs {
				vk := float64(vs[n])
				if vcs != nil {
					vk += g * (float64(vcs[n]) - vk)
				}
				x := float64(x32)
				x0 := cskip*x + cout*vk
				if next == 0 {
					xs[n] = float32(x0)
				} else {
					xs[n] = float32(x + (x-x0)*k)
				}
			}
		}
		st.Next = i + 1
	}
	return nil
}

// guidanceScale is the CFG scale of frame f, linear from Min to Max.
func (c SamplerConfig) guidanceScale(f int) float64 {
	if c.CFG == nil {
		return 1
	}
	if c.Frames == 1 {
		return c.CFG.Min
	}
	return c.CFG.Min + (c.CFG.Max-c.CFG.Min)*float64(f)/float64(c.Frames-1)
}

// prepare sizes the UNet buffers for a call of nb batch entries.
func (s *Sampler) prepare(nb int) {
	c := s.cfg
	frame := c.Channels * c.Height * c.Width
	s.in.Shape = Shape{Batch: nb, Frames: c.Frames, Channels: c.Channels, Height: c.Height, Width: c.Width}
	s.in.Sample = grow(s.in.Sample, nb*c.Frames*2*frame)
	s.in.Timestep = grow(s.in.Timestep, nb)
	s.in.EncoderHiddenStates = grow(s.in.EncoderHiddenStates, nb*Embedding)
	s.in.AddedTimeIDs = grow(s.in.AddedTimeIDs, nb*3)
	s.out = grow(s.out, nb*c.LatentLen())
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
