// Package gpumock builds NVML mocks (go-nvml's pkg/nvml/mock) of whole
// machines for the tests of exec/gpu and vdexec doctor.
package gpumock

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// Fake is one GPU of a mock machine.
type Fake struct {
	Name        string
	TotalGiB    float64
	FreeGiB     float64
	CC          [2]int
	Gen, Width  int
	NUMA        int // -1: the driver does not report it
	HandleFails bool
}

// Mock builds an NVML mock with gpus, the common ancestor of each pair
// from level and NVLink from nvlink (nil: none).
func Mock(gpus []Fake, level func(i, j int) nvml.GpuTopologyLevel, nvlink func(i, j int) bool) *mock.Interface {
	devs := make([]nvml.Device, len(gpus))
	index := map[nvml.Device]int{}
	for i, g := range gpus {
		d := &mock.Device{
			GetNameFunc: func() (string, nvml.Return) { return g.Name, nvml.SUCCESS },
			GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
				t, f := uint64(g.TotalGiB*(1<<30)), uint64(g.FreeGiB*(1<<30))
				return nvml.Memory{Total: t, Free: f, Used: t - f}, nvml.SUCCESS
			},
			GetCudaComputeCapabilityFunc:  func() (int, int, nvml.Return) { return g.CC[0], g.CC[1], nvml.SUCCESS },
			GetCurrPcieLinkGenerationFunc: func() (int, nvml.Return) { return g.Gen, nvml.SUCCESS },
			GetCurrPcieLinkWidthFunc:      func() (int, nvml.Return) { return g.Width, nvml.SUCCESS },
			GetMaxPcieLinkGenerationFunc:  func() (int, nvml.Return) { return g.Gen, nvml.SUCCESS },
			GetMaxPcieLinkWidthFunc:       func() (int, nvml.Return) { return g.Width, nvml.SUCCESS },
			GetNumaNodeIdFunc: func() (int, nvml.Return) {
				if g.NUMA < 0 {
					return 0, nvml.ERROR_NOT_SUPPORTED
				}
				return g.NUMA, nvml.SUCCESS
			},
		}
		devs[i] = d
		index[d] = i
	}
	return &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return "580.65.06", nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 13000, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return len(gpus), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(n int) (nvml.Device, nvml.Return) {
			if n < 0 || n >= len(devs) || gpus[n].HandleFails {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			return devs[n], nvml.SUCCESS
		},
		DeviceGetTopologyCommonAncestorFunc: func(a, b nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			if level == nil {
				return 0, nvml.ERROR_NOT_SUPPORTED
			}
			return level(index[a], index[b]), nvml.SUCCESS
		},
		DeviceGetP2PStatusFunc: func(a, b nvml.Device, c nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return) {
			if c == nvml.P2P_CAPS_INDEX_NVLINK && nvlink != nil && nvlink(index[a], index[b]) {
				return nvml.P2P_STATUS_OK, nvml.SUCCESS
			}
			return nvml.P2P_STATUS_NOT_SUPPORTED, nvml.SUCCESS
		},
	}
}

// SevenGPUs is a two-socket box: GPUs 0–3 on socket 0, 4–6 on socket 1;
// 0–1, 2–3 and 4–5 share a PCIe switch.
func SevenGPUs() *mock.Interface {
	var gpus []Fake
	for i := 0; i < 7; i++ {
		numa := 0
		if i >= 4 {
			numa = 1
		}
		gpus = append(gpus, Fake{Name: "NVIDIA RTX A5000", TotalGiB: 24, FreeGiB: 23, CC: [2]int{8, 6}, Gen: 4, Width: 16, NUMA: numa})
	}
	socket := func(i int) int { return gpus[i].NUMA }
	return Mock(gpus, func(i, j int) nvml.GpuTopologyLevel {
		switch {
		case socket(i) != socket(j):
			return nvml.TOPOLOGY_SYSTEM
		case i/2 == j/2:
			return nvml.TOPOLOGY_SINGLE
		default:
			return nvml.TOPOLOGY_NODE
		}
	}, nil)
}
