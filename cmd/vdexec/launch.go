package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/internal/atomicfile"
	"github.com/vdpp/vdpp/internal/outdir"
	"github.com/vdpp/vdpp/plan"
)

// Flag names of launch.
const (
	flagEmit   = "emit"
	flagOutput = "output"
	flagImage  = "image"
	flagName   = "name"
	flagBinary = "vdexec"
)

// Launchers that launch writes a job for.
const (
	emitSlurm    = "slurm"
	emitK8s      = "k8s"
	emitTorchrun = "torchrun"
)

// defaultJobTimeout bounds a job's rendezvous: cluster ranks may start
// minutes apart (images pulled, nodes allocated).
const defaultJobTimeout = 10 * time.Minute

func launchCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, true),
		imagesFlag(),
		&cli.StringFlag{Name: flagEmit, EnvVars: cliutil.Env(envPrefix, "launch-emit"),
			Usage: "the job to write: " + emitSlurm + " (an sbatch script using srun), " + emitK8s + " (a Kubernetes LeaderWorkerSet manifest) or " + emitTorchrun + " (a script running torchrun --no-python)"},
		&cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, EnvVars: cliutil.Env(envPrefix, "launch-output"),
			Usage: "write the job to `FILE` (default: standard output); an existing file is refused unless --replace"},
		&cli.BoolFlag{Name: flagReplace, EnvVars: cliutil.Env(envPrefix, "launch-replace"), Usage: "overwrite the --output file if it exists"},
		&cli.StringFlag{Name: flagOut, Value: filepath.Join("out", "run"), EnvVars: cliutil.Env(envPrefix, "launch-out"),
			Usage: "the run's output `DIR` in the job: the same path for every rank (a shared file system)"},
		&cli.DurationFlag{Name: flagTimeout, Value: defaultJobTimeout, EnvVars: cliutil.Env(envPrefix, "launch-timeout"),
			Usage: "how long the job's ranks wait for each other to join"},
		&cli.IntFlag{Name: flagCoordinatorPort, Value: defaultCoordinatorPort, EnvVars: cliutil.Env(envPrefix, "launch-coordinator-port"),
			Usage: "the coordinator's port (torchrun: its MASTER_PORT; the coordinator then takes the next one)"},
		&cli.StringFlag{Name: flagBinary, Value: "vdexec", EnvVars: cliutil.Env(envPrefix, "launch-vdexec"), Usage: "the vdexec `PROGRAM` as the job's nodes or image have it"},
		&cli.StringFlag{Name: flagImage, Value: "vdpp/vdexec:latest", EnvVars: cliutil.Env(envPrefix, "launch-image"),
			Usage: "k8s: the container `IMAGE` (with vdexec, ONNX Runtime, the plan and its model files)"},
		&cli.StringFlag{Name: flagName, EnvVars: cliutil.Env(envPrefix, "launch-name"), Usage: "the job's `NAME` (default: the plan's name)"},
		backendFlag(),
	)
	return &cli.Command{
		Name:      "launch",
		Usage:     "write a cluster job that runs a plan with transport " + workerTransports() + ": Slurm, Kubernetes (LeaderWorkerSet) or torchrun",
		ArgsUsage: "[PLAN]",
		Description: "The job has one rank per stage device plus the coordinator (rank 0), and every rank runs the same " +
			"command line, `vdexec rank PLAN ...`, which finds its rank and the coordinator in the launcher's variables. " +
			"The run's token is never written into the job: it comes from $" + exec.EnvWorkerToken + " (or a token file named " +
			"by $VDEXEC_RANK_TOKEN_FILE) where the job is submitted, or from a Kubernetes Secret. The plan file, " +
			"the model files and the --out folder must be at the same paths on every node (a shared file system or the image). " +
			"--" + flagBackend + " goes into every rank's command line as the transport it chose (auto: nccl when every device's provider is cuda, " +
			"else tcp; NCCL is loaded by the ranks, not checked where the job is written). " +
			"Where the plan's devices name their hosts (host: in the plan; every stage device or none), the job places each rank on its device's host, " +
			"the coordinator on rank 1's: Slurm asks for those nodes (--nodelist) and places task r by SLURM_HOSTFILE (--distribution=arbitrary); " +
			"the torchrun script runs on every host as that host's node (ranks numbered node by node, so each host's devices must be together in plan order); " +
			"the Kubernetes manifest lists the hosts in an annotation and pins the leader (and the workers, when they share a node) with nodeSelector.",
		Flags:  flags,
		Action: launchAction,
	}
}

