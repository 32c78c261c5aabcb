package main

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // --images: JPEG files
	_ "image/png"  // --images: PNG files
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
)

// flagImages names the conditioning images.
const flagImages = "images"

// imagesFlag is the --images flag of run, profile, validate and worker.
func imagesFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    flagImages,
		EnvVars: cliutil.Env(envPrefix, flagImages),
		Usage: "conditioning images `FILE,FILE,...` (PNG or JPEG): sample i uses image i mod N, resized to the model's " +
			"pixel size (8·latent h × 8·latent w); needed for family svd, replaces the tiny model's templates for family tiny",
	}
}

// maxImagePixels bounds the size of a conditioning image file's picture,
// checked before decoding it.
const maxImagePixels = 1 << 28

// conditioningImages is the decoded --images list: one [3, H, W] image per
// file, values in [-1, 1].
type conditioningImages struct {
	names  []string
	images [][]float32
}

// image is exec.Options.Images: sample i gets image i mod N.
func (ci *conditioningImages) image(i int) ([]float32, error) {
	return ci.images[i%len(ci.images)], nil
}

// name is exec.Options.Conditioning: the file of sample i's image.
func (ci *conditioningImages) name(i int) string {
	return "image " + ci.names[i%len(ci.names)]
}

// parseImageList splits the value of --images into file names; an empty
// list or an empty entry is an error.
func parseImageList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("--%s is empty: give one or more PNG or JPEG files, comma-separated", flagImages)
	}
	files := strings.Split(s, ",")
	for i, f := range files {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("--%s %q: entry %d is empty: give PNG or JPEG files separated by single commas", flagImages, s, i+1)
		}
		files[i] = f
	}
	return files, nil
}

// imagesFromFlag loads the --images of c for plan p, resized to its pixel
// size; nil when the flag is not set.
func imagesFromFlag(c *cli.Context, p *plan.Plan) (*conditioningImages, error) {
	if !c.IsSet(flagImages) {
		return nil, nil
	}
	files, err := parseImageList(c.String(flagImages))
	if err != nil {
		return nil, err
	}
	return loadImages(files, 8*p.Model.Latent.Height, 8*p.Model.Latent.Width)
}

// loadImages decodes every file (PNG or JPEG) and resizes it to h×w as
// [3, h, w] float32 RGB in [-1, 1], row-major. An error names the file;
// all files are tried and their errors returned together.
func loadImages(files []string, h, w int) (*conditioningImages, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("--%s: no files: give one or more PNG or JPEG files, comma-separated", flagImages)
	}
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("--%s: the model's pixel size %d×%d is empty", flagImages, h, w)
	}
	ci := &conditioningImages{names: files, images: make([][]float32, len(files))}
	var errs []error
	for i, f := range files {
		img, err := readImage(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flagImages, err))
			continue
		}
		ci.images[i] = toTensor(img, h, w)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ci, nil
}

// readImage decodes a PNG or JPEG file; errors name the file.
func readImage(file string) (image.Image, error) {
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
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return nil, fmt.Errorf("%s: %d×%d pixels: want a picture of at least 1 and at most %d pixels", file, cfg.Width, cfg.Height, maxImagePixels)
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

// toTensor resizes img to h×w and returns it as [3, h, w] float32 RGB in
// [-1, 1] (0 → -1, full intensity → 1), row-major, as models.Model.Encode
// takes it. A transparent picture counts as composited over black.
// Resampling is separable: the area average of the source pixels an
// output pixel covers where the picture shrinks, bilinear where it grows.
func toTensor(img image.Image, h, w int) []float32 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	// The source as float RGB planes in [0, 1].
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
