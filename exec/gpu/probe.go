// Package gpu finds what a machine offers the CUDA provider: the NVIDIA
// driver and its GPUs through NVML (github.com/NVIDIA/go-nvml, which
// loads libnvidia-ml.so.1 at run time, so nothing NVIDIA is needed to
// build), the topology between every pair of GPUs as the link kinds a
// plan names, and whether the CUDA libraries load (dlopen at run time).
package gpu

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML is the part of go-nvml's nvml.Interface that Probe calls; the real
// library (Open) and go-nvml's mock (pkg/nvml/mock) both satisfy it.
type NVML interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	SystemGetDriverVersion() (string, nvml.Return)
	SystemGetCudaDriverVersion() (int, nvml.Return)
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(int) (nvml.Device, nvml.Return)
	DeviceGetTopologyCommonAncestor(nvml.Device, nvml.Device) (nvml.GpuTopologyLevel, nvml.Return)
	DeviceGetP2PStatus(nvml.Device, nvml.Device, nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return)
}

// DefaultLibrary is the NVML library the driver installs.
const DefaultLibrary = "libnvidia-ml.so.1"

// Open returns the NVML library at path (DefaultLibrary when empty),
// loaded by Probe's Init.
func Open(path string) NVML {
	if path == "" {
		path = DefaultLibrary
	}
	return nvml.New(nvml.WithLibraryPath(path))
}

// ErrNoDriver is returned (wrapped by a *NoDriverError) by Probe when
// there is no usable NVIDIA driver.
var ErrNoDriver = errors.New("no NVIDIA driver")

// NoDriverError says why there is no driver: the NVML library is missing,
// or it loads but the kernel driver is not loaded.
type NoDriverError struct {
	Library string      // the NVML library tried
	Return  nvml.Return // what nvmlInit returned
}

func (e *NoDriverError) Error() string {
	if e.Return == nvml.ERROR_LIBRARY_NOT_FOUND {
		return fmt.Sprintf("no NVIDIA driver (%s not found)", e.Library)
	}
	return fmt.Sprintf("no NVIDIA driver (%s loads, but nvmlInit says %s: the NVIDIA kernel driver is not loaded)", e.Library, errString(e.Return))
}

func (e *NoDriverError) Unwrap() error { return ErrNoDriver }

// Machine is what NVML says about the driver and the GPUs.
type Machine struct {
	Driver     string // driver version, "580.65.06"
	CUDADriver int    // the CUDA version the driver supports, 13000 for 13.0
	GPUs       []GPU
	Links      []Link // one per pair of GPUs, A < B
}

// CUDADriverVersion formats CUDADriver as "13.0".
func (m *Machine) CUDADriverVersion() string {
	if m.CUDADriver <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", m.CUDADriver/1000, m.CUDADriver%1000/10)
}

// GPU is one device as NVML numbers it (the CUDA device index when
// CUDA_VISIBLE_DEVICES is unset).
type GPU struct {
	Index        int
	Name         string // "NVIDIA RTX A5000"
	TotalBytes   uint64
	FreeBytes    uint64
	CCMajor      int // compute capability; -1 unknown
	CCMinor      int
	PCIeGen      int // current PCIe generation; -1 unknown
	PCIeWidth    int // current PCIe link width; -1 unknown
	PCIeMaxGen   int // the GPU's maximum; -1 unknown
	PCIeMaxWidth int
	NUMA         int // NUMA node; -1 unknown (not reported by the driver)
}

// GiB converts bytes to GiB (2³⁰ bytes), the unit of a plan's memory_gb.
func GiB(b uint64) float64 { return float64(b) / (1 << 30) }

// Link kinds, from NVML's topology between two GPUs; a cost profile's
// links section gives each kind its latency and bandwidth.
const (
	LinkNVLink      = "nvlink"       // an active NVLink between the two (directly or through NVSwitch)
	LinkPCIeSwitch  = "pcie-switch"  // behind the same PCIe switch (one or several), or on one board
	LinkPCIeHost    = "pcie-host"    // through the CPU's host bridge(s) of one socket (NUMA node)
	LinkCrossSocket = "cross-socket" // across CPU sockets (the inter-socket link, QPI/UPI/Infinity Fabric)
)

// Link is the connection between GPUs A and B.
type Link struct {
	A, B   int
	Level  nvml.GpuTopologyLevel // nvmlDeviceGetTopologyCommonAncestor; -1 unknown
	NVLink bool                  // P2P over NVLink is OK
	Kind   string                // LinkKind(Level, NVLink); "" when the topology is unknown
}

// LinkKind maps NVML's common ancestor of two GPUs (and whether NVLink
// connects them) to a link kind.
func LinkKind(level nvml.GpuTopologyLevel, nvlink bool) string {
	if nvlink {
		return LinkNVLink
	}
	switch level {
	case nvml.TOPOLOGY_INTERNAL, nvml.TOPOLOGY_SINGLE, nvml.TOPOLOGY_MULTIPLE:
		return LinkPCIeSwitch
	case nvml.TOPOLOGY_HOSTBRIDGE, nvml.TOPOLOGY_NODE:
		return LinkPCIeHost
	case nvml.TOPOLOGY_SYSTEM:
		return LinkCrossSocket
	}
	return ""
}

// Describe says what a topology level means, in words.
func Describe(l Link) string {
	var lv string
	switch l.Level {
	case nvml.TOPOLOGY_INTERNAL:
		lv = "on one board"
	case nvml.TOPOLOGY_SINGLE:
		lv = "behind one PCIe switch"
	case nvml.TOPOLOGY_MULTIPLE:
		lv = "behind several PCIe switches"
	case nvml.TOPOLOGY_HOSTBRIDGE:
		lv = "through one host bridge"
	case nvml.TOPOLOGY_NODE:
		lv = "through host bridges of one NUMA node"
	case nvml.TOPOLOGY_SYSTEM:
		lv = "across CPU sockets"
	default:
		lv = "topology unknown"
	}
	if l.NVLink {
		return "NVLink (PCIe: " + lv + ")"
	}
	return lv
}

