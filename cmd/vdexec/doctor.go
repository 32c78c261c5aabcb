package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/gpu"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
)

const (
	flagNVMLLib     = "nvml-lib"
	flagEmitDevices = "emit-devices"
)

// cudaProviderLib is the ONNX Runtime CUDA provider, beside the core
// library in a GPU build.
const cudaProviderLib = "libonnxruntime_providers_cuda.so"

// ortGPUHint is how to get an ONNX Runtime library with the CUDA provider.
const ortGPUHint = "run `make ort-gpu` and pass --ort-lib third_party/onnxruntime-gpu-1.29.0/libonnxruntime.so (or set " + ort.EnvLib + ")"

// driverHint is what a GPU plan needs of the machine's driver.
const driverHint = "install the NVIDIA driver for CUDA 13 (≥ 580), or run the plan on CPU devices (provider cpu)"

// minCC is the lowest compute capability the CUDA 13 provider supports.
const minCCMajor, minCCMinor = 7, 5

// doctorDeps are what doctor asks the machine; tests give NVML mocks and
// made-up library results.
type doctorDeps struct {
	nvml func(path string) gpu.NVML
	libs func() []gpu.LibraryStatus
}

var machineDeps = doctorDeps{
	nvml: gpu.Open,
	libs: func() []gpu.LibraryStatus { return gpu.LoadAll(gpu.CUDALibraries) },
}

func doctorCommand() *cli.Command { return doctorCommandWith(machineDeps) }

func doctorCommandWith(deps doctorDeps) *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "report what this machine has for a plan (ONNX Runtime, NVIDIA driver and GPUs, CUDA libraries) and what is missing",
		ArgsUsage: "[PLAN]",
		Description: "Reports the ONNX Runtime library that would load (--ort-lib, $" + ort.EnvLib + ", else third_party) and its version and CUDA provider; " +
			"the NVIDIA driver and every GPU through NVML (name, memory, compute capability, PCIe link, NUMA node, the topology of every pair); " +
			"whether the CUDA runtime, cuBLAS, cuBLASLt, cuDNN and NCCL load; then, for the plan, whether each device's provider can run here " +
			"(a cuda device needs a GPU at its index with the free memory the plan's memory table asks, and the CUDA provider) " +
			"and whether its transport can run (nccl: NCCL and the CUDA runtime load, from --" + flagNCCLLib + " and --" + flagCUDARTLib + " or the loader's path). " +
			"It exits 1 when the plan cannot run, each problem saying what to install or change. " +
			"With --" + flagEmitDevices + " it writes the devices and links sections of a plan for this machine's GPUs instead (exit 1 without GPUs).",
		Flags: append(cliutil.WhatIfFlags(envPrefix, true), ortLibFlag(),
			&cli.StringFlag{Name: flagNVMLLib, EnvVars: cliutil.Env(envPrefix, flagNVMLLib),
				Usage: "NVML library `FILE` to ask about the driver and GPUs (default " + gpu.DefaultLibrary + ", as the driver installs it)"},
			&cli.BoolFlag{Name: flagEmitDevices, EnvVars: cliutil.Env(envPrefix, flagEmitDevices),
				Usage: "write the devices and links sections of a plan from this machine's GPUs and their topology (YAML, to stdout)"},
			ncclLibFlags()[0], ncclLibFlags()[1],
		),
		Action: func(c *cli.Context) error {
			args, err := cliutil.Positional(c)
			if err != nil {
				if cliutil.IsHelp(err) {
					return nil
				}
				return err
			}
			if err := setNCCLLibs(c, "doctor"); err != nil {
				return err
			}
			lib := c.String(flagNVMLLib)
			if c.Bool(flagEmitDevices) {
				if len(args) > 0 {
					return cliutil.Usage(fmt.Errorf("doctor: --%s takes no plan file (got %s)", flagEmitDevices, args[0]))
				}
				m, err := gpu.Probe(deps.nvml(lib), lib)
				if err != nil {
					return emitError(err)
				}
				if len(m.GPUs) == 0 {
					return errors.New("doctor --emit-devices: NVML reports no GPUs on this machine: no devices to write")
				}
				return emitDevices(c.App.Writer, m)
			}
			p, err := loadPlanArgs(c, args)
			if err != nil {
				return err
			}
			m, nvmlErr := gpu.Probe(deps.nvml(lib), lib)
			r := &doctorReport{plan: p, machine: m, nvmlErr: nvmlErr, libs: deps.libs()}
			r.ort(c)
			return r.write(c.App.Writer)
		},
	}
}

// emitError is the error of --emit-devices when NVML gives nothing.
func emitError(err error) error {
	if errors.Is(err, gpu.ErrNoDriver) {
		return fmt.Errorf("doctor --emit-devices: %v: this machine has no GPUs to describe; CPU plans list their devices by hand (kind cpu, provider cpu)", err)
	}
	return fmt.Errorf("doctor --emit-devices: %w", err)
}

