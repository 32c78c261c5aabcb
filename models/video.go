package models

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"path/filepath"

	"github.com/vdpp/vdpp/internal/atomicfile"
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
	f := (v + 1) * 127.5
	switch {
	case !(f > 0): // also NaN
		return 0
	case f >= 255:
		return 255
	}
	return uint8(f + 0.5)
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

// Video is a clip encoded for writing: an animated GIF and one PNG per
// frame. Encoding is CPU work of its own (tens of milliseconds for a small
// clip), so the executor does it inside the decode stage, where the cost
// profile measures it, and only the file writes happen in the background.
type Video struct {
	GIF  []byte
	PNGs [][]byte
}

// EncodeVideo encodes frames [F, 3, H, W] (values in [-1, 1]) as an
// animated, looping GIF with delayCS hundredths of a second per frame
// (colours mapped to a fixed 6×6×6 cube) and as one PNG per frame.
func EncodeVideo(frames []float32, f, height, width, delayCS int) (*Video, error) {
	if err := checkVideo(frames, f, height, width); err != nil {
		return nil, err
	}
	if delayCS < 0 {
		return nil, fmt.Errorf("models: video: gif delay %d: want ≥ 0", delayCS)
	}
	v := &Video{PNGs: make([][]byte, f)}
	anim := &gif.GIF{}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	for i := range f {
		rgba, err := FrameImage(frames, i, height, width)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := enc.Encode(&buf, rgba); err != nil {
			return nil, fmt.Errorf("models: video: png frame %d: %w", i, err)
		}
		v.PNGs[i] = buf.Bytes()
		pal := image.NewPaletted(rgba.Rect, gifPalette)
		for k := range height * width {
			px := rgba.Pix[4*k : 4*k+3]
			pal.Pix[k] = 36*level(px[0]) + 6*level(px[1]) + level(px[2])
		}
		anim.Image = append(anim.Image, pal)
		anim.Delay = append(anim.Delay, delayCS)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, anim); err != nil {
		return nil, fmt.Errorf("models: video: gif: %w", err)
	}
	v.GIF = buf.Bytes()
	return v, nil
}

// WriteGIF writes frames [F, 3, H, W] (values in [-1, 1]) to path as an
// animated, looping GIF (see EncodeVideo), atomically.
func WriteGIF(path string, frames []float32, f, height, width, delayCS int) error {
	v, err := EncodeVideo(frames, f, height, width, delayCS)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, v.GIF)
}

// WritePNGFrames writes frames [F, 3, H, W] (values in [-1, 1]) as PNG
// files dir/<prefix>000.png, dir/<prefix>001.png, … (each atomically) and
// returns their paths.
func WritePNGFrames(dir, prefix string, frames []float32, f, height, width int) ([]string, error) {
	v, err := EncodeVideo(frames, f, height, width, 0)
	if err != nil {
		return nil, err
	}
	return v.WritePNGs(dir, prefix)
}

// WritePNGs writes the frames as dir/<prefix>000.png, … (each atomically)
// and returns their paths.
func (v *Video) WritePNGs(dir, prefix string) ([]string, error) {
	paths := make([]string, len(v.PNGs))
	for i, b := range v.PNGs {
		paths[i] = filepath.Join(dir, fmt.Sprintf("%s%03d.png", prefix, i))
		if err := atomicfile.Write(paths[i], b); err != nil {
			return nil, err
		}
	}
	return paths, nil
}
