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

	"github.com/vdpp/vdpp/plan"
)

// hostsPlan writes the tiny plan with transport tcp and one device per
// host given, in order (cpu0 on hosts[0], ...), and returns its path and
// the loaded plan.
func hostsPlan(t *testing.T, hosts ...string) (string, *plan.Plan) {
	t.Helper()
	var devs strings.Builder
	for i, h := range hosts {
		host := ""
		if h != "" {
			host = ", host: " + h
		}
		devs.WriteString("  - {name: cpu" + strconv.Itoa(i) + ", kind: cpu, threads: 1, provider: cpu" + host + "}\n")
	}
	path := writePlan(t, "transport: inproc", "transport: tcp",
		"  - {name: cpu0, kind: cpu, threads: 1, provider: cpu}\n  - {name: cpu1, kind: cpu, threads: 1, provider: cpu}\n", devs.String())
	p, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, p
}

// launchHosts runs vdexec launch for the plan and returns the job file's
// text (and its path), or the error.
func launchHosts(t *testing.T, planPath, emit string) (string, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "job-"+emit)
	_, errOut, err := runApp(t, "launch", planPath, "--emit", emit, "-o", out, "--samples", "4")
	if err != nil {
		return "", out, err
	}
	data, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("%v\n%s", rerr, errOut)
	}
	return string(data), out, nil
}

// rankDeviceHost is the host of the device that rank r ≥ 1 runs when its
// launcher's variables are env, as vdexec rank finds it.
func rankDeviceHost(t *testing.T, p *plan.Plan, env ...string) string {
	t.Helper()
	dev, err := workerDevice(envOf(env...), p, "", "--device")
	if err != nil {
		t.Fatalf("%v: %v", env, err)
	}
	for _, d := range p.Devices {
		if d.Name == dev {
			return d.Host
		}
	}
	t.Fatalf("%v: device %s is not in the plan", env, dev)
	return ""
}

// TestLaunchSlurmHosts: where the devices name hosts, the sbatch script
// asks for those nodes and places task r on the host of rank r's device
// (SLURM_HOSTFILE in rank order, --distribution=arbitrary), the
// coordinator on rank 1's host, which is MASTER_ADDR. Run with a fake
// srun, every rank's device is on the host its task was placed on; the
// host file is removed after.
func TestLaunchSlurmHosts(t *testing.T) {
	path, p := hostsPlan(t, "node-a", "node-b", "node-a")
	text, job, err := launchHosts(t, path, emitSlurm)
	if err != nil {
		t.Fatal(err)
	}
	bashSyntax(t, job)
	for _, want := range []string{"#SBATCH --ntasks=4\n", "#SBATCH --nodes=2\n", "#SBATCH --nodelist=node-a,node-b\n",
		"#   rank 0: the coordinator (vdexec run --external-workers) on host node-a\n", "#   rank 2: the worker of device cpu1 on host node-b\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("sbatch script lacks %q:\n%s", want, text)
		}
	}
	tools := t.TempDir()
	srun := `#!/bin/sh
{ echo "args: $*"; echo "MASTER_ADDR=${MASTER_ADDR:-}"; echo "MASTER_PORT=${MASTER_PORT:-}"; echo "hostfile=${SLURM_HOSTFILE:-}"; } > "$(dirname "$0")/srun.log"
cat "$SLURM_HOSTFILE" > "$(dirname "$0")/hosts.log"
`
	if err := os.WriteFile(filepath.Join(tools, "srun"), []byte(srun), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := runJob(t, job, tools, "srun", "VDPP_WORKER_TOKEN=x", "TMPDIR="+t.TempDir())
	if rec["MASTER_ADDR"] != "node-a" || rec["MASTER_PORT"] != "29500" {
		t.Errorf("srun got %v", rec)
	}
	if !strings.HasPrefix(rec["args"], "--ntasks=4 --kill-on-bad-exit=1 --distribution=arbitrary ") {
		t.Errorf("srun %s", rec["args"])
	}
	if _, err := os.Stat(rec["hostfile"]); rec["hostfile"] == "" || !os.IsNotExist(err) {
		t.Errorf("the host file %q is left behind (%v)", rec["hostfile"], err)
	}
	data, err := os.ReadFile(filepath.Join(tools, "hosts.log"))
	if err != nil {
		t.Fatal(err)
	}
	placed := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(placed) != 4 || placed[0] != rec["MASTER_ADDR"] {
		t.Fatalf("host file %q: want 4 lines, the first MASTER_ADDR", placed)
	}
	for r := 1; r < 4; r++ {
		if h := rankDeviceHost(t, p, "SLURM_PROCID="+strconv.Itoa(r), "SLURM_NTASKS=4"); h != placed[r] {
			t.Errorf("task %d is placed on %s, but its device is on %s", r, placed[r], h)
		}
	}
}

