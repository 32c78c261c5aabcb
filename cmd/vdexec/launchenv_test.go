package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// envOf is a getenv over a fixed set of KEY=VALUE pairs.
func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// tinyTCPPlan is the tiny plan with transport tcp: 3 ranks, the
// coordinator and cpu0, cpu1.
func tinyTCPPlan(t *testing.T) *plan.Plan {
	t.Helper()
	p, err := plan.Load(writePlan(t, "transport: inproc", "transport: tcp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stageDevices(p)) != 2 {
		t.Fatalf("tiny plan has stage devices %v, want 2", stageDevices(p))
	}
	return p
}

// TestWorkerDeviceFromEnv: each launcher's variables give the worker's
// device (rank r ≥ 1: the r-th stage device in plan order); missing,
// malformed, out-of-range and contradicting values are errors that say
// which variable and what the plan wants.
func TestWorkerDeviceFromEnv(t *testing.T) {
	p := tinyTCPPlan(t) // cpu0, cpu1: ranks 0 (coordinator), 1, 2
	cases := []struct {
		name, flag string
		env        []string
		want       string // the device, or "error: fragments|..."
	}{
		{"torchrun rank 1", "", []string{"RANK=1", "WORLD_SIZE=3", "LOCAL_RANK=1"}, "cpu0"},
		{"torchrun rank 2", "", []string{"RANK=2", "WORLD_SIZE=3"}, "cpu1"},
		{"slurm", "", []string{"SLURM_PROCID=2", "SLURM_NTASKS=3"}, "cpu1"},
		{"slurm without ntasks", "", []string{"SLURM_PROCID=1"}, "cpu0"},
		{"lws", "", []string{"LWS_WORKER_INDEX=1", "LWS_GROUP_SIZE=3", "LWS_LEADER_ADDRESS=job-0.job.default"}, "cpu0"},
		{"torchrun inside srun: RANK wins", "", []string{"RANK=2", "WORLD_SIZE=3", "SLURM_PROCID=0", "SLURM_NTASKS=1"}, "cpu1"},
		{"torchrun inside lws: RANK wins", "", []string{"RANK=1", "LWS_WORKER_INDEX=0"}, "cpu0"},
		{"flag only", "cpu1", nil, "cpu1"},
		{"flag agrees", "cpu1", []string{"RANK=2"}, "cpu1"},
		{"nothing", "", nil, "error: no device|--device NAME|RANK, SLURM_PROCID or LWS_WORKER_INDEX"},
		{"flag contradicts", "cpu0", []string{"SLURM_PROCID=2"}, `error: --device "cpu0" contradicts SLURM_PROCID (Slurm)=2, which is device cpu1`},
		{"rank 0", "", []string{"RANK=0", "WORLD_SIZE=3"}, "error: RANK (torchrun)=0 is the coordinator's rank|vdexec run --external-workers|ranks 1 to 2"},
		{"out of range", "", []string{"LWS_WORKER_INDEX=3"}, "error: LWS_WORKER_INDEX (LeaderWorkerSet)=3 is out of range|3 ranks, 0 (the coordinator) to 2|cpu0, cpu1"},
		{"not a number", "", []string{"RANK=one"}, `error: RANK (torchrun)="one": want a rank, 0 to 2`},
		{"negative", "", []string{"SLURM_PROCID=-1"}, `error: SLURM_PROCID (Slurm)="-1"`},
		{"plus sign", "", []string{"RANK=+1"}, `error: RANK (torchrun)="+1"`},
		{"world size differs", "", []string{"RANK=1", "WORLD_SIZE=2"}, `error: WORLD_SIZE="2": plan tiny-cpu-2stage needs 3 ranks (1 coordinator + 2 stage devices: cpu0, cpu1); start the job with 3`},
		{"ntasks differs", "", []string{"SLURM_PROCID=1", "SLURM_NTASKS=8"}, `error: SLURM_NTASKS="8": plan tiny-cpu-2stage needs 3 ranks`},
		{"group size differs", "", []string{"LWS_WORKER_INDEX=1", "LWS_GROUP_SIZE=4"}, `error: LWS_GROUP_SIZE="4"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := workerDevice(envOf(tc.env...), p, tc.flag, "--device")
			if frags, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil {
					t.Fatalf("device %q, want an error", got)
				}
				for _, f := range strings.Split(frags, "|") {
					if !strings.Contains(err.Error(), f) {
						t.Errorf("error %q lacks %q", err, f)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("device %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestCoordinatorFromEnv: MASTER_ADDR:MASTER_PORT (torchrun; the sbatch
// script sets them too), else LWS_LEADER_ADDRESS with the port flag;
// half of torchrun's pair or a bad port is an error.
func TestCoordinatorFromEnv(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		want string // address, "none", or "error: fragment"
	}{
		{"torchrun", []string{"MASTER_ADDR=node1", "MASTER_PORT=29400"}, "node1:29400"},
		{"under torchrun: the port after its store's", []string{"MASTER_ADDR=node1", "MASTER_PORT=29500", "TORCHELASTIC_USE_AGENT_STORE=True"}, "node1:29501"},
		{"slurm script's MASTER_PORT as it is", []string{"MASTER_ADDR=node1", "MASTER_PORT=29500", "SLURM_PROCID=1"}, "node1:29500"},
		{"torchrun's last port", []string{"MASTER_ADDR=node1", "MASTER_PORT=65535", "TORCHELASTIC_USE_AGENT_STORE=True"}, "error: there is none"},
		{"torchrun ipv6", []string{"MASTER_ADDR=fd00::1", "MASTER_PORT=29400"}, "[fd00::1]:29400"},
		{"lws", []string{"LWS_LEADER_ADDRESS=vdpp-0.vdpp.default"}, "vdpp-0.vdpp.default:29500"},
		{"torchrun before lws", []string{"MASTER_ADDR=a", "MASTER_PORT=1", "LWS_LEADER_ADDRESS=b"}, "a:1"},
		{"none", nil, "none"},
		{"addr only", []string{"MASTER_ADDR=node1"}, "error: MASTER_ADDR and MASTER_PORT go together"},
		{"port only", []string{"MASTER_PORT=29500"}, "error: only one is set"},
		{"port zero", []string{"MASTER_ADDR=node1", "MASTER_PORT=0"}, `error: MASTER_PORT="0": want a port from 1 to 65535`},
		{"port word", []string{"MASTER_ADDR=node1", "MASTER_PORT=http"}, `error: MASTER_PORT="http"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, _, ok, err := coordinatorFromEnv(envOf(tc.env...), defaultCoordinatorPort)
			switch frag, isErr := strings.CutPrefix(tc.want, "error: "); {
			case isErr:
				if err == nil || !strings.Contains(err.Error(), frag) {
					t.Errorf("%q, %v; want an error with %q", addr, err, frag)
				}
			case tc.want == "none":
				if ok || err != nil {
					t.Errorf("%q, %v, %v; want none", addr, ok, err)
				}
			case err != nil || addr != tc.want:
				t.Errorf("%q, %v; want %q", addr, err, tc.want)
			}
		})
	}
}

