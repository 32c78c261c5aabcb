package models

import "fmt"

// ImageSet is a list of conditioning images that samples take in turn:
// sample i gets image i mod N. Each image is [3, 8h, 8w] float32 RGB with
// values in [-1, 1], row-major, as Model.Encode takes it; each has a label
// that names it in a sample's record ("tiny template 2", "image a.png").
// Its methods fit the executor's hooks (exec.Options.Images and
// Conditioning) and may be called from several goroutines at once.
type ImageSet struct {
	Images [][]float32
	Labels []string
}

// NewImageSet checks that images and labels pair up and are not empty.
func NewImageSet(images [][]float32, labels []string) (*ImageSet, error) {
	if len(images) == 0 || len(images) != len(labels) {
		return nil, fmt.Errorf("models: image set: %d images and %d labels: want the same number, at least one", len(images), len(labels))
	}
	return &ImageSet{Images: images, Labels: labels}, nil
}

// Image returns the conditioning image of sample i (image i mod N), or an
// error for a set without images or a negative i.
func (s *ImageSet) Image(i int) ([]float32, error) {
	if s == nil || len(s.Images) == 0 || i < 0 {
		return nil, fmt.Errorf("models: image set: no image for sample %d (the set has none; build it with NewImageSet)", i)
	}
	return s.Images[i%len(s.Images)], nil
}

// Label names the conditioning image of sample i ("image i" when the set
// has no label for it).
func (s *ImageSet) Label(i int) string {
	if s == nil || len(s.Labels) == 0 || i < 0 {
		return fmt.Sprintf("image %d", i)
	}
	return s.Labels[i%len(s.Labels)]
}
