package models_test

import (
	"fmt"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/tiny"
)

// Sampling one clip with the tiny model's reference, conditioned on the
// first frame of template 2: the clip ends on template 2.
func ExampleSampler() {
	tc := tiny.DefaultConfig()
	m, _ := tiny.NewReference(tc)
	sig, _ := models.KarrasSigmas(28, 0.002, 700, 7)
	cfg := models.SamplerConfig{Frames: tc.Frames, Channels: tiny.Channels, Height: tc.Height, Width: tc.Width, Sigmas: sig}
	smp, _ := models.NewSampler(m, cfg)

	image, _ := tiny.ConditioningImage(tc, 2)
	cond := models.Conditioning{Embedding: make([]float32, models.Embedding), ImageLatent: make([]float32, tiny.Channels*tc.Height*tc.Width)}
	if err := m.Encode(tc.Shape(1), image, cond.Embedding, cond.ImageLatent); err != nil {
		panic(err)
	}
	st := smp.Start(42, 0, cond)
	if err := smp.Run([]*models.State{st}, 0, models.Step(cfg.Steps())); err != nil {
		panic(err)
	}
	k, _ := tiny.Nearest(tc, st.X)
	fmt.Println("ends on template", k)
	// Output: ends on template 2
}
