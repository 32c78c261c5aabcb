package tiny

import (
	"fmt"
	"math"
)

// background is the pixel value of the dark background on every channel;
// the latent map subtracts it, so the background is 0 in latent space.
const background = -0.8

// luma are the weights of the luminance latent channel.
var luma = [3]float64{0.299, 0.587, 0.114}

// colours of the shapes, RGB in [-1, 1]; template k uses colours[k%6].
var colours = [6][3]float64{
	{0.9, -0.6, -0.6},  // red
	{-0.6, 0.9, -0.6},  // green
	{-0.4, -0.4, 0.95}, // blue
	{0.9, 0.9, -0.7},   // yellow
	{-0.7, 0.9, 0.9},   // cyan
	{0.9, -0.7, 0.9},   // magenta
}

// latentMap is A in lat = A·(pool(rgb) − background): 4×3.
var latentMap = [4][3]float64{
	{1, 0, 0},
	{0, 1, 0},
	{0, 0, 1},
	{luma[0], luma[1], luma[2]},
}

// pixelMap is the pseudo-inverse A⁺ = (AᵀA)⁻¹Aᵀ of latentMap: 3×4.
var pixelMap = pseudoInverse(latentMap)

func pseudoInverse(a [4][3]float64) [3][4]float64 {
	var m [3][3]float64 // AᵀA
	for i := range 3 {
		for j := range 3 {
			for k := range 4 {
				m[i][j] += a[k][i] * a[k][j]
			}
		}
	}
	// inverse of the symmetric 3×3 by cofactors
	det := m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) -
		m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) +
		m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
	var inv [3][3]float64
	for i := range 3 {
		for j := range 3 {
			r0, r1 := (j+1)%3, (j+2)%3
			c0, c1 := (i+1)%3, (i+2)%3
			inv[i][j] = (m[r0][c0]*m[r1][c1] - m[r0][c1]*m[r1][c0]) / det
		}
	}
	var p [3][4]float64
	for i := range 3 {
		for k := range 4 {
			for j := range 3 {
				p[i][k] += inv[i][j] * a[k][j]
			}
		}
	}
	return p
}

// drawFrame draws frame f of template k into px [3, H, W] (float64).
func (c Config) drawFrame(k, f int, px []float64) {
	H, W := 8*c.Height, 8*c.Width
	size := float64(min(H, W))
	radius := 0.16 * size
	travel := 0.6 * size
	theta := 2*math.Pi*float64(k)/float64(c.Templates) + math.Pi/8
	pos := 0.0
	if c.Frames > 1 {
		pos = float64(f)/float64(c.Frames-1) - 0.5
	}
	cx := float64(W)/2 + pos*travel*math.Cos(theta)
	cy := float64(H)/2 + pos*travel*math.Sin(theta)
	col := colours[k%len(colours)]
	square := k%2 == 1
	for y := range H {
		for x := range W {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			var in bool
			if square {
				in = math.Abs(dx) <= radius*0.9 && math.Abs(dy) <= radius*0.9
			} else {
				in = dx*dx+dy*dy <= radius*radius
			}
			for ch := range 3 {
				v := background
				if in {
					v = col[ch]
				}
				px[(ch*H+y)*W+x] = v
			}
		}
	}
}

// encodeImage maps pixels px [3, 8h, 8w] to the latent lat [4, h, w]:
// lat = A·(avgpool8(px) − background).
func (c Config) encodeImage(px []float64, lat []float64) {
	h, w := c.Height, c.Width
	H, W := 8*h, 8*w
	for i := range h {
		for j := range w {
			var pool [3]float64
			for ch := range 3 {
				s := 0.0
				for y := 8 * i; y < 8*i+8; y++ {
					for x := 8 * j; x < 8*j+8; x++ {
						s += px[(ch*H+y)*W+x]
					}
				}
				pool[ch] = s/64 - background
			}
			for o := range Channels {
				v := 0.0
				for ch := range 3 {
					v += latentMap[o][ch] * pool[ch]
				}
				lat[(o*h+i)*w+j] = v
			}
		}
	}
}

// decodeLatent maps a latent [4, h, w] to pixels [3, 8h, 8w]:
// clip(A⁺·lat + background, −1, 1), upsampled 8× by repetition.
func (c Config) decodeLatent(lat []float64, px []float32) {
	h, w := c.Height, c.Width
	H, W := 8*h, 8*w
	for i := range h {
		for j := range w {
			for ch := range 3 {
				v := background
				for o := range Channels {
					v += pixelMap[ch][o] * lat[(o*h+i)*w+j]
				}
				v = math.Max(-1, math.Min(1, v))
				for y := 8 * i; y < 8*i+8; y++ {
					for x := 8 * j; x < 8*j+8; x++ {
						px[(ch*H+y)*W+x] = float32(v)
					}
				}
			}
		}
	}
}

// TemplatePixels returns template k as pixels [F, 3, 8h, 8w] in [-1, 1].
func TemplatePixels(cfg Config, k int) ([]float32, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if k < 0 || k >= cfg.Templates {
		return nil, fmt.Errorf("tiny: template %d: want 0..%d", k, cfg.Templates-1)
	}
	n := 3 * 64 * cfg.Height * cfg.Width
	px := make([]float64, n)
	out := make([]float32, cfg.Frames*n)
	for f := range cfg.Frames {
		cfg.drawFrame(k, f, px)
		for i, v := range px {
			out[f*n+i] = float32(v)
		}
	}
	return out, nil
}

// ConditioningImage returns the conditioning image of template k: its first
// frame as pixels [3, 8h, 8w] in [-1, 1].
func ConditioningImage(cfg Config, k int) ([]float32, error) {
	px, err := TemplatePixels(cfg, k)
	if err != nil {
		return nil, err
	}
	return px[:3*64*cfg.Height*cfg.Width], nil
}

// Templates returns the K template clips in latent space, each
// [F, 4, h, w] (float32, as the ONNX graphs hold them).
func Templates(cfg Config) ([][]float32, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h, w := cfg.Height, cfg.Width
	px := make([]float64, 3*64*h*w)
	lat := make([]float64, Channels*h*w)
	out := make([][]float32, cfg.Templates)
	for k := range out {
		t := make([]float32, 0, cfg.latentSize())
		for f := range cfg.Frames {
			cfg.drawFrame(k, f, px)
			cfg.encodeImage(px, lat)
			for _, v := range lat {
				t = append(t, float32(v))
			}
		}
		norm := 0.0
		for _, v := range t[:Channels*h*w] {
			norm += float64(v) * float64(v)
		}
		if norm == 0 {
			return nil, fmt.Errorf("tiny: template %d: first frame is blank at latent %dx%d", k, h, w)
		}
		out[k] = t
	}
	return out, nil
}

// Nearest returns the template k closest to a clip latent [F, 4, h, w] and
// the root-mean-square distance to it, per element. A latent of the wrong
// size or an invalid config gives k = −1 and an infinite distance.
func Nearest(cfg Config, latent []float32) (k int, dist float64) {
	ts, err := Templates(cfg)
	if err != nil || len(latent) != cfg.latentSize() {
		return -1, math.Inf(1)
	}
	k, best := -1, math.Inf(1)
	for i, t := range ts {
		d := 0.0
		for j, v := range t {
			e := float64(latent[j]) - float64(v)
			d += e * e
		}
		if d < best {
			k, best = i, d
		}
	}
	return k, math.Sqrt(best / float64(len(latent)))
}
