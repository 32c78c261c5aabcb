package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
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

// TestParseImageList checks the splitting of --images and that every
// file's error names the flag.
func TestParseImageList(t *testing.T) {
	for _, s := range []string{"", " ", "a.png,,b.png", "a.png,"} {
		if _, err := parseImageList(s); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("parseImageList(%q): error %v, want one saying an entry or the list is empty", s, err)
		}
	}
	if got, err := parseImageList("a.png, b.jpg"); err != nil || len(got) != 2 || got[0] != "a.png" || got[1] != "b.jpg" {
		t.Errorf("parseImageList(\"a.png, b.jpg\") = %q, %v", got, err)
	}
	err := eachPrefixed("--images", errors.Join(errors.New("a.png: bad"), errors.New("b.png: bad")))
	if got, want := err.Error(), "--images: a.png: bad\n--images: b.png: bad"; got != want {
		t.Errorf("eachPrefixed: %q, want %q", got, want)
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