func launchAction(c *cli.Context) error {
	args, err := cliutil.Positional(c)
	if err != nil {
		if cliutil.IsHelp(err) {
			return nil
		}
		return err
	}
	emit := c.String(flagEmit)
	switch emit {
	case emitSlurm, emitK8s, emitTorchrun:
	case "":
		return cliutil.Usage(fmt.Errorf("launch: --%s is required: %s, %s or %s", flagEmit, emitSlurm, emitK8s, emitTorchrun))
	default:
		return cliutil.Usage(fmt.Errorf("launch: %s %q: want %s, %s or %s", cliutil.Source(c, flagEmit), emit, emitSlurm, emitK8s, emitTorchrun))
	}
	if d := c.Duration(flagTimeout); d <= 0 {
		return cliutil.Usage(fmt.Errorf("launch: --%s %s: want a positive duration such as 10m", flagTimeout, d))
	}
	if port := c.Int(flagCoordinatorPort); port < 1 || port > 65534 {
		return cliutil.Usage(fmt.Errorf("launch: %s %d: want a port from 1 to 65534 (under torchrun the coordinator takes the next one)", cliutil.Source(c, flagCoordinatorPort), port))
	}
	if c.IsSet(flagImage) && emit != emitK8s {
		return cliutil.Usage(fmt.Errorf("launch: --%s is for --%s %s only", flagImage, flagEmit, emitK8s))
	}
	out := c.String(flagOutput)
	if c.IsSet(flagOutput) && out != "-" {
		if err := outdir.CheckNewFile(out, c.Bool(flagReplace), "--"+flagReplace); err != nil {
			return fmt.Errorf("launch: --%s: %w", flagOutput, err)
		}
	}
	if _, err := backendWord(c, "launch"); err != nil {
		return err
	}
	p, err := loadPlanArgs(c, args)
	if err != nil {
		return err
	}
	// The job's ranks load NCCL where they run: auto is decided by the
	// devices' providers here, and every rank gets the choice.
	backend, err := applyBackendWith(c, p, "launch", func() (string, error) {
		return "NCCL is loaded by the ranks where they run (not checked where the job is written)", nil
	})
	if err != nil {
		return err
	}
	if !exec.WorkerProcesses(p.Transport) {
		return cliutil.Usage(fmt.Errorf("launch: plan %s has transport %s, whose stages run in one process: a cluster job needs transport %s (set it in the plan, or give --%s)", p.Name, p.Transport, workerTransports(), flagBackend))
	}
	j, err := newJob(c, p, args)
	if err != nil {
		return err
	}
	if backend != "" {
		j.rank = append(j.rank, "--"+flagBackend+"="+backend)
	}
	if err := j.checkHosts(emit); err != nil {
		return cliutil.Usage(err)
	}
	var data []byte
	switch emit {
	case emitSlurm:
		data = j.slurm()
	case emitK8s:
		if data, err = j.k8s(); err != nil {
			return err
		}
	case emitTorchrun:
		data = j.torchrun()
	}
	if !c.IsSet(flagOutput) || out == "-" {
		_, err := c.App.Writer.Write(data)
		return err
	}
	if err := atomicfile.Write(out, data); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	if emit != emitK8s {
		if err := os.Chmod(out, 0o755); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
	}
	fmt.Fprintf(c.App.ErrWriter, "vdexec: wrote %s: a %s job for plan %s, %d ranks (the coordinator and %s)\n", out, emit, p.Name, j.ranks, strings.Join(j.devices, ", "))
	return nil
}

// job is what every emitted job says.
type job struct {
	name    string   // the job's name, DNS-1123 (Kubernetes objects)
	plan    string   // the plan's name
	ranks   int      // stage devices + 1
	devices []string // in plan order: rank r runs devices[r-1]
	port    int
	image   string
	rank    []string // the command line of every rank
	// hosts is the host of every rank where the plan's devices name
	// theirs (rank r ≥ 1: its device's host; rank 0, the coordinator:
	// rank 1's), nil where none does.
	hosts []string
}

var dnsLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// newJob gathers what the job runs: `vdexec rank PLAN` with the run's
// flags (--out, --timeout, and the what-if flags and images given here).
func newJob(c *cli.Context, p *plan.Plan, args []string) (*job, error) {
	name := c.String(flagName)
	if name == "" {
		name = p.Name
	}
	name = strings.Trim(dnsLabel.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if name == "" || len(name) > 50 {
		return nil, cliutil.Usage(fmt.Errorf("launch: job name %q: want 1 to 50 letters, digits and dashes (give --%s)", c.String(flagName), flagName))
	}
	j := &job{name: name, plan: p.Name, devices: stageDevices(p), port: c.Int(flagCoordinatorPort), image: c.String(flagImage)}
	j.ranks = len(j.devices) + 1
	hosts, err := rankHosts(p)
	if err != nil {
		return nil, cliutil.Usage(fmt.Errorf("launch: %w", err))
	}
	j.hosts = hosts
	j.rank = []string{c.String(flagBinary), "rank"}
	if len(args) == 1 {
		j.rank = append(j.rank, args[0])
	}
	j.rank = append(j.rank, "--"+flagOut, c.String(flagOut), "--"+flagTimeout, c.Duration(flagTimeout).String())
	for _, f := range append(cliutil.WhatIfFlags(envPrefix, true), imagesFlag()) {
		n := f.Names()[0]
		if c.IsSet(n) {
			j.rank = append(j.rank, fmt.Sprintf("--%s=%v", n, c.Value(n)))
		}
	}
	return j, nil
}

// shellQuote quotes s for a POSIX shell where it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// header is the comment at the top of every job.
func (j *job) header(emit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `vdexec launch --emit %s` for plan %s: %d ranks.\n", emit, j.plan, j.ranks)
	fmt.Fprintf(&b, "#   rank 0: the coordinator (vdexec run --external-workers)%s\n", j.onHost(0))
	for i, d := range j.devices {
		fmt.Fprintf(&b, "#   rank %d: the worker of device %s%s\n", i+1, d, j.onHost(i+1))
	}
	fmt.Fprintf(&b, "# Every rank runs the same command, `vdexec rank`, which reads its rank from the\n")
	fmt.Fprintf(&b, "# launcher. The plan, its model files and the --out folder must be at the same\n")
	fmt.Fprintf(&b, "# paths on every node (a shared file system, or the image). The run's token is\n")
	fmt.Fprintf(&b, "# not in this file: every rank reads it from $%s (or the file named\n", exec.EnvWorkerToken)
	fmt.Fprintf(&b, "# by $VDEXEC_RANK_TOKEN_FILE).\n")
	return b.String()
}

// tokenCheck is the shell check that the token reaches the ranks.
const tokenCheck = `if [ -z "${VDPP_WORKER_TOKEN:-}" ] && [ -z "${VDEXEC_RANK_TOKEN_FILE:-}" ]; then
  echo "set VDPP_WORKER_TOKEN (e.g. export VDPP_WORKER_TOKEN=\$(openssl rand -hex 32)) or VDEXEC_RANK_TOKEN_FILE before starting this job" >&2
  exit 2
fi
export VDPP_WORKER_TOKEN="${VDPP_WORKER_TOKEN:-}"
`

// slurm is an sbatch script: one srun task per rank (SLURM_PROCID is the
// rank), the coordinator on the first node of the allocation, where srun
// places task 0.
func (j *job) slurm() []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", j.name)
	fmt.Fprintf(&b, "#SBATCH --ntasks=%d\n", j.ranks)
	fmt.Fprintf(&b, "#SBATCH --output=%s-%%j.out\n", j.name)
	if j.hosts != nil {
		nodes := distinctHosts(j.hosts)
		fmt.Fprintf(&b, "#SBATCH --nodes=%d\n", len(nodes))
		fmt.Fprintf(&b, "#SBATCH --nodelist=%s\n", strings.Join(nodes, ","))
		b.WriteString("# Add the #SBATCH lines your cluster needs (--partition, --gpus-per-task, --time).\n")
	} else {
		b.WriteString("# Add the #SBATCH lines your cluster needs (--nodes, --partition, --gpus-per-task, --time).\n")
	}
	b.WriteString(j.header(emitSlurm))
	b.WriteString("# Submit: export VDPP_WORKER_TOKEN=$(openssl rand -hex 32); sbatch THIS_FILE\n")
	b.WriteString("set -euo pipefail\n")
	b.WriteString(tokenCheck)
	srun := fmt.Sprintf("srun --ntasks=%d --kill-on-bad-exit=1", j.ranks)
	if j.hosts != nil {
		b.WriteString("# The plan's devices name their hosts: srun places task r on line r+1 of\n")
		b.WriteString("# SLURM_HOSTFILE (--distribution=arbitrary), the host of rank r's device; the\n")
		b.WriteString("# coordinator (task 0) runs on rank 1's host.\n")
		b.WriteString("SLURM_HOSTFILE=$(mktemp \"${TMPDIR:-/tmp}/vdexec-hosts.XXXXXX\")\n")
		b.WriteString("trap 'rm -f \"$SLURM_HOSTFILE\"' EXIT\n")
		fmt.Fprintf(&b, "printf '%%s\\n' %s > \"$SLURM_HOSTFILE\"\n", shellLine(j.hosts))
		b.WriteString("export SLURM_HOSTFILE\n")
		fmt.Fprintf(&b, "export MASTER_ADDR=%s\nexport MASTER_PORT=%d\n", shellQuote(j.hosts[0]), j.port)
		srun += " --distribution=arbitrary"
	} else {
		b.WriteString("# Task 0 (the coordinator) runs on the first node of the allocation.\n")
		b.WriteString("MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\n")
		fmt.Fprintf(&b, "export MASTER_ADDR\nexport MASTER_PORT=%d\n", j.port)
	}
	fmt.Fprintf(&b, "%s %s\n", srun, shellLine(j.rank))
	return b.Bytes()
}