// TestLaunchTorchrunHosts: where the devices name hosts, the script runs
// on each host as torchrun's node of that host (ranks numbered node by
// node, the coordinator's host node 0), found by the host's name in any
// case, short or dotted, or by its first argument; with the ranks torchrun
// then gives, every rank's device is on the node's host. Hosts whose
// ranks are not together cannot be numbered so, and are refused.
func TestLaunchTorchrunHosts(t *testing.T) {
	path, p := hostsPlan(t, "node-a", "node-a", "node-b.cluster.local")
	text, job, err := launchHosts(t, path, emitTorchrun)
	if err != nil {
		t.Fatal(err)
	}
	bashSyntax(t, job)
	for _, want := range []string{"#   node-a: torchrun --nnodes=2 --nproc-per-node=3 --node-rank=0 (ranks 0-2)\n",
		"#   node-b.cluster.local: torchrun --nnodes=2 --nproc-per-node=1 --node-rank=1 (rank 3)\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("script lacks %q:\n%s", want, text)
		}
	}
	re := regexp.MustCompile(`^--nnodes=(\d+) --nproc-per-node=(\d+) --node-rank=(\d+) --master-addr=(\S+) --master-port=(\d+) --no-python (.*)$`)
	nodes := map[string]struct{ rank, procs int }{}
	for _, host := range []string{"node-a", "NODE-A.example", "node-b", "node-b.cluster.local"} {
		tools := fakeTools(t, "torchrun")
		cmd := osexec.Command("bash", job, host)
		cmd.Env = []string{"PATH=" + tools + ":" + os.Getenv("PATH"), "VDPP_WORKER_TOKEN=x"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("on %s: %v\n%s", host, err, out)
		}
		data, err := os.ReadFile(filepath.Join(tools, "torchrun.log"))
		if err != nil {
			t.Fatal(err)
		}
		args, _, _ := strings.Cut(strings.TrimPrefix(string(data), "args: "), "\n")
		m := re.FindStringSubmatch(args)
		if m == nil || m[1] != "2" || m[4] != "node-a" || m[5] != "29500" {
			t.Fatalf("on %s: torchrun %s", host, args)
		}
		rankLine(t, m[6])
		rank, _ := strconv.Atoi(m[3])
		procs, _ := strconv.Atoi(m[2])
		nodes[strings.ToLower(strings.SplitN(host, ".", 2)[0])] = struct{ rank, procs int }{rank, procs}
	}
	a, b := nodes["node-a"], nodes["node-b"]
	if a.rank != 0 || b.rank != 1 || a.procs+b.procs != 4 {
		t.Fatalf("nodes %v: want node-a node 0, node-b node 1, 4 ranks", nodes)
	}
	// torchrun numbers the ranks node by node.
	for r := 1; r < 4; r++ {
		want := "node-a"
		if r >= a.procs {
			want = "node-b"
		}
		h := rankDeviceHost(t, p, "RANK="+strconv.Itoa(r), "WORLD_SIZE=4")
		if !(plan.Device{Host: h}).RunsOn(want) {
			t.Errorf("rank %d runs on %s, but its device is on %s", r, want, h)
		}
	}
	// Another host is refused by the script.
	cmd := osexec.Command("bash", job, "node-c")
	cmd.Env = []string{"PATH=" + fakeTools(t, "torchrun") + ":" + os.Getenv("PATH"), "VDPP_WORKER_TOKEN=x"}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "host node-c is none of the plan's hosts (node-a, node-b.cluster.local)") {
		t.Errorf("on node-c: %v\n%s", err, out)
	}

	split, _ := hostsPlan(t, "node-a", "node-b", "node-a")
	if _, _, err := launchHosts(t, split, emitTorchrun); err == nil || !strings.Contains(err.Error(), "host node-a has rank 0 and rank 3 with other hosts' ranks between") {
		t.Errorf("hosts a, b, a: %v", err)
	}
}