func errString(r nvml.Return) string { return nvml.ErrorString(r) }

// Probe asks NVML for the driver, every GPU and the topology between
// every pair, then shuts NVML down. Without a driver it returns a
// *NoDriverError (errors.Is ErrNoDriver). A property the driver does not
// report (NUMA node, PCIe link) is -1; the name and memory must be there.
func Probe(lib NVML, library string) (*Machine, error) {
	if library == "" {
		library = DefaultLibrary
	}
	switch r := lib.Init(); r {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, &NoDriverError{Library: library, Return: r}
	default:
		return nil, fmt.Errorf("gpu: nvmlInit (%s): %s", library, errString(r))
	}
	defer lib.Shutdown()
	m := &Machine{}
	if v, r := lib.SystemGetDriverVersion(); r == nvml.SUCCESS {
		m.Driver = v
	} else {
		m.Driver = "unknown (" + errString(r) + ")"
	}
	if v, r := lib.SystemGetCudaDriverVersion(); r == nvml.SUCCESS {
		m.CUDADriver = v
	}
	n, r := lib.DeviceGetCount()
	if r != nvml.SUCCESS {
		return nil, fmt.Errorf("gpu: nvmlDeviceGetCount: %s", errString(r))
	}
	devs := make([]nvml.Device, n)
	var errs []error
	for i := 0; i < n; i++ {
		d, r := lib.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("gpu: GPU %d: nvmlDeviceGetHandleByIndex: %s", i, errString(r)))
			continue
		}
		devs[i] = d
		g, err := probeGPU(i, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.GPUs = append(m.GPUs, g)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			l := Link{A: i, B: j, Level: -1}
			if lv, r := lib.DeviceGetTopologyCommonAncestor(devs[i], devs[j]); r == nvml.SUCCESS {
				l.Level = lv
			}
			if s, r := lib.DeviceGetP2PStatus(devs[i], devs[j], nvml.P2P_CAPS_INDEX_NVLINK); r == nvml.SUCCESS && s == nvml.P2P_STATUS_OK {
				l.NVLink = true
			}
			l.Kind = LinkKind(l.Level, l.NVLink)
			m.Links = append(m.Links, l)
		}
	}
	return m, nil
}

// probeGPU reads one GPU's properties.
func probeGPU(i int, d nvml.Device) (GPU, error) {
	g := GPU{Index: i, CCMajor: -1, CCMinor: -1, PCIeGen: -1, PCIeWidth: -1, PCIeMaxGen: -1, PCIeMaxWidth: -1, NUMA: -1}
	name, r := d.GetName()
	if r != nvml.SUCCESS {
		return g, fmt.Errorf("gpu: GPU %d: nvmlDeviceGetName: %s", i, errString(r))
	}
	g.Name = name
	mem, r := d.GetMemoryInfo()
	if r != nvml.SUCCESS {
		return g, fmt.Errorf("gpu: GPU %d (%s): nvmlDeviceGetMemoryInfo: %s", i, name, errString(r))
	}
	g.TotalBytes, g.FreeBytes = mem.Total, mem.Free
	if ma, mi, r := d.GetCudaComputeCapability(); r == nvml.SUCCESS {
		g.CCMajor, g.CCMinor = ma, mi
	}
	if v, r := d.GetCurrPcieLinkGeneration(); r == nvml.SUCCESS {
		g.PCIeGen = v
	}
	if v, r := d.GetCurrPcieLinkWidth(); r == nvml.SUCCESS {
		g.PCIeWidth = v
	}
	if v, r := d.GetMaxPcieLinkGeneration(); r == nvml.SUCCESS {
		g.PCIeMaxGen = v
	}
	if v, r := d.GetMaxPcieLinkWidth(); r == nvml.SUCCESS {
		g.PCIeMaxWidth = v
	}
	if v, r := d.GetNumaNodeId(); r == nvml.SUCCESS {
		g.NUMA = v
	}
	return g, nil
}

// Kind is a plan device kind from a GPU's name: lower case, vendor and
// product-line words dropped, the rest joined by '-' ("NVIDIA RTX A5000"
// → "a5000", "NVIDIA H100 80GB HBM3" → "h100-80gb-hbm3", "NVIDIA GeForce
// RTX 4090" → "rtx-4090"), so that it matches a profile's key.
func Kind(name string) string {
	f := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	var out []string
	for i, w := range f {
		switch w {
		case "nvidia", "tesla", "quadro", "geforce":
			continue
		case "rtx":
			// "RTX A5000", "RTX 6000 Ada": the A-series names stand alone.
			if i+1 < len(f) && len(f[i+1]) > 1 && f[i+1][0] >= 'a' && f[i+1][0] <= 'z' {
				continue
			}
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return "gpu"
	}
	return strings.Join(out, "-")
}

// LinkCounts counts the links of each kind, for choosing a default.
func LinkCounts(links []Link) map[string]int {
	c := map[string]int{}
	for _, l := range links {
		c[l.Kind]++
	}
	return c
}

// CommonKind is the most frequent known link kind (ties: the first in
// sorted order), "" when there are none.
func CommonKind(links []Link) string {
	c := LinkCounts(links)
	kinds := make([]string, 0, len(c))
	for k := range c {
		if k != "" {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	best := ""
	for _, k := range kinds {
		if best == "" || c[k] > c[best] {
			best = k
		}
	}
	return best
}
