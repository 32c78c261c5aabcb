package gpumock

import (
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// Memory is one mock GPU's memory in use, which a test changes while code
// under test reads it (safe for concurrent use): the whole GPU's used
// memory is Other plus every process's.
type Memory struct {
	mu    sync.Mutex
	total uint64
	other uint64            // not listed as compute processes
	procs map[uint32]uint64 // by pid
	// NoProcesses: nvmlDeviceGetComputeRunningProcesses says
	// NOT_SUPPORTED, as some drivers and vGPUs do.
	noProcs bool
}

// NewMemory is a GPU of total bytes with other bytes in use by no listed
// process; noProcesses makes the process list unsupported.
func NewMemory(total, other uint64, noProcesses bool) *Memory {
	return &Memory{total: total, other: other, procs: map[uint32]uint64{}, noProcs: noProcesses}
}

// Add puts bytes more in use by process pid (0: by no listed process).
func (m *Memory) Add(pid uint32, bytes uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pid == 0 {
		m.other += bytes
		return
	}
	m.procs[pid] += bytes
}

func (m *Memory) info() (nvml.Memory, nvml.Return) {
	m.mu.Lock()
	defer m.mu.Unlock()
	used := m.other
	for _, b := range m.procs {
		used += b
	}
	return nvml.Memory{Total: m.total, Free: m.total - min(used, m.total), Used: used}, nvml.SUCCESS
}

func (m *Memory) processes() ([]nvml.ProcessInfo, nvml.Return) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.noProcs {
		return nil, nvml.ERROR_NOT_SUPPORTED
	}
	var out []nvml.ProcessInfo
	for pid, b := range m.procs {
		out = append(out, nvml.ProcessInfo{Pid: pid, UsedGpuMemory: b})
	}
	return out, nvml.SUCCESS
}

// WithMemory makes GPU index of lib (built by Mock) report mem's memory
// in use and compute processes.
func WithMemory(lib *mock.Interface, index int, mem *Memory) {
	d, r := lib.DeviceGetHandleByIndex(index)
	if r != nvml.SUCCESS {
		panic(fmt.Sprintf("gpumock: WithMemory: no GPU %d", index))
	}
	md := d.(*mock.Device)
	md.GetMemoryInfoFunc = mem.info
	md.GetComputeRunningProcessesFunc = mem.processes
}