// torchrun is a script that starts every rank on this node with torchrun
// --no-python (it runs vdexec itself, not a Python script), which gives
// each process RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
func (j *job) torchrun() []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/bash\n")
	b.WriteString(j.header(emitTorchrun))
	if j.hosts != nil {
		return j.torchrunHosts(&b)
	}
	b.WriteString("# torchrun starts the ranks on this node; its own store holds MASTER_PORT, and the\n")
	b.WriteString("# coordinator listens on the next port. On several nodes, run torchrun on each with\n")
	b.WriteString("# --nnodes, --node-rank and --master-addr of node 0, and --nproc-per-node adding up\n")
	fmt.Fprintf(&b, "# to %d ranks.\n", j.ranks)
	b.WriteString("set -euo pipefail\n")
	b.WriteString(tokenCheck)
	args := []string{"torchrun", "--nnodes=1", fmt.Sprintf("--nproc-per-node=%d", j.ranks), "--node-rank=0",
		"--master-addr=127.0.0.1", fmt.Sprintf("--master-port=%d", j.port), "--no-python"}
	fmt.Fprintf(&b, "exec %s \\\n  %s\n", shellLine(args), shellLine(j.rank))
	return b.Bytes()
}

// torchrunNode is one torchrun node of a job whose devices name hosts:
// its host and how many ranks it runs (torchrun numbers ranks node by
// node, in --node-rank order).
type torchrunNode struct {
	host  string
	procs int
}

// torchrunNodes groups the ranks into torchrun nodes by host, in rank
// order; an error when a host's ranks are not contiguous (torchrun could
// not give them their numbers).
func (j *job) torchrunNodes() ([]torchrunNode, error) {
	var nodes []torchrunNode
	seen := map[string]int{}
	for r, h := range j.hosts {
		k := plan.HostKey(h)
		if n := len(nodes); n > 0 && plan.HostKey(nodes[n-1].host) == k {
			nodes[n-1].procs++
			continue
		}
		if first, ok := seen[k]; ok {
			return nil, fmt.Errorf("torchrun numbers ranks node by node, but host %s has rank %d and rank %d with other hosts' ranks between: order the plan's stage devices by host (rank r runs the r-th stage device), or use --%s %s, which places every rank on its host", h, first, r, flagEmit, emitSlurm)
		}
		seen[k] = r
		nodes = append(nodes, torchrunNode{host: h, procs: 1})
	}
	return nodes, nil
}