// TestLaunchK8sHosts: the manifest still parses; it names every rank's
// host in an annotation, pins the leader (rank 0) to its node, and the
// workers too when they share one; where they do not, it says so.
func TestLaunchK8sHosts(t *testing.T) {
	type manifest struct {
		Metadata struct {
			Name        string
			Annotations map[string]string
		}
		Spec struct {
			LeaderWorkerTemplate struct {
				Size           int
				LeaderTemplate struct{ Spec k8sPodSpec } `yaml:"leaderTemplate"`
				WorkerTemplate struct{ Spec k8sPodSpec } `yaml:"workerTemplate"`
			} `yaml:"leaderWorkerTemplate"`
		}
	}
	for _, tc := range []struct {
		hosts              []string
		annotation, leader string
		worker             string // "" for none
		note               string
	}{
		{[]string{"node-a", "node-b", "node-b"}, "0=node-a,1=node-a,2=node-b,3=node-b", "node-a", "", "cannot place each rank on its own node"},
		{[]string{"Node-B", "node-b"}, "0=Node-B,1=Node-B,2=node-b", "node-b", "node-b", "every worker on node Node-B"},
	} {
		path, _ := hostsPlan(t, tc.hosts...)
		text, _, err := launchHosts(t, path, emitK8s)
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			t.Fatalf("manifest: %v\n%s", err, text)
		}
		lwt := m.Spec.LeaderWorkerTemplate
		if lwt.Size != len(tc.hosts)+1 || m.Metadata.Annotations[k8sHostsAnnotation] != tc.annotation {
			t.Errorf("%v: size %d, annotations %v; want %d, %s", tc.hosts, lwt.Size, m.Metadata.Annotations, len(tc.hosts)+1, tc.annotation)
		}
		if got := lwt.LeaderTemplate.Spec.NodeSelector[k8sHostLabel]; got != tc.leader {
			t.Errorf("%v: leader on %q, want %q", tc.hosts, got, tc.leader)
		}
		if got := lwt.WorkerTemplate.Spec.NodeSelector[k8sHostLabel]; got != tc.worker {
			t.Errorf("%v: workers on %q, want %q", tc.hosts, got, tc.worker)
		}
		if !strings.Contains(text, tc.note) || !strings.Contains(text, "hostNetwork: true") {
			t.Errorf("%v: the manifest does not say %q:\n%s", tc.hosts, tc.note, text)
		}
		// On the node's network a worker's hostname is its node's, which
		// the coordinator checks against its device's host.
		for _, ps := range []k8sPodSpec{lwt.LeaderTemplate.Spec, lwt.WorkerTemplate.Spec} {
			if !ps.HostNetwork || ps.DNSPolicy != "ClusterFirstWithHostNet" {
				t.Errorf("%v: pod spec hostNetwork %v, dnsPolicy %q; want true, ClusterFirstWithHostNet", tc.hosts, ps.HostNetwork, ps.DNSPolicy)
			}
		}
	}
	// Without hosts, nothing of it.
	path, _ := hostsPlan(t, "", "")
	text, _, err := launchHosts(t, path, emitK8s)
	if err != nil || strings.Contains(text, "nodeSelector") || strings.Contains(text, k8sHostsAnnotation) || strings.Contains(text, "hostNetwork") {
		t.Errorf("no hosts: %v\n%s", err, text)
	}
}

// Devices that name hosts and devices that do not cannot be placed
// together; Slurm names nodes, not addresses. Both are usage errors.
func TestLaunchHostsRefused(t *testing.T) {
	path, _ := hostsPlan(t, "node-a", "")
	for _, emit := range []string{emitSlurm, emitK8s, emitTorchrun} {
		_, _, err := launchHosts(t, path, emit)
		if err == nil || !strings.Contains(err.Error(), "devices cpu0 (node-a) name their hosts but cpu1 do not: name a host for every stage device") {
			t.Errorf("%s, one device without a host: %v", emit, err)
		}
		if ec, ok := err.(interface{ ExitCode() int }); !ok || ec.ExitCode() != 2 {
			t.Errorf("%s: %v is not a usage error", emit, err)
		}
	}
	path, _ = hostsPlan(t, "node-a", "10.0.0.7")
	if _, _, err := launchHosts(t, path, emitSlurm); err == nil || !strings.Contains(err.Error(), "device cpu1 names the address 10.0.0.7") {
		t.Errorf("slurm with an address: %v", err)
	}
	if _, _, err := launchHosts(t, path, emitTorchrun); err != nil {
		t.Errorf("torchrun with an address: %v", err)
	}
}
