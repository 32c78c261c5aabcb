package models

import "testing"

type nopModel struct{}

func (nopModel) UNet(UNetInput, []float32) error                     { return nil }
func (nopModel) Encode(Shape, []float32, []float32, []float32) error { return nil }
func (nopModel) Decode(Shape, []float32, []float32) error            { return nil }

// BenchmarkSamplerStep measures the sampler's own work per step (input
// preparation, CFG combination, Euler update) around a UNet that returns at
// once, at the tiny model's default shape (8 frames, 4×16×16) with CFG.
func BenchmarkSamplerStep(b *testing.B) {
	sig, _ := KarrasSigmas(28, 0.002, 700, 7)
	c := SamplerConfig{Frames: 8, Channels: 4, Height: 16, Width: 16, Sigmas: sig, CFG: &Guidance{Min: 1, Max: 3}}
	s, _ := NewSampler(nopModel{}, c)
	cond := Conditioning{Embedding: make([]float32, Embedding), ImageLatent: make([]float32, 4*16*16)}
	st := s.Start(1, 0, cond)
	x0 := append([]float32(nil), st.X...)
	for b.Loop() {
		// Start each step from the same latent: repeated steps of a UNet
		// that returns zeros would shrink it into denormals, which are slow.
		copy(st.X, x0)
		st.Next = 0
		if err := s.Step([]*State{st}); err != nil {
			b.Fatal(err)
		}
	}
}
