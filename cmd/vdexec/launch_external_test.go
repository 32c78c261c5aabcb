package main

import (
	"bytes"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/ort"
)

// syncBuffer is a bytes.Buffer safe for a process's output and a test
// that reads it meanwhile.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// launcherVars are the variables a cluster's launcher sets, removed from
// the environment of the processes these tests start.
var launcherVars = []string{envRank, envWorldSize, envMasterAddr, envMasterPort, envSlurmProcID, envSlurmNTasks,
	envLWSIndex, envLWSSize, envLWSLeader, envAgentStore, "LOCAL_RANK", exec.EnvWorkerToken}

// vdexecProc starts this test binary as vdexec with args, in an
// environment without launcher variables or VDEXEC_ settings, plus env;
// it is killed when the test ends.
func vdexecProc(t *testing.T, env []string, args ...string) (*osexec.Cmd, *syncBuffer) {
	t.Helper()
	return wrappedProc(t, nil, env, args...)
}

// wrappedProc is vdexecProc with the command run by wrap (such as ip
// netns exec NS), when given.
func wrappedProc(t *testing.T, wrap, env []string, args ...string) (*osexec.Cmd, *syncBuffer) {
	t.Helper()
	argv := append(append(append([]string{}, wrap...), os.Args[0]), args...)
	cmd := osexec.Command(argv[0], argv[1:]...)
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		drop := strings.HasPrefix(k, envPrefix+"_")
		for _, v := range launcherVars {
			drop = drop || k == v
		}
		if !drop {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, envWorker+"=1", ort.EnvLib+"="+ort.Library())
	cmd.Env = append(cmd.Env, env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, out
}

// waitProc waits, at most limit, for cmd to exit.
func waitProc(t *testing.T, cmd *osexec.Cmd, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within %v", cmd.Args[1:], limit)
		return nil
	}
}

var listeningRE = regexp.MustCompile(`coordinator listening on (\S+);`)