// TestUserToken: the token file's first line, else the variable; none,
// a short one or one with blanks inside is refused without printing it.
func TestUserToken(t *testing.T) {
	dir := t.TempDir()
	file := func(s string) string {
		path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+s[:min(4, len(s))])
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := strings.Repeat("ab", 16)
	if tok, err := userToken(envOf("VDPP_WORKER_TOKEN="+good), "", "--token-file"); err != nil || tok != good {
		t.Errorf("from the variable: %q, %v", tok, err)
	}
	if tok, err := userToken(envOf("VDPP_WORKER_TOKEN=other-token-1234567"), file(good+"\n# comment\n"), "--token-file"); err != nil || tok != good {
		t.Errorf("from the file: %q, %v", tok, err)
	}
	for _, tc := range []struct {
		name, env, file, want string
	}{
		{"none", "", "", "no token"},
		{"short", "VDPP_WORKER_TOKEN=short-secret", "", "has 12 characters, want at least 16"},
		{"empty file", "", file("\n"), "no token"},
		{"blanks", "", file("abcdefgh ijklmnopqrs"), "blanks inside"},
		{"missing file", "", filepath.Join(dir, "none"), "--token-file"},
	} {
		_, err := userToken(envOf(tc.env), tc.file, "--token-file")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "ijklmnop") {
			t.Errorf("%s: %v; want %q, without the token", tc.name, err, tc.want)
		}
	}
}