// torchrunHosts writes the torchrun script of a job whose devices name
// hosts: run on every host, it picks that host's node rank and process
// count by the host's name (or the host given as its first argument),
// the coordinator's host being node 0.
func (j *job) torchrunHosts(b *bytes.Buffer) []byte {
	nodes, _ := j.torchrunNodes() // checked by launchAction
	b.WriteString("# The plan's devices name their hosts: run this script on each of them (it finds\n")
	b.WriteString("# its node by the host's name, or by the host given as its first argument). torchrun\n")
	b.WriteString("# numbers the ranks node by node; its own store holds MASTER_PORT on node 0, the\n")
	b.WriteString("# coordinator's host, and the coordinator listens on the next port.\n")
	base := 0
	for i, n := range nodes {
		ranks := fmt.Sprintf("rank %d", base)
		if n.procs > 1 {
			ranks = fmt.Sprintf("ranks %d-%d", base, base+n.procs-1)
		}
		fmt.Fprintf(b, "#   %s: torchrun --nnodes=%d --nproc-per-node=%d --node-rank=%d (%s)\n", n.host, len(nodes), n.procs, i, ranks)
		base += n.procs
	}
	b.WriteString("set -euo pipefail\n")
	b.WriteString(tokenCheck)
	b.WriteString("host=\"${1:-$(hostname)}\"\n")
	b.WriteString("case \"${host,,}\" in\n")
	var names []string
	for i, n := range nodes {
		names = append(names, n.host)
		fmt.Fprintf(b, "  %s) node_rank=%d; nproc=%d ;;\n", strings.Join(hostPatterns(n.host), "|"), i, n.procs)
	}
	fmt.Fprintf(b, "  *) echo \"host $host is none of the plan's hosts (%s): run this script there, or give the host as its first argument\" >&2; exit 2 ;;\n", strings.Join(names, ", "))
	b.WriteString("esac\n")
	args := []string{"torchrun", fmt.Sprintf("--nnodes=%d", len(nodes))}
	fmt.Fprintf(b, "exec %s \"--nproc-per-node=$nproc\" \"--node-rank=$node_rank\" %s \\\n  %s\n", shellLine(args),
		shellLine([]string{"--master-addr=" + j.hosts[0], fmt.Sprintf("--master-port=%d", j.port), "--no-python"}), shellLine(j.rank))
	return b.Bytes()
}

// hostPatterns are the shell case patterns (lower case) of the names a
// machine may report for host h, as plan.Device.RunsOn matches them: h
// itself, and its short name (node-a for node-a.cluster.local) or any
// dotted name under it (node-a.* for node-a); an address only itself.
func hostPatterns(h string) []string {
	h = strings.ToLower(h)
	if plan.CheckHost(h) == nil && plan.IsAddress(h) {
		return []string{shellQuote(h)}
	}
	if short, _, dotted := strings.Cut(h, "."); dotted {
		return []string{shellQuote(h), shellQuote(short)}
	}
	return []string{shellQuote(h), shellQuote(h) + ".*"}
}

// rankHosts is the host of every rank (see job.hosts): nil when no stage
// device names a host, an error naming the devices when some do and some
// do not (their ranks could not be placed).
func rankHosts(p *plan.Plan) ([]string, error) {
	byName := map[string]plan.Device{}
	for _, d := range p.Devices {
		byName[d.Name] = d
	}
	devs := stageDevices(p)
	hosts := make([]string, len(devs)+1)
	var with, without []string
	for i, n := range devs {
		h := byName[n].Host
		hosts[i+1] = h
		if h == "" {
			without = append(without, n)
		} else {
			with = append(with, n+" ("+h+")")
		}
	}
	switch {
	case len(with) == 0:
		return nil, nil
	case len(without) > 0:
		return nil, fmt.Errorf("plan %s: devices %s name their hosts but %s do not: name a host for every stage device (host: in the plan), or for none", p.Name, strings.Join(with, ", "), strings.Join(without, ", "))
	}
	hosts[0] = hosts[1]
	return hosts, nil
}

// distinctHosts lists hosts once each (ignoring case), in order.
func distinctHosts(hosts []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range hosts {
		if k := plan.HostKey(h); !seen[k] {
			seen[k] = true
			out = append(out, h)
		}
	}
	return out
}

// The Kubernetes names a manifest of a plan with hosts uses.
const (
	k8sHostLabel       = "kubernetes.io/hostname" // the node's well-known label
	k8sHostsAnnotation = "vdpp.dev/rank-hosts"    // every rank's host, "0=node-a,1=node-a,2=node-b"
)

