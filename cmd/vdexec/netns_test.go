package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/internal/fakenccl"
)

// netnsPair is two network namespaces joined by a veth pair on a private
// /24: two "hosts" on one machine, each with its own address, loopback
// and routes.
type netnsPair struct {
	a, b     string // namespace names
	devA     string // the veth end in a
	devB     string // the veth end in b
	ipA, ipB string // their addresses
}

// ipCmd runs ip with args, bounded in time, and returns its output.
func ipCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := osexec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// newNetnsPair makes the two namespaces (names unique to this process),
// deleted when the test ends, or skips the test when this machine cannot
// (not root, no ip, ip netns add refused).
func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (ip netns add); CI runs this test as root")
	}
	if _, err := osexec.LookPath("ip"); err != nil {
		t.Skipf("no ip command (iproute2): %v", err)
	}
	pid := os.Getpid()
	n := &netnsPair{
		a: fmt.Sprintf("vdpp-test-a-%d", pid), b: fmt.Sprintf("vdpp-test-b-%d", pid),
		devA: fmt.Sprintf("vdppa%d", pid), devB: fmt.Sprintf("vdppb%d", pid),
	}
	subnet := rand.IntN(256)
	n.ipA, n.ipB = fmt.Sprintf("10.231.%d.1", subnet), fmt.Sprintf("10.231.%d.2", subnet)
	if _, err := ipCmd("netns", "add", n.a); err != nil {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
	t.Cleanup(func() {
		// Deleting a namespace deletes the veth end in it, and so the pair;
		// the link is deleted too in case it never left this namespace.
		for _, args := range [][]string{{"netns", "del", n.a}, {"netns", "del", n.b}, {"link", "del", n.devA}} {
			ipCmd(args...)
		}
	})
	for _, args := range [][]string{
		{"netns", "add", n.b},
		{"link", "add", n.devA, "type", "veth", "peer", "name", n.devB},
		{"link", "set", n.devA, "netns", n.a},
		{"link", "set", n.devB, "netns", n.b},
		{"-n", n.a, "addr", "add", n.ipA + "/24", "dev", n.devA},
		{"-n", n.b, "addr", "add", n.ipB + "/24", "dev", n.devB},
		{"-n", n.a, "link", "set", n.devA, "up"},
		{"-n", n.b, "link", "set", n.devB, "up"},
		{"-n", n.a, "link", "set", "lo", "up"},
		{"-n", n.b, "link", "set", "lo", "up"},
	} {
		if _, err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// rxBytes is what the veth end dev in namespace ns has received.
func (n *netnsPair) rxBytes(t *testing.T, ns, dev string) int64 {
	t.Helper()
	out, err := ipCmd("netns", "exec", ns, "cat", "/sys/class/net/"+dev+"/statistics/rx_bytes")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("rx_bytes of %s in %s: %q", dev, ns, out)
	}
	return v
}

// nsProc starts this test binary as vdexec with args inside network
// namespace ns (ip netns exec), in an environment without launcher
// variables or VDEXEC_ settings, plus env; it is killed when the test
// ends.
func nsProc(t *testing.T, ns string, env []string, args ...string) (*osexec.Cmd, *syncBuffer) {
	t.Helper()
	return wrappedProc(t, []string{"ip", "netns", "exec", ns}, env, args...)
}

// twoHostRun is one run of TestTwoHostsNetns: a plan file, flags for
// every process, and the namespace each worker runs in.
type twoHostRun struct {
	plan    string
	flags   []string          // for the coordinator and the workers (the same plan for all)
	workers map[string]string // device → namespace
	env     []string          // for every process
}

// run runs the coordinator (`vdexec run --external-workers --listen` on
// A's address) in A and the workers where r says, and returns the
// output folder, the coordinator's output, the workers' outputs by
// device, and the coordinator's error.
func (r twoHostRun) run(t *testing.T, n *netnsPair, tok string) (string, string, map[string]string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "two-hosts")
	coord, coordOut := nsProc(t, n.a, r.env, append([]string{"run", r.plan, "--external-workers", "--listen", net.JoinHostPort(n.ipA, "0"),
		"--token-file", tok, "--timeout", "60s", "--out", dir}, r.flags...)...)
	coordDone := make(chan error, 1)
	go func() { coordDone <- coord.Wait() }()
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == ""; {
		if m := listeningRE.FindStringSubmatch(coordOut.String()); m != nil {
			addr = m[1]
			continue
		}
		select {
		case err := <-coordDone:
			t.Fatalf("the coordinator exited (%v) before it said where it listens:\n%s", err, coordOut)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator did not say where it listens within a minute:\n%s", coordOut)
		}
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != n.ipA {
		t.Fatalf("the coordinator listens on %s (%v), want %s", addr, err, n.ipA)
	}
	type proc struct {
		cmd *osexec.Cmd
		out *syncBuffer
	}
	procs := map[string]proc{}
	for dev, ns := range r.workers {
		cmd, out := nsProc(t, ns, r.env, append([]string{"worker", "--plan", r.plan, "--coordinator", addr, "--device", dev,
			"--token-file", tok, "--timeout", "60s"}, r.flags...)...)
		procs[dev] = proc{cmd, out}
	}
	var err error
	select {
	case err = <-coordDone:
	case <-time.After(120 * time.Second):
		coord.Process.Kill()
		t.Fatalf("the coordinator did not exit within 2 minutes:\n%s", coordOut)
	}
	outs := map[string]string{}
	for dev, p := range procs {
		werr := waitProc(t, p.cmd, 30*time.Second)
		outs[dev] = fmt.Sprintf("exit: %v\n%s", werr, p.out)
	}
	return dir, coordOut.String(), outs, err
}

// TestTwoHostsNetns runs a plan over two "hosts": network namespaces
// joined by a veth pair. The coordinator and the first stage's worker run
// in A, the second stage's worker in B.
//
//   - transport tcp: the hand-off between the stages crosses the veth (B's
//     end receives at least every latent), and the videos are byte for
//     byte those of the plan run in one process outside the namespaces;
//   - the same with the devices on their hosts by address (host: in the
//     plan), which the coordinator checks;
//   - transport nccl (--backend nccl, the libraries by --nccl-lib and
//     --cudart-lib) against the NCCL test double, whose path-based unix
//     sockets work across the namespaces: the same videos;
//   - a worker started on the wrong host (cpu1's in A) is refused, told
//     why, and the run fails saying so.
func TestTwoHostsNetns(t *testing.T) {
	needORT(t)
	n := newNetnsPair(t)
	t.Setenv(exec.EnvWorkerToken, "")
	const samples = 3
	common := []string{"--samples", strconv.Itoa(samples), "--steps", "3"}
	ref := filepath.Join(t.TempDir(), "inproc")
	if _, errOut, err := runApp(t, append([]string{"run", writePlan(t), "--out", ref}, common...)...); err != nil {
		t.Fatalf("in-process run: %v\n%s", err, errOut)
	}
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(strings.Repeat("3c", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tcp := writePlan(t, "transport: inproc", "transport: tcp")
	devices := "  - {name: cpu0, kind: cpu, threads: 1, provider: cpu}\n  - {name: cpu1, kind: cpu, threads: 1, provider: cpu}\n"
	onHosts := writePlan(t, "transport: inproc", "transport: tcp", devices,
		"  - {name: cpu0, kind: cpu, threads: 1, provider: cpu, host: "+n.ipA+"}\n  - {name: cpu1, kind: cpu, threads: 1, provider: cpu, host: "+n.ipB+"}\n")
	split := map[string]string{"cpu0": n.a, "cpu1": n.b}

	// latent is one hand-off's bytes: the tiny model's frames × channels ×
	// height × width × fp32.
	const latent = 8 * 4 * 16 * 16 * 4
	for _, tc := range []struct {
		name string
		r    twoHostRun
	}{
		{"tcp", twoHostRun{tcp, common, split, nil}},
		{"tcp, hosts", twoHostRun{onHosts, common, split, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx0 := n.rxBytes(t, n.b, n.devB)
			dir, coordOut, outs, err := tc.r.run(t, n, tok)
			if err != nil {
				t.Fatalf("coordinator: %v\n%s\nworkers: %v", err, coordOut, outs)
			}
			if !strings.Contains(coordOut, fmt.Sprintf("%d of %d samples", samples, samples)) || !strings.Contains(coordOut, "transport tcp") {
				t.Errorf("the coordinator did not finish every sample over tcp:\n%s", coordOut)
			}
			// Every latent went from cpu0 (in A) to cpu1 (in B) over the veth.
			if got := n.rxBytes(t, n.b, n.devB) - rx0; got < samples*latent {
				t.Errorf("B's veth end received %d bytes during the run, less than the %d latents' %d bytes: the hand-off did not cross the veth", got, samples, samples*latent)
			}
			sameSamples(t, ref, dir, samples)
		})
	}

	t.Run("nccl, hosts", func(t *testing.T) {
		lib, err := fakenccl.Build(t.TempDir())
		if errors.Is(err, fakenccl.ErrNoCgo) {
			t.Skipf("the NCCL test double cannot be built: %v", err)
		} else if err != nil {
			t.Fatal(err)
		}
		flags := append([]string{"--backend", "nccl", "--nccl-lib", lib, "--cudart-lib", lib}, common...)
		// The double's unique id is a folder under $TMPDIR: this test's.
		dir, coordOut, outs, err := twoHostRun{onHosts, flags, split, []string{"TMPDIR=" + t.TempDir()}}.run(t, n, tok)
		if err != nil {
			t.Fatalf("coordinator: %v\n%s\nworkers: %v", err, coordOut, outs)
		}
		if !strings.Contains(coordOut, fmt.Sprintf("%d of %d samples", samples, samples)) || !strings.Contains(coordOut, "transport nccl") {
			t.Errorf("the coordinator did not finish every sample over nccl:\n%s", coordOut)
		}
		sameSamples(t, ref, dir, samples)
	})

	t.Run("wrong host", func(t *testing.T) {
		_, coordOut, outs, err := twoHostRun{onHosts, common, map[string]string{"cpu1": n.a}, nil}.run(t, n, tok)
		want := fmt.Sprintf("the worker for device cpu1 joined from host %%q (%s), but the plan puts cpu1 on host %s", n.ipA, n.ipB)
		host, _ := os.Hostname()
		want = fmt.Sprintf(want, host)
		if err == nil || !strings.Contains(coordOut, want) {
			t.Errorf("a worker on the wrong host: %v; want the coordinator to fail saying %q:\n%s", err, want, coordOut)
		}
		if !strings.Contains(outs["cpu1"], "wrong host") {
			t.Errorf("the worker on the wrong host was not told so:\n%s", outs["cpu1"])
		}
	})
}
