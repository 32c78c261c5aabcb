package images

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeImage writes img to dir/name as PNG, JPEG or GIF by the name's
// extension and returns the path.
func writeImage(t *testing.T, dir, name string, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch filepath.Ext(name) {
	case ".png":
		err = png.Encode(&buf, img)
	case ".jpg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100})
	case ".gif":
		err = gif.Encode(&buf, img, nil)
	default:
		t.Fatalf("writeImage: unknown extension of %s", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fill returns a w×h picture coloured by f(x, y).
func fill(w, h int, f func(x, y int) color.Color) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, f(x, y))
		}
	}
	return img
}

// unit maps an 8-bit intensity to [-1, 1] as the loader must.
func unit(v uint8) float32 { return float32(v)/255*2 - 1 }

// at returns channel c at (x, y) of a [3, h, w] tensor.
func at(img []float32, h, w, c, x, y int) float32 { return img[c*h*w+y*w+x] }

func near(a, b, tol float32) bool { return math.Abs(float64(a-b)) <= float64(tol) }

func TestLoadImagesPNG(t *testing.T) {
	dir := t.TempDir()
	a := color.NRGBA{255, 0, 51, 255}  // → 1, -1, -0.6
	b := color.NRGBA{0, 102, 255, 255} // → -1, -0.2, 1
	// 16 wide, 8 high: left half a, right half b; shrunk to 8×4 (area).
	halves := writeImage(t, dir, "halves.png", fill(16, 8, func(x, _ int) color.Color {
		if x < 8 {
			return a
		}
		return b
	}))
	// 4×4 black and white checkerboard: each pixel of the 2×2 result
	// averages two black and two white ones: mid-grey, 0.
	checker := writeImage(t, dir, "checker.png", fill(4, 4, func(x, y int) color.Color {
		if (x+y)%2 == 0 {
			return color.White
		}
		return color.Black
	}))
	// 2×2 quadrants grown to 8×8 (bilinear): the corners keep their colours.
	quads := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}}
	grow := writeImage(t, dir, "grow.png", fill(2, 2, func(x, y int) color.Color { return quads[y*2+x] }))

	ci, err := Load([]string{halves}, 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	img := ci.Images[0]
	if len(img) != 3*4*8 {
		t.Fatalf("%d values, want 3×4×8", len(img))
	}
	for y := range 4 {
		for x := range 8 {
			want := a
			if x >= 4 {
				want = b
			}
			for c, v := range []uint8{want.R, want.G, want.B} {
				if got := at(img, 4, 8, c, x, y); !near(got, unit(v), 1e-6) {
					t.Errorf("halves: channel %d at (%d, %d) = %g, want %g", c, x, y, got, unit(v))
				}
			}
		}
	}

	ci, err = Load([]string{checker}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ci.Images[0] {
		if !near(v, 0, 1e-6) {
			t.Errorf("checkerboard shrunk: value %d = %g, want 0", i, v)
		}
	}

	ci, err = Load([]string{grow}, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	img = ci.Images[0]
	corners := [][2]int{{0, 0}, {7, 0}, {0, 7}, {7, 7}}
	for q, xy := range corners {
		for c, v := range []uint8{quads[q].R, quads[q].G, quads[q].B} {
			if got := at(img, 8, 8, c, xy[0], xy[1]); !near(got, unit(v), 1e-6) {
				t.Errorf("grown: channel %d at %v = %g, want %g", c, xy, got, unit(v))
			}
		}
	}
	// Between red (top left) and green (top right) on the top row, red
	// falls as x grows.
	for x := 1; x < 8; x++ {
		if at(img, 8, 8, 0, x, 0) > at(img, 8, 8, 0, x-1, 0) {
			t.Errorf("grown: red rises from x=%d to %d on the top row", x-1, x)
		}
	}
	for i, v := range img {
		if v < -1 || v > 1 {
			t.Fatalf("value %d = %g outside [-1, 1]", i, v)
		}
	}
}

func TestLoadImagesJPEGAndCycle(t *testing.T) {
	dir := t.TempDir()
	grey := color.NRGBA{191, 191, 191, 255} // 0.498…
	jpg := writeImage(t, dir, "grey.jpg", fill(24, 24, func(int, int) color.Color { return grey }))
	pngFile := writeImage(t, dir, "black.png", fill(3, 5, func(int, int) color.Color { return color.Black }))
	ci, err := Load([]string{jpg, pngFile}, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		img, err := ci.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		want, file := unit(191), jpg
		if i%2 == 1 {
			want, file = -1, pngFile
		}
		for k, v := range img {
			// JPEG is lossy (colour conversion): allow a few levels.
			if !near(v, want, 0.04) {
				t.Fatalf("sample %d: value %d = %g, want about %g (image %s)", i, k, v, want, file)
			}
		}
		if got := ci.Label(i); got != "image "+file {
			t.Errorf("sample %d: conditioning %q, want image %s", i, got, file)
		}
	}
}

func TestLoadImagesErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeImage(t, dir, "good.png", fill(4, 4, func(int, int) color.Color { return color.White }))
	garbage := filepath.Join(dir, "garbage.png")
	if err := os.WriteFile(garbage, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.png")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	gifFile := writeImage(t, dir, "anim.gif", image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White}))
	missing := filepath.Join(dir, "missing.png")
	cases := []struct {
		name  string
		files []string
		want  []string
	}{
		{"missing", []string{good, missing}, []string{"missing.png", "no such file"}},
		{"garbage", []string{garbage}, []string{"garbage.png", "not a PNG or JPEG"}},
		{"truncated", []string{truncated}, []string{"truncated.png", "decode png"}},
		{"gif", []string{gifFile}, []string{"anim.gif", "gif", "want PNG or JPEG"}},
		{"both named", []string{missing, garbage}, []string{"missing.png", "garbage.png"}},
		{"none", nil, []string{"no files"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.files, 8, 8)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestResampleWeights(t *testing.T) {
	for _, mn := range [][2]int{{1, 1}, {1, 7}, {2, 8}, {8, 2}, {7, 3}, {3, 7}, {576, 40}, {5, 5}} {
		m, n := mn[0], mn[1]
		ws := resampleWeights(m, n)
		if len(ws) != n {
			t.Fatalf("%d→%d: %d outputs", m, n, len(ws))
		}
		for j, taps := range ws {
			var sum float32
			for _, tp := range taps {
				if tp.i < 0 || tp.i >= m || tp.w <= 0 {
					t.Errorf("%d→%d: output %d: tap %+v", m, n, j, tp)
				}
				sum += tp.w
			}
			if !near(sum, 1, 1e-5) {
				t.Errorf("%d→%d: output %d: weights sum to %g", m, n, j, sum)
			}
		}
	}
}
