package gpu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	. "github.com/vdpp/vdpp/exec/gpu"
	. "github.com/vdpp/vdpp/exec/gpu/gpumock"
)

func TestProbeOneGPU(t *testing.T) {
	lib := Mock([]Fake{{Name: "NVIDIA RTX A5000", TotalGiB: 24, FreeGiB: 23.5, CC: [2]int{8, 6}, Gen: 4, Width: 16, NUMA: 0}}, nil, nil)
	m, err := Probe(lib, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Driver != "580.65.06" || m.CUDADriverVersion() != "13.0" {
		t.Errorf("driver %q, CUDA %q; want 580.65.06, 13.0", m.Driver, m.CUDADriverVersion())
	}
	if len(m.GPUs) != 1 || len(m.Links) != 0 {
		t.Fatalf("%d GPUs, %d links; want 1, 0", len(m.GPUs), len(m.Links))
	}
	g := m.GPUs[0]
	if g.Name != "NVIDIA RTX A5000" || GiB(g.TotalBytes) != 24 || GiB(g.FreeBytes) != 23.5 || g.CCMajor != 8 || g.CCMinor != 6 ||
		g.PCIeGen != 4 || g.PCIeWidth != 16 || g.NUMA != 0 {
		t.Errorf("GPU %+v", g)
	}
	if len(lib.ShutdownCalls()) != 1 {
		t.Errorf("Shutdown called %d times; want 1", len(lib.ShutdownCalls()))
	}
}

func TestProbeSevenGPUsTwoSockets(t *testing.T) {
	m, err := Probe(SevenGPUs(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.GPUs) != 7 || len(m.Links) != 21 {
		t.Fatalf("%d GPUs, %d links; want 7, 21", len(m.GPUs), len(m.Links))
	}
	for i, g := range m.GPUs {
		if want := i / 4; g.NUMA != want || g.Index != i {
			t.Errorf("GPU %d: index %d NUMA %d; want NUMA %d", i, g.Index, g.NUMA, want)
		}
	}
	got := LinkCounts(m.Links)
	want := map[string]int{LinkPCIeSwitch: 3, LinkPCIeHost: 6, LinkCrossSocket: 12}
	if len(got) != len(want) {
		t.Errorf("link kinds %v; want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d links of kind %s; want %d (all: %v)", got[k], k, n, got)
		}
	}
	for _, l := range m.Links {
		if l.A == 0 && l.B == 4 && l.Kind != LinkCrossSocket {
			t.Errorf("GPU 0–4: %s; want %s", l.Kind, LinkCrossSocket)
		}
		if l.A == 4 && l.B == 5 && l.Kind != LinkPCIeSwitch {
			t.Errorf("GPU 4–5: %s; want %s", l.Kind, LinkPCIeSwitch)
		}
	}
	if k := CommonKind(m.Links); k != LinkCrossSocket {
		t.Errorf("most common kind %q; want %s", k, LinkCrossSocket)
	}
}

func TestProbeNVLinkPairs(t *testing.T) {
	gpus := make([]Fake, 4)
	for i := range gpus {
		gpus[i] = Fake{Name: "NVIDIA A100-SXM4-40GB", TotalGiB: 40, FreeGiB: 39, CC: [2]int{8, 0}, Gen: 4, Width: 16, NUMA: -1}
	}
	m, err := Probe(Mock(gpus, func(i, j int) nvml.GpuTopologyLevel { return nvml.TOPOLOGY_HOSTBRIDGE },
		func(i, j int) bool { return i/2 == j/2 }), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Links {
		want := LinkPCIeHost
		if l.A/2 == l.B/2 {
			want = LinkNVLink
		}
		if l.Kind != want || l.NVLink != (want == LinkNVLink) {
			t.Errorf("GPU %d–%d: kind %s nvlink %v; want %s", l.A, l.B, l.Kind, l.NVLink, want)
		}
	}
	if m.GPUs[0].NUMA != -1 {
		t.Errorf("NUMA %d for a driver that does not report it; want -1", m.GPUs[0].NUMA)
	}
	if d := Describe(m.Links[0]); !strings.Contains(d, "NVLink") {
		t.Errorf("Describe(0–1) = %q; want NVLink named", d)
	}
}

func TestProbeNoDriver(t *testing.T) {
	for _, tc := range []struct {
		r    nvml.Return
		want string
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver (libnvidia-ml.so.1 not found)"},
		{nvml.ERROR_DRIVER_NOT_LOADED, "kernel driver is not loaded"},
	} {
		lib := &mock.Interface{InitFunc: func() nvml.Return { return tc.r }}
		m, err := Probe(lib, "")
		if m != nil || !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Init %d: %v, %v; want ErrNoDriver saying %q", tc.r, m, err, tc.want)
		}
	}
	// The real loader, with a library that is not there.
	const missing = "/nonexistent/libnvidia-ml.so.1"
	_, err := Probe(Open(missing), missing)
	if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), missing+" not found") {
		t.Errorf("Probe(%s): %v; want no driver, naming it", missing, err)
	}
}

