package models

import (
	"math"
	"testing"
)

func TestKarrasSigmasReference(t *testing.T) {
	// Reference values from the formula (issue 4).
	s25, err := KarrasSigmas(25, 0.002, 700, 7)
	if err != nil {
		t.Fatal(err)
	}
	want25 := map[int]float64{0: 700, 1: 545.729246, 2: 421.569136, 3: 322.453683, 22: 0.024803, 23: 0.007882, 24: 0.002, 25: 0}
	for i, w := range want25 {
		if math.Abs(float64(s25[i])-w) > 5e-7*math.Max(1, w) {
			t.Errorf("25 steps: sigma[%d] = %.7f, want %.6f", i, float64(s25[i]), w)
		}
	}
	if len(s25) != 26 {
		t.Errorf("25 steps: %d sigmas, want 26", len(s25))
	}
	s28, err := KarrasSigmas(28, 0.002, 700, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range map[int]float64{0: 700, 1: 561.283538, 2: 446.82916, 13: 18.753057, 14: 12.895663} {
		if math.Abs(float64(s28[i])-w) > 5e-7*math.Max(1, w) {
			t.Errorf("28 steps: sigma[%d] = %.7f, want %.6f", i, float64(s28[i]), w)
		}
	}
	for i := 1; i < len(s28); i++ {
		if s28[i] >= s28[i-1] {
			t.Fatalf("schedule not decreasing at %d: %v >= %v", i, s28[i], s28[i-1])
		}
	}
}

func TestPreconditioningReference(t *testing.T) {
	s := Sigma(700)
	if got := float64(s.Timestep()); math.Abs(got-1.63777) > 5e-6 {
		t.Errorf("timestep(700) = %.6f, want 1.63777", got)
	}
	if got := s.CIn(); math.Abs(got-0.00142857) > 5e-9 {
		t.Errorf("c_in(700) = %.8f, want 0.00142857", got)
	}
	// The v-prediction weights satisfy c_out² + c_skip = 1 for every σ.
	for _, sg := range []Sigma{0.002, 1, 12.5, 700} {
		if got := sg.COut()*sg.COut() + sg.CSkip(); math.Abs(got-1) > 1e-12 {
			t.Errorf("σ=%v: c_out²+c_skip = %v, want 1", sg, got)
		}
		if back := sg.Timestep().Sigma(); math.Abs(float64(back-sg)) > 1e-9*float64(sg) {
			t.Errorf("σ=%v: timestep round trip gives %v", sg, back)
		}
	}
	if _, err := KarrasSigmas(0, 0.002, 700, 7); err == nil {
		t.Error("0 steps: want error")
	}
	if _, err := KarrasSigmas(10, 700, 0.002, 7); err == nil {
		t.Error("sigma_min > sigma_max: want error")
	}
}

// pointModel is the exact denoiser of a point mass: the clean latent is the
// image latent repeated over frames (conditional) or a fixed value
// (unconditional). It recovers x and σ from the inputs as a real UNet would
// see them, and returns the v that makes x̂₀ exact.
type pointModel struct{ uncond float32 }

func (m pointModel) UNet(in UNetInput, out []float32) error {
	s := in.Shape
	frame := s.Channels * s.Height * s.Width
	for n := 0; n < s.Batch; n++ {
		sigma := Timestep(in.Timestep[n]).Sigma()
		cin, cskip, cout := sigma.CIn(), sigma.CSkip(), sigma.COut()
		for f := 0; f < s.Frames; f++ {
			src := in.Sample[(n*s.Frames+f)*2*frame:]
			dst := out[(n*s.Frames+f)*frame:]
			for k := 0; k < frame; k++ {
				x := float64(src[k]) / cin
				x0 := float64(src[frame+k])
				if in.EncoderHiddenStates[n*Embedding] == 0 {
					x0 = float64(m.uncond)
				}
				dst[k] = float32((x0 - cskip*x) / cout)
			}
		}
	}
	return nil
}
func (pointModel) Encode(Shape, []float32, []float32, []float32) error { return nil }
func (pointModel) Decode(Shape, []float32, []float32) error            { return nil }

func testConfig(t *testing.T, steps int, cfg *Guidance) SamplerConfig {
	t.Helper()
	sig, err := KarrasSigmas(steps, 0.002, 700, 7)
	if err != nil {
		t.Fatal(err)
	}
	return SamplerConfig{Frames: 3, Channels: 4, Height: 2, Width: 3, Sigmas: sig, CFG: cfg, TimeIDs: [3]float32{6, 127, 0.02}}
}

func testCond(c SamplerConfig, v float32) Conditioning {
	emb := make([]float32, Embedding)
	emb[0] = 1
	lat := make([]float32, c.Channels*c.Height*c.Width)
	for i := range lat {
		lat[i] = v + float32(i)*0.01
	}
	return Conditioning{Embedding: emb, ImageLatent: lat}
}

func TestSamplerLandsOnTarget(t *testing.T) {
	c := testConfig(t, 28, nil)
	s, err := NewSampler(pointModel{uncond: -2}, c)
	if err != nil {
		t.Fatal(err)
	}
	cond := testCond(c, 0.5)
	st := s.Start(42, 3, cond)
	if err := s.Run([]*State{st}, 0, Step(c.Steps())); err != nil {
		t.Fatal(err)
	}
	frame := len(cond.ImageLatent)
	for k, v := range st.X {
		if want := cond.ImageLatent[k%frame]; math.Abs(float64(v-want)) > 1e-4 {
			t.Fatalf("x[%d] = %v, want %v (the conditioning target)", k, v, want)
		}
	}
}

func TestSamplerSplitEqualsWhole(t *testing.T) {
	for _, g := range []*Guidance{nil, {Min: 1, Max: 3}} {
		c := testConfig(t, 28, g)
		s, _ := NewSampler(pointModel{uncond: -2}, c)
		whole := []*State{s.Start(7, 0, testCond(c, 0.3)), s.Start(7, 1, testCond(c, -0.4))}
		if err := s.Run(whole, 0, 28); err != nil {
			t.Fatal(err)
		}
		// Three pieces, each on its own sampler (as separate stages would be).
		pieces := []*State{s.Start(7, 0, testCond(c, 0.3)), s.Start(7, 1, testCond(c, -0.4))}
		for _, r := range [][2]Step{{0, 10}, {10, 19}, {19, 28}} {
			ps, _ := NewSampler(pointModel{uncond: -2}, c)
			if err := ps.Run(pieces, r[0], r[1]); err != nil {
				t.Fatal(err)
			}
		}
		for j := range whole {
			for k := range whole[j].X {
				if math.Float32bits(whole[j].X[k]) != math.Float32bits(pieces[j].X[k]) {
					t.Fatalf("cfg=%v sample %d value %d: split %v != whole %v", g, j, k, pieces[j].X[k], whole[j].X[k])
				}
			}
			if whole[j].Next != 28 || pieces[j].Next != 28 {
				t.Fatalf("next step %d/%d, want 28", whole[j].Next, pieces[j].Next)
			}
		}
	}
}

func TestSamplerGuidance(t *testing.T) {
	// With guidance scale 1 on every frame, CFG returns the conditional answer.
	c1 := testConfig(t, 12, &Guidance{Min: 1, Max: 1})
	c0 := testConfig(t, 12, nil)
	s1, _ := NewSampler(pointModel{uncond: -2}, c1)
	s0, _ := NewSampler(pointModel{uncond: -2}, c0)
	a := s1.Start(1, 0, testCond(c1, 0.2))
	b := s0.Start(1, 0, testCond(c0, 0.2))
	if err := s1.Run([]*State{a}, 0, 12); err != nil {
		t.Fatal(err)
	}
	if err := s0.Run([]*State{b}, 0, 12); err != nil {
		t.Fatal(err)
	}
	for k := range a.X {
		if math.Abs(float64(a.X[k]-b.X[k])) > 1e-4 {
			t.Fatalf("value %d: cfg(1,1) %v != no cfg %v", k, a.X[k], b.X[k])
		}
	}
	// With a ramp, frame f lands on uncond + g_f·(cond − uncond).
	c := testConfig(t, 12, &Guidance{Min: 1, Max: 3})
	s, _ := NewSampler(pointModel{uncond: -2}, c)
	cond := testCond(c, 0.2)
	st := s.Start(1, 0, cond)
	if err := s.Run([]*State{st}, 0, 12); err != nil {
		t.Fatal(err)
	}
	frame := len(cond.ImageLatent)
	for f := 0; f < c.Frames; f++ {
		g := 1 + 2*float64(f)/float64(c.Frames-1)
		k := f*frame + 1
		want := -2 + g*(float64(cond.ImageLatent[1])+2)
		if math.Abs(float64(st.X[k])-want) > 1e-3 {
			t.Errorf("frame %d: x = %v, want %v (guidance %v)", f, st.X[k], want, g)
		}
	}
}

func TestNoiseDependsOnSeedAndSampleOnly(t *testing.T) {
	a, b, c := make([]float32, 64), make([]float32, 64), make([]float32, 64)
	Noise(9, 4, a)
	Noise(9, 4, b)
	Noise(9, 5, c)
	same, diff := true, false
	for i := range a {
		same = same && a[i] == b[i]
		diff = diff || a[i] != c[i]
	}
	if !same || !diff {
		t.Fatalf("noise: same (seed, sample) equal = %v, other sample differs = %v", same, diff)
	}
}

func TestSamplerRejectsBadInput(t *testing.T) {
	c := testConfig(t, 4, nil)
	s, _ := NewSampler(pointModel{}, c)
	a := s.Start(1, 0, testCond(c, 0))
	b := s.Start(1, 1, testCond(c, 0))
	b.Next = 2
	if err := s.Step([]*State{a, b}); err == nil {
		t.Error("mixed steps in a micro-batch: want error")
	}
	a.Next = 4
	if err := s.Step([]*State{a}); err == nil {
		t.Error("step past the schedule: want error")
	}
	if _, err := NewSampler(pointModel{}, SamplerConfig{Frames: 1, Channels: 1, Height: 1, Width: 1, Sigmas: []Sigma{1}}); err == nil {
		t.Error("schedule without final 0: want error")
	}
}