// TestExternalWorkersUnderLaunchers: `vdexec run --external-workers`
// waits for workers that someone else started; here each finds its rank
// and the coordinator from a different launcher's variables (torchrun's
// RANK and MASTER_ADDR:MASTER_PORT with `vdexec rank`; Slurm's
// SLURM_PROCID with `vdexec worker`, MASTER_* set as the sbatch script
// does; a LeaderWorkerSet's LWS_WORKER_INDEX and LWS_LEADER_ADDRESS with
// `vdexec rank` and the port variable). The videos are byte-identical to
// an in-process run's. A worker with a wrong token is refused, and the
// token is never printed.
func TestExternalWorkersUnderLaunchers(t *testing.T) {
	needORT(t)
	inproc := writePlan(t)
	tcp := writePlan(t, "transport: inproc", "transport: tcp")
	common := []string{"--samples", "3", "--steps", "3", "--devices", "3"}
	ref := filepath.Join(t.TempDir(), "ref")
	if _, errOut, err := runApp(t, append([]string{"run", inproc, "--out", ref}, common...)...); err != nil {
		t.Fatalf("in-process run: %v\n%s", err, errOut)
	}
	token := strings.Repeat("5a", 32)
	tokEnv := exec.EnvWorkerToken + "=" + token
	dir := filepath.Join(t.TempDir(), "run")
	coord, coordOut := vdexecProc(t, []string{tokEnv},
		append([]string{"run", tcp, "--external-workers", "--listen", "127.0.0.1:0", "--timeout", "60s", "--out", dir}, common...)...)
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := listeningRE.FindStringSubmatch(coordOut.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) || coord.ProcessState != nil {
			t.Fatalf("the coordinator did not say where it listens:\n%s", coordOut)
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	master := []string{envMasterAddr + "=" + host, envMasterPort + "=" + port}

	// A worker with a wrong token: refused, told why, and the run goes on.
	bad, badOut := vdexecProc(t, append([]string{exec.EnvWorkerToken + "=" + strings.Repeat("x", 32), envRank + "=1", envWorldSize + "=4"}, master...),
		append([]string{"rank", tcp}, common...)...)
	if err := waitProc(t, bad, 60*time.Second); err == nil || !strings.Contains(badOut.String(), "refused this worker: wrong token") {
		t.Fatalf("a worker with a wrong token: %v\n%s", err, badOut)
	}

	workers := []struct {
		launcher string
		env      []string
		args     []string
	}{
		{"torchrun", append([]string{envRank + "=1", envWorldSize + "=4", "LOCAL_RANK=1"}, master...), append([]string{"rank", tcp}, common...)},
		{"slurm", append([]string{envSlurmProcID + "=2", envSlurmNTasks + "=4"}, master...), append([]string{"worker", "--plan", tcp, "--timeout", "60s"}, common...)},
		{"lws", []string{envLWSIndex + "=3", envLWSSize + "=4", envLWSLeader + "=" + host, "VDEXEC_RANK_COORDINATOR_PORT=" + port}, append([]string{"rank", tcp}, common...)},
	}
	type proc struct {
		cmd *osexec.Cmd
		out *syncBuffer
	}
	// The torchrun rank reads the token from the file that the jobs name
	// in $VDEXEC_RANK_TOKEN_FILE; the others from $VDPP_WORKER_TOKEN.
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var procs []proc
	for i, w := range workers {
		tok := tokEnv
		if i == 0 {
			tok = "VDEXEC_RANK_TOKEN_FILE=" + tokFile
		}
		cmd, out := vdexecProc(t, append(w.env, tok), w.args...)
		procs = append(procs, proc{cmd, out})
	}
	if err := waitProc(t, coord, 120*time.Second); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, coordOut)
	}
	for i, p := range procs {
		if err := waitProc(t, p.cmd, 30*time.Second); err != nil {
			t.Errorf("%s worker: %v\n%s", workers[i].launcher, err, p.out)
		}
		if strings.Contains(p.out.String(), token) {
			t.Errorf("%s worker printed the token", workers[i].launcher)
		}
	}
	log := coordOut.String()
	for _, want := range []string{"waiting up to 1m0s for 3 external workers (ranks 1 to 3", "3 of 3 samples", "dropped a connection from 127.0.0.1:"} {
		if !strings.Contains(log, want) {
			t.Errorf("coordinator output lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, token) {
		t.Error("the coordinator printed the token")
	}
	want, got := sampleOutputs(t, ref), sampleOutputs(t, dir)
	if len(want) != 3*10 || len(got) != len(want) {
		t.Fatalf("%d outputs with external workers, %d in-process; want 30", len(got), len(want))
	}
	var differ []string
	for k, v := range want {
		if got[k] != v {
			differ = append(differ, k)
		}
	}
	sort.Strings(differ)
	if len(differ) > 0 {
		t.Errorf("external workers differ from in-process in %s", strings.Join(differ, ", "))
	}
}

// TestRunExternalFlags: --external-workers needs transport tcp and a
// token from the user; --token-file is for external workers only; a
// listen address is HOST:PORT. Each is a usage error before any work.
func TestRunExternalFlags(t *testing.T) {
	t.Setenv(exec.EnvWorkerToken, "")
	tcp := writePlan(t, "transport: inproc", "transport: tcp")
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(strings.Repeat("7", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no token", []string{"run", tcp, "--external-workers", "--out", out}, "run: no token: workers started by someone else authenticate with a shared secret"},
		{"inproc", []string{"run", planFile, "--external-workers", "--token-file", tokFile, "--out", out}, "external workers need a plan with transport tcp; plan tiny-cpu-2stage has transport inproc"},
		{"token file alone", []string{"run", tcp, "--token-file", tokFile, "--out", out}, "--token-file is for --external-workers only"},
		{"listen not hostport", []string{"run", tcp, "--listen", "29500", "--out", out}, `--listen "29500": want HOST:PORT`},
		{"listen port", []string{"run", tcp, "--listen", ":70000", "--out", out}, `want HOST:PORT with a port from 0 (any free one) to 65535; "70000"`},
		{"rank without launcher", []string{"rank", tcp, "--out", out}, "rank: no rank: run under a launcher that sets RANK (torchrun), SLURM_PROCID (srun) or LWS_WORKER_INDEX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range launcherVars {
				t.Setenv(v, "")
			}
			_, _, err := runApp(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v; want %q", err, tc.want)
			}
			if ec, ok := err.(interface{ ExitCode() int }); ok && ec.ExitCode() != 2 {
				t.Errorf("exit %d, want 2 (usage)", ec.ExitCode())
			}
		})
	}
}
