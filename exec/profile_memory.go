package exec

import (
	"fmt"
	"os"
	"slices"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/vdpp/vdpp/exec/gpu"
	"github.com/vdpp/vdpp/plan"
)

// Moments at which the profiler reads memory in use.
const (
	memBefore = iota // before opening the sessions
	memOpen          // after opening them
	memRun           // after measuring
	memMoments
)

// gpuMeter reads the memory in use on the GPUs of a plan's cuda devices
// through NVML, at each moment.
type gpuMeter struct {
	lib      gpu.NVML // nil: not initialised
	pid      int
	readings map[int]*[memMoments]gpu.Usage // by GPU index
	errs     map[int]error                  // by GPU index: why its memory is not known
}

// newGPUMeter initialises lib for the GPUs of indices; without lib, or
// when NVML does not initialise, every GPU's memory is unknown.
func newGPUMeter(lib gpu.NVML, indices []int) *gpuMeter {
	m := &gpuMeter{pid: os.Getpid(), readings: map[int]*[memMoments]gpu.Usage{}, errs: map[int]error{}}
	if len(indices) == 0 {
		return m
	}
	var err error
	switch {
	case lib == nil:
		err = fmt.Errorf("no NVML given")
	default:
		if r := lib.Init(); r != nvml.SUCCESS {
			err = fmt.Errorf("nvmlInit: %s", nvml.ErrorString(r))
		} else {
			m.lib = lib
		}
	}
	for _, i := range indices {
		if err != nil {
			m.errs[i] = err
		} else {
			m.readings[i] = &[memMoments]gpu.Usage{}
		}
	}
	return m
}

// read reads every GPU's memory in use at moment at.
func (m *gpuMeter) read(at int) {
	for i, r := range m.readings {
		if m.errs[i] != nil {
			continue
		}
		u, err := gpu.UsedMemory(m.lib, i, m.pid)
		if err != nil {
			m.errs[i] = err
			continue
		}
		r[at] = u
	}
}

// close shuts NVML down (once).
func (m *gpuMeter) close() {
	if m != nil && m.lib != nil {
		m.lib.Shutdown()
		m.lib = nil
	}
}

// cudaIndices are the GPU indices of the plan's stage devices with
// provider cuda, sorted.
func cudaIndices(p *plan.Plan) []int {
	var out []int
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			if d := p.Devices[st.DevIdx]; d.Provider == plan.ProviderCUDA && !slices.Contains(out, d.Index) {
				out = append(out, d.Index)
			}
		}
	}
	slices.Sort(out)
	return out
}

// memory is one stage device's runtime overhead and activations per
// sample in GiB, and where they came from: on a cuda device the growth of
// its GPU's used memory (NVML) while opening and while measuring, shared
// among the stages on that GPU; otherwise (and when NVML cannot say) the
// process's resident set, shared among all stages.
func (pr *profiler) memory(pb *probe) (runtime, act float64, label string) {
	n, mb := len(pr.probes), pr.p.Layout.MicroBatch
	d := pb.dev
	if d.Provider == plan.ProviderCUDA && pr.gpus != nil {
		if err := pr.gpus.errs[d.Index]; err != nil {
			label = fmt.Sprintf("host RSS (CPU), not GPU %d's memory (NVML: %v)", d.Index, err)
		} else if r := pr.gpus.readings[d.Index]; r != nil {
			k := 0
			for _, o := range pr.probes {
				if o.dev.Provider == plan.ProviderCUDA && o.dev.Index == d.Index {
					k++
				}
			}
			g, src := gpu.Growth(r[:]...) // g[0]: while opening, g[1]: while measuring
			whose := "this process's (nvmlDeviceGetComputeRunningProcesses)"
			if src != "process" {
				whose = "the whole GPU's (nvmlDeviceGetMemoryInfo; other processes' allocations count too)"
			}
			label = fmt.Sprintf("NVML used memory of GPU %d, %s, divided among its %d stage(s)", d.Index, whose, k)
			return gpu.GiB(uint64(max(g[0], 0))) / float64(k), gpu.GiB(uint64(max(g[1], 0))) / float64(k*mb), label
		}
	}
	if label == "" {
		label = "host RSS (CPU)"
	}
	label += fmt.Sprintf(", the process's resident set divided among %d device(s) (rough: one process, shared allocator)", n)
	return gpu.GiB(uint64(max(pr.rssOpen-pr.rss0, 0))) / float64(n), gpu.GiB(uint64(max(pr.rssRun-pr.rssOpen, 0))) / float64(n*mb), label
}
