package main

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// emitJob runs vdexec launch for the tiny plan with transport tcp and
// returns the job file's path and text.
func emitJob(t *testing.T, emit string, extra ...string) (string, string) {
	t.Helper()
	p := writePlan(t, "transport: inproc", "transport: tcp")
	out := filepath.Join(t.TempDir(), "job-"+emit)
	args := append([]string{"launch", p, "--emit", emit, "-o", out, "--samples", "4"}, extra...)
	if _, errOut, err := runApp(t, args...); err != nil {
		t.Fatalf("launch --emit %s: %v\n%s", emit, err, errOut)
	} else if !strings.Contains(errOut, "3 ranks (the coordinator and cpu0, cpu1)") {
		t.Errorf("launch --emit %s said %q", emit, errOut)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, string(data)
}

// fakeTools writes scripts named after the launcher's tools into a
// folder: each records its arguments and the variables the job sets
// (MASTER_ADDR, MASTER_PORT, VDPP_WORKER_TOKEN) in DIR/NAME.log; scontrol
// lists two nodes.
func fakeTools(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		script := "#!/bin/sh\n"
		if n == "scontrol" {
			script += "printf 'node-a\\nnode-b\\n'\n"
		} else {
			script += `{ echo "args: $*"; echo "MASTER_ADDR=${MASTER_ADDR:-}"; echo "MASTER_PORT=${MASTER_PORT:-}"; echo "token=${VDPP_WORKER_TOKEN:+set}"; } > "$(dirname "$0")/` + n + ".log\"\n"
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runJob runs a job script with bash, the fake tools first on PATH and
// env, and returns what the named tool recorded.
func runJob(t *testing.T, path, tools, tool string, env ...string) map[string]string {
	t.Helper()
	cmd := osexec.Command("bash", path)
	cmd.Env = append([]string{"PATH=" + tools + ":" + os.Getenv("PATH"), "SLURM_JOB_NODELIST=node-[a-b]"}, env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash %s: %v\n%s", filepath.Base(path), err, out)
	}
	data, err := os.ReadFile(filepath.Join(tools, tool+".log"))
	if err != nil {
		t.Fatalf("%s was not run: %v\n%s", tool, err, out)
	}
	rec := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			rec[k] = v
		} else if k, v, ok := strings.Cut(line, "="); ok {
			rec[k] = v
		}
	}
	return rec
}

// bashSyntax checks a script with bash -n.
func bashSyntax(t *testing.T, path string) {
	t.Helper()
	if out, err := osexec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", filepath.Base(path), err, out)
	}
}

// checkRanks checks that ranks 1..n-1 started with env(r) find their
// device in plan order and the coordinator at want, and that rank 0 is
// the coordinator.
func checkRanks(t *testing.T, n int, env func(r int) []string, wantAddr string, port int) {
	t.Helper()
	p := tinyTCPPlan(t)
	devs := []string{"cpu0", "cpu1"}
	for r := 0; r < n; r++ {
		getenv := envOf(env(r)...)
		dev, err := workerDevice(getenv, p, "", "--device")
		if r == 0 {
			if err == nil || !strings.Contains(err.Error(), "is the coordinator's rank") {
				t.Errorf("rank 0: device %q, %v; want the coordinator's rank", dev, err)
			}
			continue
		}
		if err != nil || dev != devs[r-1] {
			t.Errorf("rank %d: device %q, %v; want %s", r, dev, err, devs[r-1])
		}
		addr, _, ok, err := coordinatorFromEnv(getenv, port)
		if !ok || err != nil || addr != wantAddr {
			t.Errorf("rank %d: coordinator %q, %v, %v; want %s", r, addr, ok, err, wantAddr)
		}
	}
}

// rankLine checks that the job runs `vdexec rank PLAN` with the run's
// flags and no token.
func rankLine(t *testing.T, line string) {
	t.Helper()
	for _, want := range []string{"vdexec rank ", "plan.yaml --out out/run --timeout 10m0s --samples=4"} {
		if !strings.Contains(line, want) {
			t.Errorf("the rank command %q lacks %q", line, want)
		}
	}
}

