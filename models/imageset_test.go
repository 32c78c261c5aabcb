package models

import (
	"strings"
	"testing"
)

// TestImageSetEmpty: a set built without NewImageSet, or nil, answers with
// an error instead of dividing by zero in a stage.
func TestImageSetEmpty(t *testing.T) {
	for _, s := range []*ImageSet{nil, {}} {
		if _, err := s.Image(3); err == nil || !strings.Contains(err.Error(), "no image for sample 3") {
			t.Errorf("empty set: image err %v", err)
		}
		if got := s.Label(3); got != "image 3" {
			t.Errorf("empty set: label %q", got)
		}
	}
	s, err := NewImageSet([][]float32{{1}, {2}}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if img, err := s.Image(3); err != nil || img[0] != 2 || s.Label(3) != "b" {
		t.Errorf("sample 3 of two images: %v %v %q", img, err, s.Label(3))
	}
}
