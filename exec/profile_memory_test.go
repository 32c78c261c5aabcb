package exec

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdpp/vdpp/exec/gpu/gpumock"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

const gb = 1 << 30 // memory_gb is in GiB

// onGPU wraps a model: its first UNet call puts act bytes more in use on
// a mock GPU, as a CUDA session's arena grows with its first activations.
type onGPU struct {
	models.Model
	once sync.Once
	grow func()
}

func (m *onGPU) UNet(in models.UNetInput, out []float32) error {
	m.once.Do(m.grow)
	return m.Model.UNet(in, out)
}

// gpuPlan is a plan of three stages: cpu0 on the CPU, cpu1 and cpu2 on GPU 1
// (kind a5000, provider cuda), micro-batch 2.
func gpuPlan() *plan.Plan {
	p := testPlan("profgpu", 6, 3, 2, [][2]int{{0, 1}, {2, 3}, {4, 5}})
	p.Model.Family = "tiny"
	for i := 1; i < 3; i++ {
		d := &p.Devices[i]
		d.Kind, d.Provider, d.Index = "a5000", plan.ProviderCUDA, 1
	}
	return p
}

// notesWith returns the notes lines that start with prefix.
func notesWith(notes, prefix string) []string {
	var out []string
	for _, l := range strings.Split(notes, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// The GPU's memory in use by this process rises by 2 GiB per session
// opened and 1 GiB per session's first call, while another process takes
// 5 GiB there: a5000's runtime is 4 GiB / 2 stages = 2 GiB and its
// activations 2 GiB / (2 stages × micro-batch 2) = 0.5 GiB per sample; the
// cpu device keeps the resident set, labelled host RSS.
func TestProfileGPUMemory(t *testing.T) {
	p := gpuPlan()
	lib := gpumock.Mock([]gpumock.Fake{
		{Name: "NVIDIA RTX A5000", TotalGiB: 24, FreeGiB: 24, CC: [2]int{8, 6}, Gen: 4, Width: 16},
		{Name: "NVIDIA RTX A5000", TotalGiB: 24, FreeGiB: 24, CC: [2]int{8, 6}, Gen: 4, Width: 16},
	}, nil, nil)
	mem := gpumock.NewMemory(24*gb, gb/2, false)
	gpumock.WithMemory(lib, 1, mem)
	pid := uint32(os.Getpid())
	base := fakeFactory(fakeModel{unet: time.Millisecond})
	f := func(d plan.Device, st plan.Stage) (models.Model, error) {
		m, err := base(d, st)
		if err != nil || d.Provider != plan.ProviderCUDA {
			return m, err
		}
		mem.Add(pid, 2*gb)
		return &onGPU{Model: m, grow: func() { mem.Add(pid, gb); mem.Add(99, 5*gb/2) }}, nil
	}
	prof, err := Profile(context.Background(), p, f, ProfileOptions{Reps: 2, Warmup: 1, Runtime: "fake", NVML: lib})
	if err != nil {
		t.Fatal(err)
	}
	m := prof.Devices["a5000"].Memory
	if m.Runtime != 2 || m.ActivationsPerSample != 0.5 {
		t.Errorf("a5000 memory: runtime %v GiB, activations %v GiB per sample; want 2, 0.5", m.Runtime, m.ActivationsPerSample)
	}
	notes := prof.Provenance.Notes
	for _, d := range []string{p.Devices[1].Name, p.Devices[2].Name} {
		if l := notesWith(notes, d+" memory: "); len(l) != 1 || !strings.Contains(l[0], "NVML used memory of GPU 1, this process's") {
			t.Errorf("%s memory notes %q; want one saying NVML used memory of GPU 1, this process's", d, l)
		}
	}
	if l := notesWith(notes, "cpu0 memory: "); len(l) != 1 || !strings.HasPrefix(l[0], "cpu0 memory: host RSS (CPU), the process's resident set") {
		t.Errorf("cpu0 memory notes %q; want host RSS (CPU)", l)
	}
	if n := len(lib.InitCalls()); n != 1 || len(lib.ShutdownCalls()) != 1 {
		t.Errorf("nvmlInit called %d times, nvmlShutdown %d; want 1, 1", n, len(lib.ShutdownCalls()))
	}
}

// Without a process list the whole GPU's growth counts, other processes'
// included; without NVML a cuda device falls back to the resident set and
// says it is not the GPU's memory.
func TestProfileGPUMemoryFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nvml       bool
		note       string
		runtime    float64
		activation float64
	}{
		{"no process list", true, "NVML used memory of GPU 1, the whole GPU's", 2, 1.75},
		{"no NVML", false, "host RSS (CPU), not GPU 1's memory (NVML: no NVML given)", -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := gpuPlan()
			lib := gpumock.Mock([]gpumock.Fake{{Name: "a"}, {Name: "b"}}, nil, nil)
			mem := gpumock.NewMemory(24*gb, 0, true)
			gpumock.WithMemory(lib, 1, mem)
			base := fakeFactory(fakeModel{unet: time.Millisecond})
			f := func(d plan.Device, st plan.Stage) (models.Model, error) {
				m, err := base(d, st)
				if d.Provider == plan.ProviderCUDA {
					mem.Add(1, 2*gb)
					m = &onGPU{Model: m, grow: func() { mem.Add(1, gb); mem.Add(99, 5*gb/2) }}
				}
				return m, err
			}
			opts := ProfileOptions{Reps: 2, Warmup: 1, Runtime: "fake"}
			if tc.nvml {
				opts.NVML = lib
			}
			prof, err := Profile(context.Background(), p, f, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{p.Devices[1].Name, p.Devices[2].Name} {
				if l := notesWith(prof.Provenance.Notes, d+" memory: "); len(l) != 1 || !strings.HasPrefix(l[0], d+" memory: "+tc.note) {
					t.Errorf("%s memory notes %q; want %q", d, l, tc.note)
				}
			}
			m := prof.Devices["a5000"].Memory
			if tc.runtime >= 0 && (m.Runtime != tc.runtime || m.ActivationsPerSample != tc.activation) {
				t.Errorf("a5000 memory: runtime %v, activations %v GiB; want %v, %v", m.Runtime, m.ActivationsPerSample, tc.runtime, tc.activation)
			}
			if !tc.nvml && len(lib.InitCalls()) != 0 {
				t.Errorf("NVML initialised though not given")
			}
		})
	}
}
