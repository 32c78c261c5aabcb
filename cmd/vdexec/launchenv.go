package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/plan"
)

// Ranks under a cluster's launcher. A run of a plan with K stage devices
// has K+1 ranks: rank 0 is the coordinator (`vdexec run
// --external-workers`), rank r ≥ 1 the worker of the r-th stage device in
// plan order (pipelines in order, their stages in order). The launchers
// give each process its rank, the number of ranks and the coordinator's
// address in these variables.
const (
	envRank       = "RANK"        // torchrun: the global rank
	envWorldSize  = "WORLD_SIZE"  // torchrun: the number of ranks
	envMasterAddr = "MASTER_ADDR" // torchrun: rank 0's host
	envMasterPort = "MASTER_PORT" // torchrun: rank 0's port

	envSlurmProcID = "SLURM_PROCID" // srun: the task's rank
	envSlurmNTasks = "SLURM_NTASKS" // srun: the number of tasks

	envLWSIndex  = "LWS_WORKER_INDEX"   // LeaderWorkerSet: 0 the leader, 1.. the workers
	envLWSSize   = "LWS_GROUP_SIZE"     // LeaderWorkerSet: the group's size
	envLWSLeader = "LWS_LEADER_ADDRESS" // LeaderWorkerSet: the leader pod's DNS name
)

// defaultCoordinatorPort is the coordinator's port where the launcher
// names no port (LeaderWorkerSet, or `vdexec rank` without MASTER_PORT):
// torchrun's default MASTER_PORT.
const defaultCoordinatorPort = 29500

// rankSource is one launcher's rank and size variables.
type rankSource struct {
	launcher, rank, size string
}

// rankSources are looked at in this order; the first whose rank is set
// wins. torchrun comes first because it is often started by the others
// (one torchrun per node under srun or in a pod), and its RANK is then
// the process's own while SLURM_PROCID or LWS_WORKER_INDEX number nodes.
var rankSources = []rankSource{
	{"torchrun", envRank, envWorldSize},
	{"LeaderWorkerSet", envLWSIndex, envLWSSize},
	{"Slurm", envSlurmProcID, envSlurmNTasks},
}

// launchRank is a process's rank as its launcher gave it.
type launchRank struct {
	rank int
	from string // "RANK (torchrun)"
}

// stageDevices lists the plan's stage devices in plan order: rank r ≥ 1
// runs stageDevices(p)[r-1].
func stageDevices(p *plan.Plan) []string {
	var out []string
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			out = append(out, st.Device)
		}
	}
	return out
}

// rankFromEnv reads the process's rank from the first launcher variable
// that is set (ok false: none is) and checks it, and that launcher's
// number of ranks where set, against the plan's ranks (stage devices + 1).
func rankFromEnv(getenv func(string) string, p *plan.Plan) (launchRank, bool, error) {
	devs := stageDevices(p)
	ranks := len(devs) + 1
	for _, s := range rankSources {
		v := getenv(s.rank)
		if v == "" {
			continue
		}
		r := launchRank{from: fmt.Sprintf("%s (%s)", s.rank, s.launcher)}
		n, err := strconv.Atoi(v)
		if err != nil || !isDigits(v) {
			return r, true, fmt.Errorf("%s=%q: want a rank, 0 to %d", r.from, v, ranks-1)
		}
		if sz := getenv(s.size); sz != "" {
			if m, err := strconv.Atoi(sz); err != nil || !isDigits(sz) || m != ranks {
				return r, true, fmt.Errorf("%s=%q: plan %s needs %d ranks (1 coordinator + %d stage devices: %s); start the job with %d", s.size, sz, p.Name, ranks, len(devs), strings.Join(devs, ", "), ranks)
			}
		}
		if n >= ranks {
			return r, true, fmt.Errorf("%s=%d is out of range: plan %s has %d ranks, 0 (the coordinator) to %d (its stage devices %s in plan order)", r.from, n, p.Name, ranks, ranks-1, strings.Join(devs, ", "))
		}
		r.rank = n
		return r, true, nil
	}
	return launchRank{}, false, nil
}

