package fakenccl

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The C prototypes the library must export, as cgo writes them into the
// header it builds next to the library (typedefs: ncclResult_t,
// ncclDataType_t, cudaError_t and cudaMemcpyKind are int, ncclComm_t and
// cudaStream_t void *, ncclUniqueId a struct of 128 chars).
var prototypes = []string{
	"ncclResult_t ncclGetVersion(int*",
	"char* ncclGetErrorString(ncclResult_t",
	"char* ncclGetLastError(ncclComm_t",
	"ncclResult_t ncclGetUniqueId(ncclUniqueId*",
	"ncclResult_t ncclCommInitRank(ncclComm_t* out, int nranks, ncclUniqueId id, int rank)",
	"ncclResult_t ncclCommCuDevice(ncclComm_t h, int* dev)",
	"ncclResult_t ncclCommDestroy(ncclComm_t",
	"ncclResult_t ncclCommAbort(ncclComm_t",
	"ncclResult_t ncclCommGetAsyncError(ncclComm_t h, ncclResult_t* out)",
	"ncclResult_t ncclSend(void* buf, size_t count, ncclDataType_t dtype, int peer, ncclComm_t h, cudaStream_t s)",
	"ncclResult_t ncclRecv(void* buf, size_t count, ncclDataType_t dtype, int peer, ncclComm_t h, cudaStream_t s)",
	"ncclResult_t ncclGroupStart(void)",
	"ncclResult_t ncclGroupEnd(void)",
	"cudaError_t cudaGetDeviceCount(int*",
	"cudaError_t cudaSetDevice(int",
	"cudaError_t cudaGetDevice(int*",
	"cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags)",
	"cudaError_t cudaStreamDestroy(cudaStream_t",
	"cudaError_t cudaStreamQuery(cudaStream_t",
	"cudaError_t cudaStreamSynchronize(cudaStream_t",
	"cudaError_t cudaMalloc(void** p, size_t n)",
	"cudaError_t cudaMallocHost(void** p, size_t n)",
	"cudaError_t cudaFree(void*",
	"cudaError_t cudaFreeHost(void*",
	"cudaError_t cudaMemcpyAsync(void* dst, void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s)",
	"char* cudaGetErrorString(cudaError_t",
	"cudaError_t cudaRuntimeGetVersion(int*",
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	path, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, LibName) {
		t.Errorf("Build built %s, want %s", path, filepath.Join(dir, LibName))
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		t.Errorf("%s is ELF type %v, want a shared object", path, f.Type)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF {
			exported[s.Name] = true
		}
	}
	h, err := os.ReadFile(strings.TrimSuffix(path, ".so") + ".h")
	if err != nil {
		t.Fatal(err)
	}
	header := string(h)
	if !strings.Contains(header, "typedef struct { char internal[128]; } ncclUniqueId;") {
		t.Error("the header does not declare ncclUniqueId as NCCL does (128 chars)")
	}
	for _, p := range prototypes {
		name := p[strings.IndexByte(p, ' ')+1 : strings.IndexByte(p, '(')]
		if !exported[name] {
			t.Errorf("%s does not export %s", LibName, name)
		}
		if !strings.Contains(header, "extern "+p) {
			t.Errorf("the header does not declare %s…", p)
		}
	}
}

func TestBuildForTest(t *testing.T) {
	a := BuildForTest(t)
	b := BuildForTest(t)
	if a != b {
		t.Errorf("BuildForTest built twice: %s, %s", a, b)
	}
	if _, err := os.Stat(a); err != nil {
		t.Error(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
