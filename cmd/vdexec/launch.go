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
			"else tcp; NCCL is loaded by the ranks, not checked where the job is written).",
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
	fmt.Fprintf(&b, "#   rank 0: the coordinator (vdexec run --external-workers)\n")
	for i, d := range j.devices {
		fmt.Fprintf(&b, "#   rank %d: the worker of device %s\n", i+1, d)
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
	b.WriteString("# Add the #SBATCH lines your cluster needs (--nodes, --partition, --gpus-per-task, --time).\n")
	b.WriteString(j.header(emitSlurm))
	b.WriteString("# Submit: export VDPP_WORKER_TOKEN=$(openssl rand -hex 32); sbatch THIS_FILE\n")
	b.WriteString("set -euo pipefail\n")
	b.WriteString(tokenCheck)
	b.WriteString("# Task 0 (the coordinator) runs on the first node of the allocation.\n")
	b.WriteString("MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\n")
	fmt.Fprintf(&b, "export MASTER_ADDR\nexport MASTER_PORT=%d\n", j.port)
	fmt.Fprintf(&b, "srun --ntasks=%d --kill-on-bad-exit=1 %s\n", j.ranks, shellLine(j.rank))
	return b.Bytes()
}

// torchrun is a script that starts every rank on this node with torchrun
// --no-python (it runs vdexec itself, not a Python script), which gives
// each process RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
func (j *job) torchrun() []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/bash\n")
	b.WriteString(j.header(emitTorchrun))
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
		Name string `yaml:"name"`
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
		Containers []k8sContainer `yaml:"containers"`
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
	b.Write(y.Bytes())
	return b.Bytes(), nil
}