// workerDevice is the device a worker runs: --device (flagDev, "" if not
// given) or its launcher's rank; both must agree, and rank 0 is the
// coordinator's, not a worker's.
func workerDevice(getenv func(string) string, p *plan.Plan, flagDev, flagName string) (string, error) {
	r, ok, err := rankFromEnv(getenv, p)
	if err != nil {
		return "", err
	}
	devs := stageDevices(p)
	switch {
	case !ok && flagDev == "":
		return "", fmt.Errorf("no device: give %s NAME, or start the worker under a launcher that sets its rank (%s, %s or %s)", flagName, envRank, envSlurmProcID, envLWSIndex)
	case !ok:
		return flagDev, nil
	case r.rank == 0:
		return "", fmt.Errorf("%s=0 is the coordinator's rank: run `vdexec run --external-workers` (or `vdexec rank`) there; workers are ranks 1 to %d", r.from, len(devs))
	case flagDev != "" && flagDev != devs[r.rank-1]:
		return "", fmt.Errorf("%s %q contradicts %s=%d, which is device %s in plan %s", flagName, flagDev, r.from, r.rank, devs[r.rank-1], p.Name)
	}
	return devs[r.rank-1], nil
}

// envAgentStore is set to "True" by torchrun in the processes it starts:
// its agent holds a store at MASTER_ADDR:MASTER_PORT, so the coordinator
// takes the next port.
const envAgentStore = "TORCHELASTIC_USE_AGENT_STORE"

// masterPort is the coordinator's port from MASTER_PORT (ok false: not
// set): MASTER_PORT itself, or MASTER_PORT+1 under torchrun, whose agent
// listens on MASTER_PORT.
func masterPort(getenv func(string) string) (port int, from string, ok bool, err error) {
	mp := getenv(envMasterPort)
	if mp == "" {
		return 0, "", false, nil
	}
	n, err := strconv.Atoi(mp)
	if err != nil || !isDigits(mp) || n < 1 || n > 65535 {
		return 0, "", true, fmt.Errorf("%s=%q: want a port from 1 to 65535", envMasterPort, mp)
	}
	if getenv(envAgentStore) == "True" {
		if n == 65535 {
			return 0, "", true, fmt.Errorf("%s=%d: under torchrun the coordinator takes the port after %s (torchrun's own store listens there), and there is none", envMasterPort, n, envMasterPort)
		}
		return n + 1, envMasterPort + "+1 (torchrun's store holds " + envMasterPort + ")", true, nil
	}
	return n, envMasterPort, true, nil
}

// coordinatorFromEnv is the coordinator's address from a launcher's
// variables: MASTER_ADDR and MASTER_PORT (torchrun, or an sbatch script
// that sets them; see masterPort), else LWS_LEADER_ADDRESS:port. ok
// false: none is set.
func coordinatorFromEnv(getenv func(string) string, port int) (addr, from string, ok bool, err error) {
	ma := getenv(envMasterAddr)
	mp, pfrom, pok, err := masterPort(getenv)
	switch {
	case err != nil:
		return "", "", true, err
	case ma != "" && pok:
		return net.JoinHostPort(ma, strconv.Itoa(mp)), envMasterAddr + ":" + pfrom, true, nil
	case ma != "" || pok:
		return "", "", true, fmt.Errorf("%s and %s go together (torchrun sets both); only one is set", envMasterAddr, envMasterPort)
	case getenv(envLWSLeader) != "":
		return net.JoinHostPort(getenv(envLWSLeader), strconv.Itoa(port)), fmt.Sprintf("%s:%d", envLWSLeader, port), true, nil
	}
	return "", "", false, nil
}

// minTokenLen bounds a user's token from below: a short one is guessable.
const minTokenLen = 16

// userToken is the run's token that the user gives: the first line of
// file (trimmed) when file is not "", else $VDPP_WORKER_TOKEN. The token
// itself never appears in an error.
func userToken(getenv func(string) string, file, fileFlag string) (string, error) {
	tok, from := getenv(exec.EnvWorkerToken), "$"+exec.EnvWorkerToken
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fileFlag, err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		tok, from = strings.TrimSpace(line), fileFlag+" "+file
	}
	switch {
	case tok == "":
		return "", fmt.Errorf("no token: workers started by someone else authenticate with a shared secret; give the same one to the coordinator and every worker in $%s or a file named by --%s (e.g. `openssl rand -hex 32`)", exec.EnvWorkerToken, flagTokenFile)
	case len(tok) < minTokenLen:
		return "", fmt.Errorf("the token in %s has %d characters, want at least %d (e.g. `openssl rand -hex 32`)", from, len(tok), minTokenLen)
	case strings.ContainsAny(tok, " \t\r"):
		return "", errors.New("the token in " + from + " has blanks inside: want one word")
	}
	return tok, nil
}
