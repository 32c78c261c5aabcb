package main

import (
	"bytes"
	"encoding/json"
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

	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/plan"
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

	ci, err := loadImages([]string{halves}, 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	img := ci.images[0]
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

	ci, err = loadImages([]string{checker}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ci.images[0] {
		if !near(v, 0, 1e-6) {
			t.Errorf("checkerboard shrunk: value %d = %g, want 0", i, v)
		}
	}

	ci, err = loadImages([]string{grow}, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	img = ci.images[0]
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
	ci, err := loadImages([]string{jpg, pngFile}, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		img, err := ci.image(i)
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
		if got := ci.name(i); got != "image "+file {
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
			_, err := loadImages(tc.files, 8, 8)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, "--images") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	for _, s := range []string{"", " ", "a.png,,b.png", "a.png,"} {
		if _, err := parseImageList(s); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("parseImageList(%q): error %v, want one saying an entry or the list is empty", s, err)
		}
	}
	if got, err := parseImageList("a.png, b.jpg"); err != nil || len(got) != 2 || got[0] != "a.png" || got[1] != "b.jpg" {
		t.Errorf("parseImageList(\"a.png, b.jpg\") = %q, %v", got, err)
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

// TestImagesFlagErrors checks the errors of --images on the command line,
// before any work (no ONNX Runtime needed).
func TestImagesFlagErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeImage(t, dir, "good.png", fill(4, 4, func(int, int) color.Color { return color.White }))
	svd := svdPlan(t)
	out := filepath.Join(dir, "out")
	cases := []struct {
		name string
		args []string
		want []string
		not  string
	}{
		{"svd without images", []string{"run", svd, "--out", out}, []string{"model.family svd", "--images"}, ""},
		{"svd profile without images", []string{"profile", svd}, []string{"model.family svd", "--images"}, ""},
		{"empty", []string{"run", planFile, "--images", "", "--out", out}, []string{"--images is empty"}, ""},
		{"empty entry", []string{"validate", planFile, "--images", good + ",,"}, []string{"entry 2 is empty"}, ""},
		{"missing file", []string{"run", planFile, "--out", out, "--images", filepath.Join(dir, "nope.png")}, []string{"--images", "nope.png"}, ""},
		// svd with images gets past the family check, to its model files
		// (not in this repository).
		{"svd with images", []string{"validate", svd, "--images", good}, []string{"model.onnx.unet is not set"}, "model.family"},
		{"svd missing image", []string{"run", svd, "--images", filepath.Join(dir, "nope.png"), "--out", out}, []string{"nope.png"}, "model.family"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runApp(t, tc.args...)
			if err == nil {
				t.Fatalf("vdexec %s: no error", strings.Join(tc.args, " "))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("vdexec %s: error %q does not mention %q", strings.Join(tc.args, " "), err, w)
				}
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("vdexec %s: error %q mentions %q", strings.Join(tc.args, " "), err, tc.not)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv("VDEXEC_IMAGES", filepath.Join(dir, "fromenv.png"))
		_, _, err := runApp(t, "run", planFile, "--out", out)
		if err == nil || !strings.Contains(err.Error(), "fromenv.png") {
			t.Errorf("VDEXEC_IMAGES: error %v, want one naming fromenv.png", err)
		}
	})
}

// svdPlan writes a copy of an SVD plan of the repository with transport
// inproc (this build has no NCCL); it names no ONNX files.
func svdPlan(t *testing.T) string {
	t.Helper()
	configs, err := filepath.Abs(filepath.Join("..", "..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(configs, "svd-14f-320x576-2xa5000.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, r := range [][2]string{{"transport: nccl", "transport: inproc"}, {"costs: profiles/", "costs: " + configs + "/profiles/"}} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("the svd plan has no %q to replace", r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	path := filepath.Join(t.TempDir(), "svd.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readSampleRecord reads dir/sample_NNNNN/sample.json.
func readSampleRecord(t *testing.T, dir string, id int) exec.SampleRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, exec.SampleDir(id), "sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r exec.SampleRecord
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s sample.json: %v", exec.SampleDir(id), err)
	}
	return r
}

// imageRunFiles writes two conditioning images of different sizes.
func imageRunFiles(t *testing.T) (string, string) {
	dir := t.TempDir()
	a := writeImage(t, dir, "a.png", fill(200, 90, func(x, y int) color.Color { return color.NRGBA{uint8(x), uint8(y), 128, 255} }))
	b := writeImage(t, dir, "b.jpg", fill(40, 40, func(x, _ int) color.Color { return color.NRGBA{0, uint8(6 * x), 200, 255} }))
	return a, b
}

func TestRunImages(t *testing.T) {
	needORT(t)
	a, b := imageRunFiles(t)
	dir := filepath.Join(t.TempDir(), "run")
	_, errOut, err := runApp(t, "run", planFile, "--samples", "3", "--steps", "2", "--out", dir, "--images", a+","+b)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	checkRunDir(t, dir, 3)
	for id, file := range []string{a, b, a} {
		if r := readSampleRecord(t, dir, id); r.Conditioning != "image "+file {
			t.Errorf("sample %d: conditioning %q, want image %s", id, r.Conditioning, file)
		}
	}
	// The images, not the tiny model's templates, conditioned the run:
	// the same sample without --images ends on another latent.
	def := filepath.Join(t.TempDir(), "default")
	if _, errOut, err := runApp(t, "run", planFile, "--samples", "1", "--steps", "2", "--out", def); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if d, r := readSampleRecord(t, def, 0), readSampleRecord(t, dir, 0); d.Seed != r.Seed || d.LatentSHA256 == r.LatentSHA256 {
		t.Errorf("sample 0 with --images: seed %d, latent %s; with the templates: seed %d, latent %s; want the same seed and another latent",
			r.Seed, r.LatentSHA256, d.Seed, d.LatentSHA256)
	}
	out, _, err := runApp(t, "validate", planFile, "--images", a)
	if err != nil || !strings.Contains(out, "conditioning images: "+a) {
		t.Errorf("validate --images: %v\n%s", err, out)
	}
}

// TestRunImagesTCP checks that the worker processes get --images: the
// encoding stage reads them and the decoding one names them.
func TestRunImagesTCP(t *testing.T) {
	needORT(t)
	t.Setenv(envWorker, "1")
	a, b := imageRunFiles(t)
	p := writePlan(t, "transport: inproc", "transport: tcp")
	dir := filepath.Join(t.TempDir(), "run")
	_, errOut, err := runApp(t, "run", p, "--samples", "2", "--steps", "2", "--out", dir, "--timeout", "60s", "--images", a+","+b)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	checkRunDir(t, dir, 2)
	for id, file := range []string{a, b} {
		if r := readSampleRecord(t, dir, id); r.Conditioning != "image "+file {
			t.Errorf("sample %d: conditioning %q, want image %s", id, r.Conditioning, file)
		}
	}
}

func TestProfileImages(t *testing.T) {
	needORT(t)
	a, _ := imageRunFiles(t)
	path := filepath.Join(t.TempDir(), "profile.yaml")
	if _, _, err := runApp(t, "profile", planFile, "-o", path, "--reps", "1", "--warmup", "0", "--steps", "2", "--images", a); err != nil {
		t.Fatal(err)
	}
	if _, err := plan.LoadProfile(path); err != nil {
		t.Errorf("profile made with --images does not load: %v", err)
	}
	// A broken image stops the profile with the file's name.
	bad := filepath.Join(t.TempDir(), "bad.png")
	if err := os.WriteFile(bad, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runApp(t, "profile", planFile, "-o", path, "--reps", "1", "--images", bad); err == nil || !strings.Contains(err.Error(), "bad.png") {
		t.Errorf("profile with a broken image: %v", err)
	}
}
