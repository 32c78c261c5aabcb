// Package family is the registry of the model families a plan may name
// (model.family): what each brings with it, so that the executor and the
// command-line tools need not know the families themselves.
//
//	set, err := family.Images(p.Model.Family, shape) // built-in conditioning, when the family has one
//	opts := exec.Options{Images: set.Image, Conditioning: set.Label}
package family

import (
	"fmt"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/tiny"
)

// The families (plan: model.family).
const (
	// Tiny is the built-in tiny model (models/tiny), with its templates
	// as conditioning images.
	Tiny = "tiny"
	// SVD is Stable Video Diffusion as exported from diffusers; its
	// conditioning images come from the user.
	SVD = "svd"
)

// entry is what the registry knows of one family.
type entry struct {
	// images returns the built-in conditioning images; nil: none.
	images func(s models.Shape) (*models.ImageSet, error)
	// files says where the family's model files come from, for a
	// message about a missing one; "" when the user brings them.
	files string
}

// families is the registry, keyed by the plan's word.
var families = map[string]entry{
	Tiny: {
		images: tiny.DefaultImages,
		files:  "the tiny model's files are committed in models/tiny (regenerate with `go run ./models/tiny/gen`)",
	},
	SVD: {},
}

// HasImages reports whether family name has built-in conditioning images.
func HasImages(name string) bool {
	return families[name].images != nil
}

// Images returns the built-in conditioning images of family name for a
// latent shape s (frames, channels, height and width; the batch is
// ignored); sample i gets image i mod N. A family without built-in images
// (svd) is an error: its images come from the user.
func Images(name string, s models.Shape) (*models.ImageSet, error) {
	e, ok := families[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("family: unknown model family %q: want %s or %s", name, Tiny, SVD)
	case e.images == nil:
		return nil, fmt.Errorf("family: model family %s has no built-in conditioning images; only family %s has", name, Tiny)
	}
	set, err := e.images(s)
	if err != nil {
		return nil, fmt.Errorf("family %s: %w", name, err)
	}
	return set, nil
}

// FilesHint says where the model files of family name come from, for a
// message about a missing file; "" when the user brings them.
func FilesHint(name string) string {
	return families[name].files
}
