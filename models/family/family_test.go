package family

import (
	"strings"
	"testing"

	"github.com/vdpp/vdpp/models/tiny"
)

func TestImages(t *testing.T) {
	cfg := tiny.DefaultConfig()
	set, err := Images(Tiny, cfg.Shape(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Images) != cfg.Templates || set.Label(cfg.Templates+1) != "tiny template 1" {
		t.Errorf("tiny: %d images, sample %d labelled %q; want %d, \"tiny template 1\"", len(set.Images), cfg.Templates+1, set.Label(cfg.Templates+1), cfg.Templates)
	}
	if !HasImages(Tiny) || HasImages(SVD) || HasImages("nope") {
		t.Errorf("HasImages: tiny %v, svd %v, nope %v; want true, false, false", HasImages(Tiny), HasImages(SVD), HasImages("nope"))
	}
	for name, want := range map[string]string{SVD: "no built-in conditioning images", "nope": "unknown model family"} {
		if _, err := Images(name, cfg.Shape(1)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, want)
		}
	}
	bad := cfg.Shape(1)
	bad.Channels = 3
	if _, err := Images(Tiny, bad); err == nil || !strings.Contains(err.Error(), "family tiny") {
		t.Errorf("tiny with 3 channels: error %v, want it to name the family", err)
	}
	if FilesHint(Tiny) == "" || FilesHint(SVD) != "" {
		t.Errorf("FilesHint: tiny %q, svd %q", FilesHint(Tiny), FilesHint(SVD))
	}
}
