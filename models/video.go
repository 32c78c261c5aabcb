package models

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// FrameImage returns frame i of frames [F, 3, H, W] (values in [-1, 1],
// clipped) as an RGBA image.
func FrameImage(frames []float32, i, height, width int) (*image.RGBA, error) {
	n := 3 * height * width
	if height < 1 || width < 1 || i < 0 || (i+1)*n > len(frames) {
		return nil, fmt.Errorf("models: frame %d of %dx%d: out of range for %d values", i, height, width, len(frames))
	}
	px := frames[i*n : (i+1)*n]
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	hw := height * width
	for y := range height {
		for x := range width {
			o := img.PixOffset(x, y)
			for c := range 3 {
				img.Pix[o+c] = to8(px[c*hw+y*width+x])
			}
			img.Pix[o+3] = 255
		}
	}
	return img, nil
}

// to8 maps [-1, 1] to 0..255 (NaN to 0).
func to8(v float32) uint8 {
	f := (float64(v) + 1) * 127.5
	if !(f > 0) {
		return 0
	}
	return uint8(math.Min(255, math.Round(f)))
}

// gifPalette is the 6×6×6 colour cube; index 36r + 6g + b.
var gifPalette = func() color.Palette {
	p := make(color.Palette, 0, 216)
	for r := range 6 {
		for g := range 6 {
			for b := range 6 {
				p = append(p, color.RGBA{uint8(51 * r), uint8(51 * g), uint8(51 * b), 255})
			}
		}
	}
	return p
}()

func level(v uint8) uint8 { return uint8((int(v) + 25) / 51) }

func checkVideo(frames []float32, f, height, width int) error {
	if f < 1 || height < 1 || width < 1 {
		return fmt.Errorf("models: video of %d frames of %dx%d: want at least 1×1×1", f, height, width)
	}
	if len(frames) != f*3*height*width {
		return fmt.Errorf("models: video of %d frames of 3×%dx%d: %d values, want %d", f, height, width, len(frames), f*3*height*width)
	}
	return nil
}

// WriteGIF writes frames [F, 3, H, W] (values in [-1, 1]) to path as an
// animated, looping GIF with delayCS hundredths of a second per frame. The
// colours are mapped to a fixed 6×6×6 cube. The file is written atomically.
func WriteGIF(path string, frames []float32, f, height, width, delayCS int) error {
	if err := checkVideo(frames, f, height, width); err != nil {
		return err
	}
	if delayCS < 0 {
		return fmt.Errorf("models: gif %s: delay %d: want ≥ 0", path, delayCS)
	}
	anim := &gif.GIF{}
	for i := range f {
		rgba, err := FrameImage(frames, i, height, width)
		if err != nil {
			return err
		}
		pal := image.NewPaletted(rgba.Rect, gifPalette)
		for y := range height {
			for x := range width {
				o := rgba.PixOffset(x, y)
				r, g, b := level(rgba.Pix[o]), level(rgba.Pix[o+1]), level(rgba.Pix[o+2])
				pal.Pix[pal.PixOffset(x, y)] = 36*r + 6*g + b
			}
		}
		anim.Image = append(anim.Image, pal)
		anim.Delay = append(anim.Delay, delayCS)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, anim); err != nil {
		return fmt.Errorf("models: gif %s: %w", path, err)
	}
	return writeFileAtomic(path, buf.Bytes())
}

// WritePNGFrames writes frames [F, 3, H, W] (values in [-1, 1]) as PNG
// files dir/<prefix>000.png, dir/<prefix>001.png, … (each atomically) and
// returns their paths.
func WritePNGFrames(dir, prefix string, frames []float32, f, height, width int) ([]string, error) {
	if err := checkVideo(frames, f, height, width); err != nil {
		return nil, err
	}
	var paths []string
	for i := range f {
		img, err := FrameImage(frames, i, height, width)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, fmt.Sprintf("%s%03d.png", prefix, i))
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return nil, fmt.Errorf("models: png %s: %w", path, err)
		}
		if err := writeFileAtomic(path, buf.Bytes()); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so a reader never sees a partial file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("models: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("models: write %s: %w", path, err)
	}
	return nil
}
