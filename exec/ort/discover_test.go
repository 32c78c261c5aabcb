package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiscover: the library that `make ort` fetched is found from a folder
// below the repository (bin/), the highest version first, and only in a
// vdpp checkout; a folder with
// none above it says where it looked and what to run.
func TestDiscover(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"1.9.0", "1.24.3", "1.10.1"} {
		dir := filepath.Join(root, "third_party", "onnxruntime-"+v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "libonnxruntime.so.1"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// Without a go.mod of this module the folder is not a checkout: its
	// third_party (planted by anyone, in /tmp say) is never taken.
	if got, _ := discover([]string{bin}); got != "" {
		t.Errorf("discover took %s from a folder that is not a vdpp checkout", got)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module "+repositoryModule+"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	got, _ := discover([]string{empty, bin})
	if want := filepath.Join(root, "third_party", "onnxruntime-1.24.3", "libonnxruntime.so.1"); got != want {
		t.Errorf("discover from %s = %q, want %q", bin, got, want)
	}
	got, looked := discover([]string{empty})
	if got != "" || len(looked) < 2 || looked[0] != empty || looked[len(looked)-1] != "/" {
		t.Fatalf("discover from %s = %q, looked in %v: want nothing, looked in it and every folder above", empty, got, looked)
	}
	err := noLibrary(looked)
	for _, want := range []string{"make ort", EnvLib + "=", empty, "third_party/onnxruntime-*/libonnxruntime.so.1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !errors.Is(err, ErrNoLibrary) {
		t.Errorf("error %v is not ErrNoLibrary", err)
	}
}

// TestDiscoverRepository: this repository's library is found from the
// test's folder when `make ort` fetched it.
func TestDiscoverRepository(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(wd, "..", "..", libGlob))
	got, looked := discover([]string{wd})
	if len(matches) == 0 {
		if got != "" {
			t.Errorf("found %s, but `make ort` fetched nothing", got)
		}
		return
	}
	if got == "" || !samePath(filepath.Dir(filepath.Dir(filepath.Dir(got))), filepath.Join(wd, "..", "..")) {
		t.Errorf("discover from %s = %q (looked in %v), want the repository's library", wd, got, looked)
	}
}

// fakeTB records what NeedForTest asks of a test.
type fakeTB struct{ skipped, failed string }

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

// TestNeedForTest: without a library a test fails saying to run make
// ort; with VDPP_ORT_OPTIONAL=1 it is skipped; with one nothing happens.
func TestNeedForTest(t *testing.T) {
	noLib := noLibrary([]string{"/x"})
	t.Setenv(EnvOptional, "")
	var f fakeTB
	needForTest(&f, noLib)
	if f.skipped != "" || !strings.Contains(f.failed, "run `make ort`") || !strings.Contains(f.failed, EnvOptional+"=1") {
		t.Errorf("no library: skipped %q, failed %q; want a failure saying to run make ort", f.skipped, f.failed)
	}
	t.Setenv(EnvOptional, "1")
	f = fakeTB{}
	needForTest(&f, noLib)
	if f.failed != "" || !strings.Contains(f.skipped, EnvOptional) {
		t.Errorf("no library, %s=1: skipped %q, failed %q; want a skip", EnvOptional, f.skipped, f.failed)
	}
	f = fakeTB{}
	needForTest(&f, nil)
	if f.failed != "" || f.skipped != "" {
		t.Errorf("library loaded: skipped %q, failed %q", f.skipped, f.failed)
	}
}

// TestInitEmptyKeepsLoaded: once a library is loaded (say by --ort-lib),
// Init("") from a stage keeps it, whatever $VDPP_ORT_LIB names; it used to
// read the variable again and fail with "already loaded from".
func TestInitEmptyKeepsLoaded(t *testing.T) {
	NeedForTest(t)
	t.Setenv(EnvLib, filepath.Join(t.TempDir(), "another", "libonnxruntime.so.1"))
	if err := Init(""); err != nil {
		t.Fatalf("Init(\"\") after a library was loaded: %v", err)
	}
	if err := Init(os.Getenv(EnvLib)); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Init of another library: %v, want an error saying one is already loaded", err)
	}
}