// doctorReport is what doctor found; write prints it and says whether
// the plan can run.
type doctorReport struct {
	plan    *plan.Plan
	machine *gpu.Machine
	nvmlErr error
	libs    []gpu.LibraryStatus

	ortPath, ortSource, ortVersion string
	ortErr                         error
	cudaProvider                   string // the provider library beside ortPath, "" when none
}

// ort finds and loads the ONNX Runtime library as run would: --ort-lib
// (or its environment variables), else the one Discover finds.
func (r *doctorReport) ort(c *cli.Context) {
	path := c.String(flagORTLib)
	switch {
	case path == "":
		found, looked := ort.Discover()
		if found == "" {
			r.ortErr = ort.Init("") // says where it looked and what to do
			if r.ortErr == nil {
				r.ortErr = fmt.Errorf("no library found in %s", strings.Join(looked, ", "))
			}
			return
		}
		path, r.ortSource = found, "found in the repository's third_party folder; --ort-lib or "+ort.EnvLib+" choose another"
	case os.Getenv(cliutil.Env(envPrefix, flagORTLib)[0]) == path:
		r.ortSource = "from $" + cliutil.Env(envPrefix, flagORTLib)[0]
	case os.Getenv(ort.EnvLib) == path:
		r.ortSource = "from $" + ort.EnvLib
	default:
		r.ortSource = "from --" + flagORTLib
	}
	r.ortPath = path
	if err := ort.Init(path); err != nil {
		r.ortErr = err
		return
	}
	r.ortVersion = ort.Version()
	cp := filepath.Join(filepath.Dir(r.ortPath), cudaProviderLib)
	if fi, err := os.Stat(cp); err == nil && fi.Mode().IsRegular() {
		r.cudaProvider = cp
	}
}

