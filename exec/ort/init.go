// Package ort is the ONNX Runtime backend of the executor: it opens the
// three graphs of an SVD-style model (UNet, image encoder, decoder) as
// ONNX Runtime sessions and runs them behind models.Model.
//
// The library (libonnxruntime.so, ≥ 1.24 for C API 24) is loaded once per
// process by Init; sessions choose their provider (cpu or cuda) and thread
// counts through Options. A library without a CUDA provider of its own
// reaches CUDA through its CUDA provider library registered as a plugin
// execution provider (plugin.go; capi.go calls the C API functions for it
// that the Go wrapper does not wrap). Models with float16 inputs and outputs are
// converted at the boundary, so callers always see float32.
package ort

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/vdpp/vdpp/internal/atomicfile"
)

// EnvLib is the environment variable that names the ONNX Runtime library
// when Init is given no path.
const EnvLib = "VDPP_ORT_LIB"

// ErrNoLibrary is returned (wrapped, saying where Discover looked) by
// Init when no library path was given and none was found.
var ErrNoLibrary = errors.New("ort: no ONNX Runtime library given or found")

// libGlob is where `make ort` puts the library, relative to the
// repository's root.
var libGlob = filepath.Join("third_party", "onnxruntime-*", "libonnxruntime.so.1")

// Discover finds an ONNX Runtime library that `make ort` fetched when
// none is given: third_party/onnxruntime-*/libonnxruntime.so.1 (the
// highest version when there are several) at the root of a vdpp checkout
// (a folder whose go.mod declares this module): the first such root above
// this program (bin/vdexec finds its repository's), else above the
// current folder. It returns the library, or "" and the roots it looked
// in.
func Discover() (string, []string) {
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	return discover(starts)
}

// discover looks for libGlob in each of starts and the folders above it,
// in order, and returns the first library found, or the folders searched.
func discover(starts []string) (string, []string) {
	var looked []string
	seen := map[string]bool{}
	for _, start := range starts {
		dir, err := filepath.Abs(start)
		if err != nil {
			continue
		}
		for {
			if !seen[dir] {
				seen[dir] = true
				looked = append(looked, dir)
			}
			if isRepository(dir) {
				matches, _ := filepath.Glob(filepath.Join(dir, libGlob))
				sort.Slice(matches, func(i, j int) bool { return versionLess(matches[i], matches[j]) })
				for i := len(matches) - 1; i >= 0; i-- {
					if fi, err := os.Stat(matches[i]); err == nil && fi.Mode().IsRegular() {
						return matches[i], looked
					}
				}
			}
			up := filepath.Dir(dir)
			if up == dir {
				break
			}
			dir = up
		}
	}
	return "", looked
}

// repositoryModule is the module path of vdpp's go.mod.
const repositoryModule = "github.com/vdpp/vdpp"

// isRepository reports whether dir is the root of a vdpp checkout (its
// go.mod declares the module): only there does Discover take a library,
// so that a third_party folder someone else planted higher up (in /tmp,
// say) is never loaded.
func isRepository(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1] == repositoryModule
		}
	}
	return false
}

