package gpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Usage is the memory in use on one GPU at one moment.
type Usage struct {
	// Used is the whole GPU's used memory (nvmlDeviceGetMemoryInfo), every
	// process's together.
	Used uint64
	// Process is what the process asked about holds on the GPU
	// (nvmlDeviceGetComputeRunningProcesses); 0 when it is not listed.
	Process uint64
	// Listed: the driver listed the GPU's compute processes; Found: the
	// process was among them (a process in another PID namespace, as in a
	// container, is never found).
	Listed, Found bool
}

// UsedMemory reads the memory in use on GPU index (NVML's numbering):
// the whole GPU's, and process pid's when the driver lists compute
// processes. NVML must be initialised (lib.Init).
func UsedMemory(lib NVML, index, pid int) (Usage, error) {
	d, r := lib.DeviceGetHandleByIndex(index)
	if r != nvml.SUCCESS {
		return Usage{}, fmt.Errorf("gpu: GPU %d: nvmlDeviceGetHandleByIndex: %s", index, errString(r))
	}
	mem, r := d.GetMemoryInfo()
	if r != nvml.SUCCESS {
		return Usage{}, fmt.Errorf("gpu: GPU %d: nvmlDeviceGetMemoryInfo: %s", index, errString(r))
	}
	u := Usage{Used: mem.Used}
	if procs, r := d.GetComputeRunningProcesses(); r == nvml.SUCCESS {
		u.Listed = true
		for _, p := range procs {
			if int(p.Pid) == pid {
				u.Found = true
				u.Process += p.UsedGpuMemory
			}
		}
	}
	return u, nil
}

// Growth is how much memory came into use on a GPU from each reading of
// us to the next, in bytes (0 where it shrank), and whose, decided once
// for all the readings: the process's own ("process") when the driver
// listed the compute processes at every reading and the process at the
// last, else the whole GPU's ("GPU"), which counts other processes'
// allocations too.
func Growth(us ...Usage) ([]uint64, string) {
	src := "GPU"
	if len(us) > 0 && us[len(us)-1].Found {
		src = "process"
		for _, u := range us {
			if !u.Listed {
				src = "GPU"
			}
		}
	}
	out := make([]uint64, max(len(us)-1, 0))
	for i := range out {
		a, b := us[i].Used, us[i+1].Used
		if src == "process" {
			a, b = us[i].Process, us[i+1].Process
		}
		if b > a {
			out[i] = b - a
		}
	}
	return out, src
}