// write prints the report's sections and returns the plan's problems
// (nil: it can run here), one line each.
func (r *doctorReport) write(w io.Writer) error {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	fmt.Fprintln(w, "ONNX Runtime")
	if r.ortErr != nil {
		fmt.Fprintf(w, "  library: does not load: %v\n", r.ortErr)
		add("no ONNX Runtime library loads (%v)", r.ortErr)
	} else {
		fmt.Fprintf(w, "  library: %s (%s)\n", r.ortPath, r.ortSource)
		fmt.Fprintf(w, "  version: %s\n", r.ortVersion)
		if r.cudaProvider != "" {
			fmt.Fprintf(w, "  CUDA provider: %s\n", r.cudaProvider)
		} else {
			fmt.Fprintf(w, "  CUDA provider: none (no %s beside the library; CPU only): for GPU plans %s\n", cudaProviderLib, ortGPUHint)
		}
	}

	fmt.Fprintln(w, "\nNVIDIA driver and GPUs (NVML)")
	m := r.machine
	switch {
	case errors.Is(r.nvmlErr, gpu.ErrNoDriver):
		fmt.Fprintf(w, "  %v: CPU plans can run; GPU plans cannot (%s)\n", r.nvmlErr, driverHint)
	case r.nvmlErr != nil:
		fmt.Fprintf(w, "  NVML fails: %v\n", r.nvmlErr)
	default:
		fmt.Fprintf(w, "  driver %s, CUDA %s (the newest CUDA this driver runs)\n", m.Driver, m.CUDADriverVersion())
		if len(m.GPUs) == 0 {
			fmt.Fprintln(w, "  no GPUs: CPU plans can run; GPU plans cannot")
		}
		for _, g := range m.GPUs {
			fmt.Fprintf(w, "  GPU %d: %s\n", g.Index, describeGPU(g))
		}
		for _, l := range m.Links {
			kind := l.Kind
			if kind == "" {
				kind = "unknown"
			}
			fmt.Fprintf(w, "  GPU %d–%d: %s (%s)\n", l.A, l.B, kind, gpu.Describe(l))
		}
	}

	fmt.Fprintln(w, "\nCUDA libraries (dlopen, as the CUDA provider loads them)")
	for _, l := range r.libs {
		if l.Err != nil {
			fmt.Fprintf(w, "  %s (%s): does not load (%v): install %s where the loader finds it (ldconfig or LD_LIBRARY_PATH)\n", l.What, l.Name, l.Err, l.Install)
			continue
		}
		v := ""
		if l.Found != "" {
			v = ", version " + l.Found
		}
		fmt.Fprintf(w, "  %s (%s): loads from %s%s\n", l.What, l.Name, l.Path, v)
	}

	p := r.plan
	fmt.Fprintf(w, "\nplan %s (%s)\n", p.Name, p.File)
	need, memErr := r.memoryNeeds()
	cudaUsed := false
	for i, d := range p.Devices {
		if d.Provider != plan.ProviderCUDA {
			if r.ortErr != nil {
				fmt.Fprintf(w, "  %s: provider cpu: cannot run without an ONNX Runtime library\n", d.Name)
			} else {
				fmt.Fprintf(w, "  %s: provider cpu, %d intra-op thread(s): ok (ONNX Runtime %s)\n", d.Name, d.Threads, r.ortVersion)
			}
			continue
		}
		cudaUsed = true
		var bad []string
		switch {
		case r.nvmlErr != nil:
			bad = append(bad, fmt.Sprintf("%s (cuda device %d): %v: %s", d.Name, d.Index, r.nvmlErr, driverHint))
		case d.Index >= len(m.GPUs):
			bad = append(bad, fmt.Sprintf("%s: cuda device %d does not exist: this machine has %s; change devices[%d].index, or use fewer devices (--devices)",
				d.Name, d.Index, gpuCount(len(m.GPUs)), i))
		default:
			g := m.GPUs[d.Index]
			if g.CCMajor >= 0 && (g.CCMajor < minCCMajor || g.CCMajor == minCCMajor && g.CCMinor < minCCMinor) {
				bad = append(bad, fmt.Sprintf("%s: GPU %d (%s) has compute capability %d.%d; the CUDA 13 provider needs %d.%d or newer: use another GPU",
					d.Name, d.Index, g.Name, g.CCMajor, g.CCMinor, minCCMajor, minCCMinor))
			}
			if n, ok := need[d.Index]; ok && memErr == nil {
				free := gpu.GiB(g.FreeBytes)
				if n.gb > free {
					bad = append(bad, fmt.Sprintf("%s: needs %.2f GiB on GPU %d (%s) for %s, which has %.2f GiB free of %.2f GiB: free memory on GPU %d, lower micro_batch, or spread the stages over more GPUs",
						d.Name, n.gb, d.Index, g.Name, strings.Join(n.devices, "+"), free, gpu.GiB(g.TotalBytes), d.Index))
				}
			}
		}
		if r.ortErr == nil && r.cudaProvider == "" {
			bad = append(bad, fmt.Sprintf("%s: provider cuda: the ONNX Runtime library %s has no CUDA provider (%s beside it): %s", d.Name, r.ortPath, cudaProviderLib, ortGPUHint))
		}
		if len(bad) == 0 {
			msg := fmt.Sprintf("  %s: provider cuda on GPU %d (%s): ok", d.Name, d.Index, m.GPUs[d.Index].Name)
			if n, ok := need[d.Index]; ok && memErr == nil {
				msg += fmt.Sprintf(", needs %.2f GiB of %.2f GiB free", n.gb, gpu.GiB(m.GPUs[d.Index].FreeBytes))
			}
			fmt.Fprintln(w, msg)
		}
		for _, b := range bad {
			fmt.Fprintf(w, "  %s\n", b)
			add("%s", b)
		}
	}
	if cudaUsed {
		for _, l := range r.libs {
			if l.Err != nil && l.Name != "libnccl.so.2" {
				add("the CUDA provider needs %s (%s), which does not load: install %s where the loader finds it (ldconfig or LD_LIBRARY_PATH)", l.Name, l.What, l.Install)
			}
		}
		if memErr != nil {
			fmt.Fprintf(w, "  GPU memory: not checked (%v)\n", memErr)
		}
	}
	if err := exec.CheckTransport(p.Transport); err != nil {
		fmt.Fprintf(w, "  transport %s: %v\n", p.Transport, err)
		add("transport %s: %v", p.Transport, err)
	} else {
		fmt.Fprintf(w, "  transport %s: ok\n", p.Transport)
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\nplan %s cannot run here: %d problem(s)\n", p.Name, len(problems))
		errs := make([]error, len(problems))
		for i, s := range problems {
			errs[i] = errors.New(s)
		}
		return fmt.Errorf("doctor: plan %s cannot run on this machine:\n%w", p.Name, errors.Join(errs...))
	}
	fmt.Fprintf(w, "\nplan %s can run here", p.Name)
	if cudaUsed {
		fmt.Fprintf(w, " (`vdexec validate` opens every stage's session, the final check)")
	}
	fmt.Fprintln(w)
	return nil
}

// gpuNeed is the memory the plan asks of one GPU.
type gpuNeed struct {
	gb      float64
	devices []string
}

// memoryNeeds sums the plan's memory table (sim.Memory) per cuda device
// index: two plan devices on one GPU share its memory. The plan's figures
// are GiB (2³⁰ bytes), as memory_gb is written (24 for a 24 GiB card), and
// are compared with the GPU's memory in GiB.
func (r *doctorReport) memoryNeeds() (map[int]gpuNeed, error) {
	rows, err := sim.Memory(r.plan)
	if err != nil {
		return nil, err
	}
	out := map[int]gpuNeed{}
	for i, row := range rows {
		d := r.plan.Devices[i]
		if d.Provider != plan.ProviderCUDA || row.Stages == 0 {
			continue
		}
		n := out[d.Index]
		n.gb += row.NeedGB
		n.devices = append(n.devices, d.Name)
		out[d.Index] = n
	}
	return out, nil
}