// versionLess orders third_party/onnxruntime-X.Y.Z paths by version.
func versionLess(a, b string) bool {
	va := strings.Split(strings.TrimPrefix(filepath.Base(filepath.Dir(a)), "onnxruntime-"), ".")
	vb := strings.Split(strings.TrimPrefix(filepath.Base(filepath.Dir(b)), "onnxruntime-"), ".")
	for i := 0; i < len(va) && i < len(vb); i++ {
		x, errx := strconv.Atoi(va[i])
		y, erry := strconv.Atoi(vb[i])
		if errx != nil || erry != nil {
			if va[i] != vb[i] {
				return va[i] < vb[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(va) < len(vb)
}

// noLibrary is ErrNoLibrary with where Discover looked and what to do.
func noLibrary(looked []string) error {
	where := ""
	if len(looked) > 0 {
		where = strings.Join(looked, ", ")
		if len(looked) > 6 {
			where = strings.Join(looked[:6], ", ") + fmt.Sprintf(" and %d folders above", len(looked)-6)
		}
		where = fmt.Sprintf(" (%s is empty and no %s was found in %s)", EnvLib, libGlob, where)
	}
	return fmt.Errorf("%w%s: run `make ort` in the repository "+
		"(it fetches third_party/onnxruntime-1.24.3/libonnxruntime.so.1, which vdexec then finds), or export %s=/path/to/libonnxruntime.so.1 "+
		"(ONNX Runtime ≥ 1.24), or pass --ort-lib", ErrNoLibrary, where, EnvLib)
}

// EnvOptional, set to 1, lets the tests that need ONNX Runtime skip when
// no library is found (NeedForTest); otherwise they fail, so that a CI
// without the library does not pass by skipping them.
const EnvOptional = "VDPP_ORT_OPTIONAL"

// TB is the part of testing.TB that NeedForTest uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// NeedForTest loads the ONNX Runtime library for a test that needs it
// (Init(""): $VDPP_ORT_LIB, else the library Discover finds). Without
// one the test fails, saying to run `make ort`, unless
// $VDPP_ORT_OPTIONAL is 1: then it is skipped. The one such helper of
// every package's tests.
func NeedForTest(t TB) {
	t.Helper()
	needForTest(t, Init(""))
}

// needForTest fails or skips t for err, the error of Init (nil: nothing).
func needForTest(t TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(EnvOptional) == "1" {
		t.Skipf("skipped: this test needs ONNX Runtime (%s=1 allows skipping): %v", EnvOptional, err)
		return
	}
	t.Fatalf("this test needs ONNX Runtime: %v\nrun `make ort` (or set %s=1 to skip the tests that need it)", err, EnvOptional)
}

var (
	initMu   sync.Mutex
	initPath string
)

// Init loads the ONNX Runtime shared library and creates the process-wide
// environment. The path is libPath, else $VDPP_ORT_LIB, else the library
// that Discover finds (the one `make ort` fetched). Calling it again with
// the same library (or an empty path) does nothing; with another library it
// fails, since a process holds one. It is safe for concurrent use.
func Init(libPath string) error {
	initMu.Lock()
	defer initMu.Unlock()
	if libPath == "" && initPath != "" {
		return nil // whatever is loaded (--ort-lib may have chosen it over $VDPP_ORT_LIB)
	}
	path := libPath
	if path == "" {
		path = os.Getenv(EnvLib)
	}
	if initPath != "" {
		if samePath(path, initPath) {
			return nil
		}
		return fmt.Errorf("ort: init %s: ONNX Runtime is already loaded from %s in this process", path, initPath)
	}
	if path == "" {
		found, looked := Discover()
		if found == "" {
			return noLibrary(looked)
		}
		path = found
	}
	if err := checkLib(path); err != nil {
		return err
	}
	onnxruntime.SetSharedLibraryPath(path)
	if err := onnxruntime.InitializeEnvironment(onnxruntime.WithLogLevelError()); err != nil {
		if strings.Contains(err.Error(), "ORT API base: 2") {
			return fmt.Errorf("ort: ONNX Runtime library %s is too old: the Go wrapper needs C API 24, "+
				"that is ONNX Runtime ≥ 1.24 (run `make ort` for 1.24.3): %w", path, err)
		}
		if strings.Contains(err.Error(), apiBase) {
			return notORT(path, "it has no "+apiBase+" symbol")
		}
		return fmt.Errorf("ort: load ONNX Runtime library %s: %w", path, err)
	}
	initPath = path
	return nil
}

// Version returns the loaded ONNX Runtime version, or "" before Init.
func Version() string {
	initMu.Lock()
	defer initMu.Unlock()
	if initPath == "" {
		return ""
	}
	return onnxruntime.GetVersion()
}

// Library returns the path of the loaded library, or "" before Init.
func Library() string {
	initMu.Lock()
	defer initMu.Unlock()
	return initPath
}

// apiBase is the C function every ONNX Runtime library exports, the one
// the Go wrapper looks up first.
const apiBase = "OrtGetApiBase"

// checkLib checks that path names an existing library file and, for an
// ELF file (Linux), that it is an ONNX Runtime library: it exports
// OrtGetApiBase. So another library (libc.so.6) or a file that is no
// library is refused with a plain message, before it is loaded.
func checkLib(path string) error {
	if path == "" {
		return noLibrary(nil)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("ort: ONNX Runtime library %s: %w (run `make ort`, or set %s or --ort-lib to an installed libonnxruntime.so ≥ 1.24)", path, err, EnvLib)
	}
	if !fi.Mode().IsRegular() {
		return notORT(path, "it is "+atomicfile.Kind(fi.Mode()))
	}
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		switch {
		case runtime.GOOS != "linux":
			return nil // not ELF on another system (a .dylib, a .dll): loading it says what is wrong
		case errors.As(err, &fe), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return notORT(path, "it is not a shared library")
		}
		return fmt.Errorf("ort: ONNX Runtime library %s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return notORT(path, "it exports no symbols: "+err.Error())
	}
	for _, s := range syms {
		if s.Name == apiBase && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF {
			return nil
		}
	}
	return notORT(path, "it has no "+apiBase+" symbol")
}

// notORT is the error for a file given as the ONNX Runtime library that
// is not one, saying why and how to get one.
func notORT(path, why string) error {
	return fmt.Errorf("ort: %q is not an ONNX Runtime library (%s): run `make ort` for third_party/onnxruntime-1.24.3/libonnxruntime.so.1, "+
		"or set %s or --ort-lib to an installed libonnxruntime.so ≥ 1.24", path, why, EnvLib)
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}
