package gpu_test

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	. "github.com/vdpp/vdpp/exec/gpu"
	. "github.com/vdpp/vdpp/exec/gpu/gpumock"
)

const gb = 1_000_000_000

func twoGPUs() []Fake {
	return []Fake{
		{Name: "NVIDIA RTX A5000", TotalGiB: 24, FreeGiB: 24, CC: [2]int{8, 6}, Gen: 4, Width: 16},
		{Name: "NVIDIA RTX A5000", TotalGiB: 24, FreeGiB: 24, CC: [2]int{8, 6}, Gen: 4, Width: 16},
	}
}

// The process's own memory rises from 1 GB to 4 GB on GPU 1 while another
// process takes 5 GB there: the growth is the process's 3 GB, and GPU 0's
// memory is not GPU 1's.
func TestUsedMemoryProcess(t *testing.T) {
	lib := Mock(twoGPUs(), nil, nil)
	mem0, mem1 := NewMemory(24*gb, 7*gb, false), NewMemory(24*gb, 0, false)
	WithMemory(lib, 0, mem0)
	WithMemory(lib, 1, mem1)
	const pid = 4242
	mem1.Add(pid, 1*gb)
	a, err := UsedMemory(lib, 1, pid)
	if err != nil {
		t.Fatal(err)
	}
	mem1.Add(pid, 3*gb)
	mem1.Add(99, 5*gb)
	b, err := UsedMemory(lib, 1, pid)
	if err != nil {
		t.Fatal(err)
	}
	if a.Used != 1*gb || a.Process != 1*gb || !a.Listed || !a.Found || b.Used != 9*gb || b.Process != 4*gb {
		t.Errorf("readings %+v, %+v; want used 1 GB (process 1 GB), then 9 GB (process 4 GB)", a, b)
	}
	if g, src := Growth(a, b); len(g) != 1 || g[0] != 3*gb || src != "process" {
		t.Errorf("growth %v bytes from the %s; want [%d] from the process", g, src, 3*gb)
	}
	if u, err := UsedMemory(lib, 0, pid); err != nil || u.Used != 7*gb || u.Found {
		t.Errorf("GPU 0: %+v, %v; want 7 GB used, the process not on it", u, err)
	}
}

// Before the process touches the GPU it is not listed; its first
// allocation counts from zero.
func TestGrowthFromNotListed(t *testing.T) {
	lib := Mock(twoGPUs()[:1], nil, nil)
	mem := NewMemory(24*gb, 2*gb, false)
	WithMemory(lib, 0, mem)
	a, _ := UsedMemory(lib, 0, 7)
	mem.Add(7, 2*gb)
	b, _ := UsedMemory(lib, 0, 7)
	if a.Found || !b.Found {
		t.Fatalf("found before %v, after %v; want false, true", a.Found, b.Found)
	}
	mem.Add(7, 1*gb)
	c, _ := UsedMemory(lib, 0, 7)
	if g, src := Growth(a, b, c); len(g) != 2 || g[0] != 2*gb || g[1] != 1*gb || src != "process" {
		t.Errorf("growth %v (%s); want [%d %d] (process)", g, src, 2*gb, 1*gb)
	}
}

// Without a process list (or with the process never found, as in another
// PID namespace) the growth is the whole GPU's used memory, Y − X.
func TestGrowthWholeGPU(t *testing.T) {
	for _, noProcs := range []bool{true, false} {
		lib := Mock(twoGPUs()[:1], nil, nil)
		mem := NewMemory(24*gb, 1*gb, noProcs)
		WithMemory(lib, 0, mem)
		a, err := UsedMemory(lib, 0, 7)
		if err != nil {
			t.Fatal(err)
		}
		mem.Add(8, 5*gb/2) // pid 8: this process as the host sees it
		b, _ := UsedMemory(lib, 0, 7)
		if a.Listed == noProcs || b.Found {
			t.Errorf("no process list %v: readings %+v, %+v", noProcs, a, b)
		}
		if g, src := Growth(a, b); len(g) != 1 || g[0] != 5*gb/2 || src != "GPU" {
			t.Errorf("no process list %v: growth %v (%s); want [%d] (GPU)", noProcs, g, src, 5*gb/2)
		}
		if g, _ := Growth(b, a); len(g) != 1 || g[0] != 0 {
			t.Errorf("shrinking memory grows by %v; want [0]", g)
		}
	}
}

func TestUsedMemoryErrors(t *testing.T) {
	fakes := twoGPUs()[:1]
	fakes[0].HandleFails = true
	if _, err := UsedMemory(Mock(fakes, nil, nil), 0, 1); err == nil {
		t.Error("no error when the GPU's handle fails")
	}
	lib := Mock(twoGPUs()[:1], nil, nil)
	if _, err := UsedMemory(lib, 3, 1); err == nil {
		t.Error("no error for GPU 3 of 1")
	}
	d, _ := lib.DeviceGetHandleByIndex(0)
	d.(*mock.Device).GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_GPU_IS_LOST }
	if _, err := UsedMemory(lib, 0, 1); err == nil {
		t.Error("no error when nvmlDeviceGetMemoryInfo fails")
	}
}
