package models

import (
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// testVideo is F frames of a white 2×2 square moving right on black.
func testVideo(f, h, w int) []float32 {
	v := make([]float32, f*3*h*w)
	for i := range v {
		v[i] = -1
	}
	for i := range f {
		for c := range 3 {
			for y := 1; y < 3; y++ {
				for x := i; x < i+2; x++ {
					v[((i*3+c)*h+y)*w+x] = 1
				}
			}
		}
	}
	return v
}

func TestWriteGIF(t *testing.T) {
	const f, h, w = 4, 6, 8
	path := filepath.Join(t.TempDir(), "v.gif")
	if err := WriteGIF(path, testVideo(f, h, w), f, h, w, 10); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	g, err := gif.DecodeAll(fh)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != f || g.Config.Width != w || g.Config.Height != h {
		t.Fatalf("gif: %d frames of %dx%d, want %d of %dx%d", len(g.Image), g.Config.Width, g.Config.Height, f, w, h)
	}
	for i, img := range g.Image {
		for x := range w {
			r, _, _, _ := img.At(x, 1).RGBA()
			white := x == i || x == i+1
			if (r>>8 == 255) != white {
				t.Errorf("frame %d pixel (%d,1): red %d, want white=%v", i, x, r>>8, white)
			}
		}
		if g.Delay[i] != 10 {
			t.Errorf("frame %d delay %d, want 10", i, g.Delay[i])
		}
	}
	if err := WriteGIF(path, make([]float32, 5), f, h, w, 10); err == nil {
		t.Error("WriteGIF with a short buffer: no error")
	}
}

func TestWritePNGFrames(t *testing.T) {
	const f, h, w = 3, 4, 5
	dir := t.TempDir()
	paths, err := WritePNGFrames(dir, "s0_", testVideo(f, h, w), f, h, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != f || filepath.Base(paths[2]) != "s0_002.png" {
		t.Fatalf("paths %v", paths)
	}
	fh, err := os.Open(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _, _ := img.At(1, 1).RGBA(); r>>8 != 255 {
		t.Errorf("frame 1 pixel (1,1) red %d, want 255", r>>8)
	}
	if r, _, _, _ := img.At(0, 1).RGBA(); r>>8 != 0 {
		t.Errorf("frame 1 pixel (0,1) red %d, want 0", r>>8)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != f {
		t.Errorf("%d files in the directory, want %d (no temporary files left)", len(entries), f)
	}
}