// rankHostList is every rank's host as "0=node-a,1=node-a,2=node-b".
func (j *job) rankHostList() string {
	parts := make([]string, len(j.hosts))
	for r, h := range j.hosts {
		parts[r] = fmt.Sprintf("%d=%s", r, h)
	}
	return strings.Join(parts, ",")
}

// onHost is " on host H" for rank r of a job whose devices name hosts.
func (j *job) onHost(r int) string {
	if j.hosts == nil {
		return ""
	}
	return " on host " + j.hosts[r]
}

// checkHosts checks that the job can place its ranks on the plan's hosts
// with launcher emit: Slurm names nodes (not addresses); torchrun needs
// each host's ranks together.
func (j *job) checkHosts(emit string) error {
	if j.hosts == nil {
		return nil
	}
	switch emit {
	case emitSlurm:
		for r, h := range j.hosts[1:] {
			if plan.IsAddress(h) {
				return fmt.Errorf("launch: Slurm places tasks on nodes by name, but device %s names the address %s: name its node (host: node-a), or use --%s %s", j.devices[r], h, flagEmit, emitTorchrun)
			}
		}
	case emitTorchrun:
		if _, err := j.torchrunNodes(); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
	}
	return nil
}

// Kubernetes objects of the LeaderWorkerSet manifest, in the order
// kubectl shows them.
type (
	k8sObject struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   k8sMeta    `yaml:"metadata"`
		Spec       k8sLWSSpec `yaml:"spec"`
	}
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations,omitempty"`
	}
	k8sLWSSpec struct {
		Replicas             int           `yaml:"replicas"`
		StartupPolicy        string        `yaml:"startupPolicy"`
		LeaderWorkerTemplate k8sLWTemplate `yaml:"leaderWorkerTemplate"`
	}
	k8sLWTemplate struct {
		Size           int        `yaml:"size"`
		RestartPolicy  string     `yaml:"restartPolicy"`
		LeaderTemplate k8sPodTmpl `yaml:"leaderTemplate"`
		WorkerTemplate k8sPodTmpl `yaml:"workerTemplate"`
	}
	k8sPodTmpl struct {
		Spec k8sPodSpec `yaml:"spec"`
	}
	k8sPodSpec struct {
		HostNetwork  bool              `yaml:"hostNetwork,omitempty"`
		DNSPolicy    string            `yaml:"dnsPolicy,omitempty"`
		NodeSelector map[string]string `yaml:"nodeSelector,omitempty"`
		Containers   []k8sContainer    `yaml:"containers"`
	}
	k8sContainer struct {
		Name    string    `yaml:"name"`
		Image   string    `yaml:"image"`
		Command []string  `yaml:"command"`
		Env     []k8sEnv  `yaml:"env"`
		Ports   []k8sPort `yaml:"ports,omitempty"`
	}
	k8sEnv struct {
		Name      string        `yaml:"name"`
		Value     string        `yaml:"value,omitempty"`
		ValueFrom *k8sValueFrom `yaml:"valueFrom,omitempty"`
	}
	k8sValueFrom struct {
		SecretKeyRef k8sSecretKey `yaml:"secretKeyRef"`
	}
	k8sSecretKey struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	}
	k8sPort struct {
		ContainerPort int    `yaml:"containerPort"`
		Name          string `yaml:"name"`
	}
)