// TestLaunchSlurm: the sbatch script passes bash -n, asks for one task
// per rank, refuses to start without a token, and (run with fake srun and
// scontrol) exports the first node as MASTER_ADDR for srun's tasks, whose
// SLURM_PROCID then gives each its device and the coordinator.
func TestLaunchSlurm(t *testing.T) {
	path, text := emitJob(t, "slurm")
	bashSyntax(t, path)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("the script is not executable: %v %v", fi.Mode(), err)
	}
	for _, want := range []string{"#SBATCH --ntasks=3", "scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1", "export MASTER_PORT=29500"} {
		if !strings.Contains(text, want) {
			t.Errorf("sbatch script lacks %q:\n%s", want, text)
		}
	}
	tools := fakeTools(t, "srun", "scontrol")
	// Without a token the job stops before srun.
	cmd := osexec.Command("bash", path)
	cmd.Env = []string{"PATH=" + tools + ":" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "set VDPP_WORKER_TOKEN") {
		t.Errorf("the job without a token: %v\n%s", err, out)
	}
	rec := runJob(t, path, tools, "srun", "VDPP_WORKER_TOKEN=x")
	if rec["MASTER_ADDR"] != "node-a" || rec["MASTER_PORT"] != "29500" || rec["token"] != "set" {
		t.Errorf("srun got %v", rec)
	}
	args := rec["args"]
	if !strings.HasPrefix(args, "--ntasks=3 --kill-on-bad-exit=1 ") {
		t.Errorf("srun %s", args)
	}
	rankLine(t, args)
	checkRanks(t, 3, func(r int) []string {
		return []string{"SLURM_PROCID=" + strconv.Itoa(r), "SLURM_NTASKS=3", "MASTER_ADDR=" + rec["MASTER_ADDR"], "MASTER_PORT=" + rec["MASTER_PORT"]}
	}, "node-a:29500", defaultCoordinatorPort)
}

// TestLaunchTorchrun: the script passes bash -n and runs torchrun
// --no-python with one process per rank; with the variables torchrun
// gives its processes, each finds its device, and the coordinator is at
// the port after MASTER_PORT (torchrun's own store holds MASTER_PORT).
func TestLaunchTorchrun(t *testing.T) {
	path, _ := emitJob(t, "torchrun", "--coordinator-port", "29400")
	bashSyntax(t, path)
	tools := fakeTools(t, "torchrun")
	rec := runJob(t, path, tools, "torchrun", "VDPP_WORKER_TOKEN=x")
	args := rec["args"]
	m := regexp.MustCompile(`^--nnodes=1 --nproc-per-node=(\d+) --node-rank=0 --master-addr=(\S+) --master-port=(\d+) --no-python (.*)$`).FindStringSubmatch(args)
	if m == nil || m[1] != "3" || m[3] != "29400" {
		t.Fatalf("torchrun %s", args)
	}
	rankLine(t, m[4])
	env := func(r int) []string {
		return []string{"RANK=" + strconv.Itoa(r), "LOCAL_RANK=" + strconv.Itoa(r), "WORLD_SIZE=" + m[1], "MASTER_ADDR=" + m[2], "MASTER_PORT=" + m[3], "TORCHELASTIC_USE_AGENT_STORE=True"}
	}
	checkRanks(t, 3, env, "127.0.0.1:29401", defaultCoordinatorPort)
	if port, _, ok, err := masterPort(envOf(env(0)...)); !ok || err != nil || port != 29401 {
		t.Errorf("rank 0 listens on port %d (%v, %v), want 29401", port, ok, err)
	}
}