func TestProbeFailures(t *testing.T) {
	lib := Mock([]Fake{{Name: "a"}, {Name: "b", HandleFails: true}}, nil, nil)
	if _, err := Probe(lib, ""); err == nil || !strings.Contains(err.Error(), "GPU 1") {
		t.Errorf("a GPU without a handle: %v; want an error naming GPU 1", err)
	}
	// Topology not reported: the link is there, its kind unknown.
	m, err := Probe(Mock([]Fake{{Name: "a"}, {Name: "b"}}, nil, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Links) != 1 || m.Links[0].Kind != "" || m.Links[0].Level != -1 {
		t.Errorf("links %+v; want one of unknown kind", m.Links)
	}
}

func TestLinkKind(t *testing.T) {
	for _, tc := range []struct {
		level  nvml.GpuTopologyLevel
		nvlink bool
		want   string
	}{
		{nvml.TOPOLOGY_INTERNAL, false, LinkPCIeSwitch},
		{nvml.TOPOLOGY_SINGLE, false, LinkPCIeSwitch},
		{nvml.TOPOLOGY_MULTIPLE, false, LinkPCIeSwitch},
		{nvml.TOPOLOGY_HOSTBRIDGE, false, LinkPCIeHost},
		{nvml.TOPOLOGY_NODE, false, LinkPCIeHost},
		{nvml.TOPOLOGY_SYSTEM, false, LinkCrossSocket},
		{nvml.TOPOLOGY_SYSTEM, true, LinkNVLink},
		{-1, false, ""},
	} {
		if got := LinkKind(tc.level, tc.nvlink); got != tc.want {
			t.Errorf("LinkKind(%d, %v) = %q; want %q", tc.level, tc.nvlink, got, tc.want)
		}
	}
}

func TestKind(t *testing.T) {
	for name, want := range map[string]string{
		"NVIDIA RTX A5000":               "a5000",
		"NVIDIA RTX A4000":               "a4000",
		"NVIDIA H100 80GB HBM3":          "h100-80gb-hbm3",
		"NVIDIA GeForce RTX 4090":        "rtx-4090",
		"Tesla V100-SXM2-16GB":           "v100-sxm2-16gb",
		"NVIDIA RTX 6000 Ada Generation": "rtx-6000-ada-generation",
		"NVIDIA":                         "gpu",
	} {
		if got := Kind(name); got != want {
			t.Errorf("Kind(%q) = %q; want %q", name, got, want)
		}
	}
}

func TestLoad(t *testing.T) {
	st := Load(Library{What: "libm", Name: "libm.so.6"})
	if st.Err != nil || st.Path == "" {
		t.Errorf("libm.so.6: path %q, %v; want it found", st.Path, st.Err)
	}
	st = Load(Library{What: "none", Name: "libvdpp-not-there.so.13", Version: CUDALibraries[0].Version})
	if st.Err == nil || !strings.Contains(st.Err.Error(), "libvdpp-not-there.so.13") || st.Found != "" {
		t.Errorf("a missing library: %+v; want an error naming it", st)
	}
	// A library without the version symbol loads, with no version.
	st = Load(Library{What: "libm", Name: "libm.so.6", Version: CUDALibraries[0].Version})
	if st.Err != nil || st.Found != "" {
		t.Errorf("libm.so.6 with a version symbol it lacks: %+v; want it loaded, no version", st)
	}
	if v := CUDALibraries[3].Version.Format(91300); CUDALibraries[3].Name != "libcudnn.so.9" || v != "9.13.0" {
		t.Errorf("cuDNN 91300 = %s; want 9.13.0", v)
	}
	if v := CUDALibraries[0].Version.Format(13010); v != "13.1" {
		t.Errorf("cudart 13010 = %s; want 13.1", v)
	}
}