func gpuCount(n int) string {
	switch n {
	case 0:
		return "no GPUs"
	case 1:
		return "1 GPU (index 0)"
	}
	return fmt.Sprintf("%d GPUs (indices 0–%d)", n, n-1)
}

// describeGPU is one GPU's line: name, memory, compute capability, PCIe
// link, NUMA node.
func describeGPU(g gpu.GPU) string {
	s := fmt.Sprintf("%s, %.2f GiB total, %.2f GiB free", g.Name, gpu.GiB(g.TotalBytes), gpu.GiB(g.FreeBytes))
	if g.CCMajor >= 0 {
		s += fmt.Sprintf(", compute capability %d.%d", g.CCMajor, g.CCMinor)
		if g.CCMajor < minCCMajor || g.CCMajor == minCCMajor && g.CCMinor < minCCMinor {
			s += fmt.Sprintf(" (below %d.%d: the CUDA 13 provider cannot use it)", minCCMajor, minCCMinor)
		}
	} else {
		s += ", compute capability unknown"
	}
	if g.PCIeGen >= 0 {
		s += fmt.Sprintf(", PCIe gen %d ×%d", g.PCIeGen, g.PCIeWidth)
		if g.PCIeMaxGen > g.PCIeGen || g.PCIeMaxWidth > g.PCIeWidth {
			s += fmt.Sprintf(" (max gen %d ×%d; the link trains down when idle)", g.PCIeMaxGen, g.PCIeMaxWidth)
		}
	} else {
		s += ", PCIe link unknown"
	}
	if g.NUMA >= 0 {
		s += fmt.Sprintf(", NUMA node %d", g.NUMA)
	} else {
		s += ", NUMA node not reported"
	}
	return s
}

// emitDevices writes the devices and links sections of a plan for m's
// GPUs: gpu0, gpu1, ... with kind from the GPU's name, memory_gb its total
// memory in GiB, its NUMA node and CUDA index; the most frequent link kind
// as links.default and every other pair as an override.
func emitDevices(w io.Writer, m *gpu.Machine) error {
	name := func(i int) string { return "gpu" + strconv.Itoa(i) }
	models := map[string]int{}
	for _, g := range m.GPUs {
		models[g.Name]++
	}
	var ms []string
	for n, c := range models {
		ms = append(ms, fmt.Sprintf("%d × %s", c, n))
	}
	sort.Strings(ms)
	fmt.Fprintf(w, "# vdexec doctor --emit-devices: %s; driver %s, CUDA %s\n", strings.Join(ms, ", "), m.Driver, m.CUDADriverVersion())
	fmt.Fprintf(w, "# memory_gb: total memory in GiB. Link kinds (give each one costs in the profile's links): %s (NVLink), %s (same PCIe switch), %s (one socket's host bridges), %s (across sockets)\n",
		gpu.LinkNVLink, gpu.LinkPCIeSwitch, gpu.LinkPCIeHost, gpu.LinkCrossSocket)
	fmt.Fprintln(w, "devices:")
	for _, g := range m.GPUs {
		numa, note := g.NUMA, ""
		if numa < 0 {
			numa, note = 0, "   # NUMA node not reported by the driver"
		}
		mem := strconv.FormatFloat(math.Round(gpu.GiB(g.TotalBytes)*10)/10, 'f', -1, 64)
		fmt.Fprintf(w, "  - {name: %s, kind: %s, memory_gb: %s, numa: %d, index: %d, provider: cuda}%s\n", name(g.Index), gpu.Kind(g.Name), mem, numa, g.Index, note)
	}
	fmt.Fprintln(w, "links:")
	def := gpu.CommonKind(m.Links)
	if def == "" {
		def = gpu.LinkPCIeHost
		if len(m.GPUs) < 2 {
			fmt.Fprintf(w, "  default: %s   # one GPU: no links between GPUs\n", def)
			return nil
		}
		fmt.Fprintf(w, "  default: %s   # the driver reported no topology\n", def)
		return nil
	}
	fmt.Fprintf(w, "  default: %s\n", def)
	var over []gpu.Link
	for _, l := range m.Links {
		if l.Kind != "" && l.Kind != def {
			over = append(over, l)
		}
	}
	if len(over) > 0 {
		fmt.Fprintln(w, "  overrides:")
		for _, l := range over {
			fmt.Fprintf(w, "    - {between: [%s, %s], kind: %s}\n", name(l.A), name(l.B), l.Kind)
		}
	}
	return nil
}
