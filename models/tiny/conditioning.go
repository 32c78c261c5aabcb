package tiny

import (
	"fmt"

	"github.com/vdpp/vdpp/models"
)

// ConfigFor is the default configuration (DefaultConfig) with the frame
// count and latent size of s: the tiny model a plan of that shape runs.
func ConfigFor(s models.Shape) Config {
	c := DefaultConfig()
	c.Frames = s.Frames
	c.Height, c.Width = s.Height, s.Width
	return c
}

// DefaultImages is the tiny model's built-in conditioning for a plan of
// latent shape s (its Batch is ignored): sample i gets the first frame of
// template i mod K, labelled "tiny template k", so that the samples land
// on the templates in turn.
func DefaultImages(s models.Shape) (*models.ImageSet, error) {
	if s.Channels != Channels {
		return nil, fmt.Errorf("tiny: the model has %d latent channels, the plan says %d", Channels, s.Channels)
	}
	cfg := ConfigFor(s)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set := &models.ImageSet{Images: make([][]float32, cfg.Templates), Labels: make([]string, cfg.Templates)}
	for k := range cfg.Templates {
		img, err := ConditioningImage(cfg, k)
		if err != nil {
			return nil, err
		}
		set.Images[k] = img
		set.Labels[k] = fmt.Sprintf("tiny template %d", k)
	}
	return set, nil
}