// k8s is a LeaderWorkerSet manifest: one group of size ranks, the leader
// (LWS_WORKER_INDEX 0) the coordinator, the workers the stage devices;
// each rank finds the leader at LWS_LEADER_ADDRESS and the port in
// VDEXEC_RANK_COORDINATOR_PORT. The token comes from a Secret.
func (j *job) k8s() ([]byte, error) {
	secret := j.name + "-token"
	env := []k8sEnv{
		{Name: exec.EnvWorkerToken, ValueFrom: &k8sValueFrom{SecretKeyRef: k8sSecretKey{Name: secret, Key: "token"}}},
		{Name: "VDEXEC_RANK_COORDINATOR_PORT", Value: strconv.Itoa(j.port)},
	}
	// A LeaderWorkerSet restarts a pod whose container exits (and, with
	// RecreateGroupOnPodRestart, the whole group): each rank stays up
	// once done, until the set is deleted, instead of running again.
	cmd := []string{"/bin/sh", "-c", shellLine(j.rank) + `; status=$?; echo "vdexec rank exited with status $status; delete the LeaderWorkerSet when every rank is done"; while :; do sleep 3600; done`}
	ctr := func(name string, ports []k8sPort) k8sContainer {
		return k8sContainer{Name: name, Image: j.image, Command: cmd, Env: env, Ports: ports}
	}
	obj := k8sObject{
		APIVersion: "leaderworkerset.x-k8s.io/v1",
		Kind:       "LeaderWorkerSet",
		Metadata:   k8sMeta{Name: j.name},
		Spec: k8sLWSSpec{
			Replicas:      1,
			StartupPolicy: "LeaderCreated",
			LeaderWorkerTemplate: k8sLWTemplate{
				Size:           j.ranks,
				RestartPolicy:  "RecreateGroupOnPodRestart",
				LeaderTemplate: k8sPodTmpl{Spec: k8sPodSpec{Containers: []k8sContainer{ctr("coordinator", []k8sPort{{ContainerPort: j.port, Name: "vdpp"}})}}},
				WorkerTemplate: k8sPodTmpl{Spec: k8sPodSpec{Containers: []k8sContainer{ctr("worker", nil)}}},
			},
		},
	}
	var hostNote []string
	if j.hosts != nil {
		obj.Metadata.Annotations = map[string]string{k8sHostsAnnotation: j.rankHostList()}
		// The coordinator holds each worker to its device's host by the
		// worker's hostname or address: on the node's network, a pod has
		// the node's (a pod's own hostname is the pod's name).
		for _, t := range []*k8sPodTmpl{&obj.Spec.LeaderWorkerTemplate.LeaderTemplate, &obj.Spec.LeaderWorkerTemplate.WorkerTemplate} {
			t.Spec.HostNetwork, t.Spec.DNSPolicy = true, "ClusterFirstWithHostNet"
		}
		// The leader is rank 0; the workers share one template, which
		// can name one node only.
		pin := func(t *k8sPodTmpl, h string) {
			t.Spec.NodeSelector = map[string]string{k8sHostLabel: strings.ToLower(h)}
		}
		pin(&obj.Spec.LeaderWorkerTemplate.LeaderTemplate, j.hosts[0])
		workers := distinctHosts(j.hosts[1:])
		if len(workers) == 1 {
			pin(&obj.Spec.LeaderWorkerTemplate.WorkerTemplate, workers[0])
			hostNote = append(hostNote, fmt.Sprintf("# The plan's devices name their hosts: the leader (rank 0) runs on node %s and every worker on node %s (nodeSelector %s).", j.hosts[0], workers[0], k8sHostLabel))
		} else {
			hostNote = append(hostNote,
				fmt.Sprintf("# The plan's devices name their hosts (annotation %s: rank=host): the leader (rank 0)", k8sHostsAnnotation),
				fmt.Sprintf("# runs on node %s (nodeSelector %s), but a LeaderWorkerSet's workers share one", j.hosts[0], k8sHostLabel),
				"# pod template, which cannot place each rank on its own node: place them with your cluster's",
				"# affinity rules, or use vdexec launch --emit slurm or torchrun, which do.")
		}
		hostNote = append(hostNote,
			"# The pods use the node's network (hostNetwork: true), so a worker's hostname and address are",
			"# its node's, which the coordinator checks against its device's host; the coordinator's port",
			fmt.Sprintf("# (%d) and the workers' data ports are then the node's.", j.port))
	}
	var y bytes.Buffer
	enc := yaml.NewEncoder(&y)
	enc.SetIndent(2)
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("launch: k8s manifest: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(j.header(emitK8s))
	fmt.Fprintf(&b, "# The token comes from the Secret %s; create it first:\n", secret)
	fmt.Fprintf(&b, "#   kubectl create secret generic %s --from-literal=token=$(openssl rand -hex 32)\n", secret)
	b.WriteString("# Mount a shared volume (ReadWriteMany) at the --out folder's parent in both templates.\n")
	b.WriteString("# A LeaderWorkerSet restarts pods that exit, so each rank stays up once done: when the\n")
	fmt.Fprintf(&b, "# coordinator's log (kubectl logs %s-0) shows the metrics, kubectl delete leaderworkerset %s.\n", j.name, j.name)
	for _, l := range hostNote {
		b.WriteString(l + "\n")
	}
	b.Write(y.Bytes())
	return b.Bytes(), nil
}
