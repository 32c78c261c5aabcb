// Package ort is the ONNX Runtime backend of the executor: it opens the
// three graphs of an SVD-style model (UNet, image encoder, decoder) as
// ONNX Runtime sessions and runs them behind models.Model.
//
// The library (libonnxruntime.so, ≥ 1.24 for C API 24) is loaded once per
// process by Init; sessions choose their provider (cpu or cuda) and thread
// counts through Options. Models with float16 inputs and outputs are
// converted at the boundary, so callers always see float32.
package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

// EnvLib is the environment variable that names the ONNX Runtime library
// when Init is given no path.
const EnvLib = "VDPP_ORT_LIB"

// ErrNoLibrary is returned by Init when no library path was given.
var ErrNoLibrary = errors.New("ort: no ONNX Runtime library given: run `make ort` (it fetches " +
	"third_party/onnxruntime-1.24.3/libonnxruntime.so.1), then set " + EnvLib + " to it or pass --ort-lib")

var (
	initMu   sync.Mutex
	initPath string
)

// Init loads the ONNX Runtime shared library and creates the process-wide
// environment. The path is libPath, else $VDPP_ORT_LIB. Calling it again with
// the same library (or an empty path) does nothing; with another library it
// fails, since a process holds one. It is safe for concurrent use.
func Init(libPath string) error {
	initMu.Lock()
	defer initMu.Unlock()
	path := libPath
	if path == "" {
		path = os.Getenv(EnvLib)
	}
	if initPath != "" {
		if path == "" || samePath(path, initPath) {
			return nil
		}
		return fmt.Errorf("ort: init %s: ONNX Runtime is already loaded from %s in this process", path, initPath)
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

// checkLib checks that path names an existing library file.
func checkLib(path string) error {
	if path == "" {
		return ErrNoLibrary
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("ort: ONNX Runtime library %s: %w (run `make ort`, or set %s or --ort-lib to an installed libonnxruntime.so ≥ 1.24)", path, err, EnvLib)
	}
	return nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}
