// Package fakenccl builds a test double of libnccl and libcudart: a shared
// library, built from Go (internal/fakenccl/lib, -buildmode=c-shared), that
// exports the NCCL 2 and CUDA runtime C functions exec/nccl calls, with
// their real signatures. One library serves as both: point
// $VDPP_NCCL_LIB and $VDPP_CUDART_LIB at the path Build returns.
//
// It is a test double, not NCCL. "Device memory" is host memory from
// malloc, streams are goroutines, and ncclSend/ncclRecv move bytes through
// unix sockets in the directory named by the unique id. It follows the
// semantics a caller depends on (devices per OS thread, allocation
// tables and pointer checks, in-order streams, collective
// ncclCommInitRank, sends that complete only once the matching receive is
// posted, groups, asynchronous errors for mismatched sizes and dead peers,
// ncclCommAbort releasing pending work), but it proves nothing about real
// NCCL, CUDA or a GPU.
//
// Environment variables the library reads: VDPP_FAKE_CUDA_DEVICES
// (cudaGetDeviceCount, default 8), VDPP_FAKE_NCCL_INIT_TIMEOUT (how long
// ncclCommInitRank waits for the other ranks, a Go duration, default
// 120s) and VDPP_FAKE_NCCL_TRACE (a file to which every call appends
// "<tid> <function> <device>", the device being the calling thread's
// current one or "unset").
package fakenccl

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// LibName is the file name Build gives the library.
const LibName = "libfakenccl.so"

// ErrNoCgo says the library cannot be built here: cgo is off or no C
// compiler is found.
var ErrNoCgo = errors.New("fakenccl: cgo is unavailable")

// srcDir is the directory of this package's source.
func srcDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("fakenccl: cannot find the package's source")
	}
	return filepath.Dir(file), nil
}

// goTool is the go command: $GOROOT/bin/go where `go test` says which
// toolchain runs the tests, else the go on $PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Build builds the library into dir with the go command (goTool) and
// returns its path. The error wraps ErrNoCgo when cgo is off
// or the C compiler is missing.
func Build(dir string) (string, error) {
	src, err := srcDir()
	if err != nil {
		return "", err
	}
	if err := cgoAvailable(); err != nil {
		return "", err
	}
	out := filepath.Join(dir, LibName)
	cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-o", out, "./lib")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fakenccl: go build -buildmode=c-shared: %v\n%s", err, b)
	}
	return out, nil
}

// cgoAvailable says why cgo cannot build here (no C compiler), nil when
// it can; Build sets CGO_ENABLED=1 itself.
func cgoAvailable() error {
	cmd := exec.Command(goTool(), "env", "CC")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("fakenccl: go env CC: %v", err)
	}
	cc := "gcc"
	if f := strings.Fields(string(b)); len(f) > 0 {
		cc = f[0]
	}
	if _, err := exec.LookPath(cc); err != nil {
		return fmt.Errorf("%w: no C compiler %q: %v", ErrNoCgo, cc, err)
	}
	return nil
}

var (
	once     sync.Once
	builtDir string
	built    string
	buildErr error
)

// BuildForTest builds the library once per test binary, into a temporary
// directory that lasts until Cleanup (call it from TestMain after m.Run;
// without it the directory stays behind), and returns its path. It skips
// t only when cgo is unavailable (no C compiler), and fails it when the
// build fails otherwise.
func BuildForTest(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "fakenccl-lib-*")
		if buildErr == nil {
			built, buildErr = Build(builtDir)
		}
	})
	if errors.Is(buildErr, ErrNoCgo) {
		t.Skipf("the NCCL test double cannot be built: %v", buildErr)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// Cleanup removes the directory BuildForTest built into, if it did.
func Cleanup() {
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
}
