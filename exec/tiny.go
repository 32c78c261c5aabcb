package exec

import (
	"fmt"

	"github.com/vdpp/vdpp/models/tiny"
	"github.com/vdpp/vdpp/plan"
)

// TinyConfig is the tiny model configuration of a plan of family tiny: the
// default configuration with the plan's frame count and latent size.
func TinyConfig(p *plan.Plan) tiny.Config {
	c := tiny.DefaultConfig()
	c.Frames = p.Model.Frames
	c.Height, c.Width = p.Model.Latent.Height, p.Model.Latent.Width
	return c
}

// tinyImages is the tiny model's conditioning: sample i gets the first
// frame of template i mod K.
func tinyImages(p *plan.Plan) (func(int) ([]float32, error), func(int) string, error) {
	cfg := TinyConfig(p)
	if p.Model.Latent.Channels != tiny.Channels {
		return nil, nil, fmt.Errorf("exec: plan %s: family tiny has %d latent channels, the plan says %d", p.Name, tiny.Channels, p.Model.Latent.Channels)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("exec: plan %s: %w", p.Name, err)
	}
	k := cfg.Templates
	cache := make([][]float32, k)
	for i := range cache {
		img, err := tiny.ConditioningImage(cfg, i)
		if err != nil {
			return nil, nil, fmt.Errorf("exec: plan %s: %w", p.Name, err)
		}
		cache[i] = img
	}
	images := func(i int) ([]float32, error) { return cache[i%k], nil }
	name := func(i int) string { return fmt.Sprintf("tiny template %d", i%k) }
	return images, name, nil
}
