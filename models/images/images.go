// Package images reads conditioning images from PNG and JPEG files and
// resamples them to a model's pixel size, as the [3, H, W] float32 RGB
// tensors in [-1, 1] that models.Model.Encode takes.
//
//	set, err := images.Load([]string{"a.png", "b.jpg"}, 8*latentH, 8*latentW)
//	// set.Image(i) is sample i's image (file i mod 2), set.Label(i) "image a.png" or "image b.jpg"
package images

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // JPEG files
	_ "image/png"  // PNG files
	"io"
	"os"

	"github.com/vdpp/vdpp/models"
)

// MaxPixels bounds the size of an image file's picture, checked before
// decoding it.
const MaxPixels = 1 << 28

// Load decodes every file (PNG or JPEG) and resizes it to h×w (see
// ToTensor). Image i is labelled "image FILE". An error names the file;
// all files are tried and their errors returned together (errors.Join).
func Load(files []string, h, w int) (*models.ImageSet, error) {
	if len(files) == 0 {
		return nil, errors.New("no files: give one or more PNG or JPEG files")
	}
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("the model's pixel size %d×%d is empty", h, w)
	}
	set := &models.ImageSet{Images: make([][]float32, len(files)), Labels: make([]string, len(files))}
	var errs []error
	for i, f := range files {
		img, err := Read(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set.Images[i] = ToTensor(img, h, w)
		set.Labels[i] = "image " + f
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

// Read decodes a PNG or JPEG file of at most MaxPixels pixels; errors
// name the file.
func Read(file string) (image.Image, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PNG or JPEG image: %w", file, err)
	}
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("%s: a %s image: want PNG or JPEG", file, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s: %d×%d pixels: want a picture of at least 1 and at most %d pixels", file, cfg.Width, cfg.Height, MaxPixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: decode %s: %w", file, format, err)
	}
	return img, nil
}

// ToTensor resizes img to h×w and returns it as [3, h, w] float32 RGB in
// [-1, 1] (0 → -1, full intensity → 1), row-major, as models.Model.Encode
// takes it. A transparent picture counts as composited over black.
// Resampling is separable: the area average of the source pixels an
// output pixel covers where the picture shrinks, bilinear where it grows.
func ToTensor(img image.Image, h, w int) []float32 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	src := planes(img)
	wx, wy := resampleWeights(sw, w), resampleWeights(sh, h)
	// Horizontal pass: [3, sh, w].
	mid := make([]float32, 3*sh*w)
	for c := range 3 {
		for y := range sh {
			row := src[c*sw*sh+y*sw:][:sw]
			for x, taps := range wx {
				var v float32
				for _, t := range taps {
					v += t.w * row[t.i]
				}
				mid[c*sh*w+y*w+x] = v
			}
		}
	}
	// Vertical pass and scaling to [-1, 1]: [3, h, w].
	out := make([]float32, 3*h*w)
	for c := range 3 {
		plane := mid[c*sh*w:][:sh*w]
		for y, taps := range wy {
			for x := range w {
				var v float32
				for _, t := range taps {
					v += t.w * plane[t.i*w+x]
				}
				out[c*h*w+y*w+x] = min(1, max(-1, 2*v-1))
			}
		}
	}
	return out
}

// planes returns img as float RGB planes [3, H, W] in [0, 1].
func planes(img image.Image) []float32 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	src := make([]float32, 3*sw*sh)
	for y := range sh {
		for x := range sw {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			k := y*sw + x
			src[k] = float32(r) / 0xffff
			src[sw*sh+k] = float32(g) / 0xffff
			src[2*sw*sh+k] = float32(bl) / 0xffff
		}
	}
	return src
}

// tap is one source pixel's weight in an output pixel.
type tap struct {
	i int
	w float32
}

// resampleWeights returns, for each of n output pixels along an axis of m
// source pixels, the source pixels and weights that make it (weights sum
// to 1): the overlap of the output pixel's span with each source pixel
// when shrinking (area), linear interpolation between the two nearest
// source pixel centres when growing or keeping the size.
func resampleWeights(m, n int) [][]tap {
	out := make([][]tap, n)
	scale := float64(m) / float64(n)
	for j := range n {
		if m > n {
			lo, hi := float64(j)*scale, float64(j+1)*scale
			for i := int(lo); i < m && float64(i) < hi; i++ {
				ov := min(hi, float64(i+1)) - max(lo, float64(i))
				if ov > 0 {
					out[j] = append(out[j], tap{i, float32(ov / scale)})
				}
			}
			continue
		}
		x := (float64(j)+0.5)*scale - 0.5
		x = min(max(x, 0), float64(m-1))
		i0 := int(x)
		f := x - float64(i0)
		if f == 0 || i0+1 >= m {
			out[j] = []tap{{i0, 1}}
			continue
		}
		out[j] = []tap{{i0, float32(1 - f)}, {i0 + 1, float32(f)}}
	}
	return out
}