// TestLaunchK8s: the manifest is YAML for a LeaderWorkerSet of one group
// of 3 (the leader is rank 0); the token comes from a Secret, not the
// file; with the variables LeaderWorkerSet injects and the manifest's
// port, each rank finds its device and the leader.
func TestLaunchK8s(t *testing.T) {
	_, text := emitJob(t, "k8s", "--image", "registry.example/vdpp:1")
	var m struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct{ Name string }
		Spec       struct {
			Replicas             int
			LeaderWorkerTemplate struct {
				Size           int
				LeaderTemplate struct{ Spec k8sPodSpec } `yaml:"leaderTemplate"`
				WorkerTemplate struct{ Spec k8sPodSpec } `yaml:"workerTemplate"`
			} `yaml:"leaderWorkerTemplate"`
		}
	}
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("manifest: %v\n%s", err, text)
	}
	lwt := m.Spec.LeaderWorkerTemplate
	if m.APIVersion != "leaderworkerset.x-k8s.io/v1" || m.Kind != "LeaderWorkerSet" || m.Metadata.Name != "tiny-cpu-2stage" || m.Spec.Replicas != 1 || lwt.Size != 3 {
		t.Fatalf("manifest: %+v", m)
	}
	for _, pod := range []k8sPodSpec{lwt.LeaderTemplate.Spec, lwt.WorkerTemplate.Spec} {
		if len(pod.Containers) != 1 {
			t.Fatalf("pod with %d containers", len(pod.Containers))
		}
		c := pod.Containers[0]
		if c.Image != "registry.example/vdpp:1" || len(c.Command) != 3 || c.Command[0] != "/bin/sh" {
			t.Fatalf("container %+v", c)
		}
		rankLine(t, c.Command[2])
		if out, err := osexec.Command("bash", "-n", "-c", c.Command[2]).CombinedOutput(); err != nil {
			t.Errorf("the container's shell line: %v\n%s", err, out)
		}
		env := map[string]k8sEnv{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		tok := env["VDPP_WORKER_TOKEN"]
		if tok.Value != "" || tok.ValueFrom == nil || tok.ValueFrom.SecretKeyRef.Name != "tiny-cpu-2stage-token" {
			t.Errorf("the token is not from the Secret: %+v", tok)
		}
		port, err := strconv.Atoi(env["VDEXEC_RANK_COORDINATOR_PORT"].Value)
		if err != nil || port != 29500 {
			t.Errorf("coordinator port %q", env["VDEXEC_RANK_COORDINATOR_PORT"].Value)
		}
		checkRanks(t, lwt.Size, func(r int) []string {
			return []string{"LWS_WORKER_INDEX=" + strconv.Itoa(r), "LWS_GROUP_SIZE=" + strconv.Itoa(lwt.Size), "LWS_LEADER_ADDRESS=tiny-cpu-2stage-0.tiny-cpu-2stage.default"}
		}, "tiny-cpu-2stage-0.tiny-cpu-2stage.default:29500", port)
	}
	if !strings.Contains(text, "kubectl create secret generic tiny-cpu-2stage-token") {
		t.Errorf("the manifest does not say how to make the Secret:\n%s", text)
	}
}

// TestLaunchStdoutAndReplace: without -o the job goes to stdout; an
// existing file is replaced only with --replace.
func TestLaunchStdoutAndReplace(t *testing.T) {
	p := writePlan(t, "transport: inproc", "transport: tcp")
	out, _, err := runApp(t, "launch", p, "--emit", "torchrun", "--timeout", "90s")
	if err != nil || !strings.HasPrefix(out, "#!/bin/bash\n") || !strings.Contains(out, "--timeout 1m30s") {
		t.Fatalf("stdout %q, %v", out, err)
	}
	file := filepath.Join(t.TempDir(), "job.sh")
	if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runApp(t, "launch", p, "--emit", "slurm", "-o", file); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Errorf("an existing file: %v", err)
	}
	if _, _, err := runApp(t, "launch", p, "--emit", "slurm", "-o", file, "--replace"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(file); !strings.HasPrefix(string(data), "#!/bin/bash\n#SBATCH") {
		t.Errorf("not replaced: %q", data)
	}
}
