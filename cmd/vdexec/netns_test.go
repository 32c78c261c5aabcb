package main

import (
	"context"
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
	"github.com/vdpp/vdpp/exec/ort"
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
	cmd := osexec.Command("ip", append([]string{"netns", "exec", ns, os.Args[0]}, args...)...)
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

// TestTwoHostsNetns runs a plan over two "hosts": network namespaces
// joined by a veth pair. The coordinator (`vdexec run --external-workers
// --listen` on A's address) and the first stage's worker run in A, the
// second stage's worker in B, so the hand-off between the stages crosses
// the veth (B's end receives at least every latent). The videos are byte
// for byte those of the same plan run in one process outside the
// namespaces.
func TestTwoHostsNetns(t *testing.T) {
	needORT(t)
	n := newNetnsPair(t)
	t.Setenv(exec.EnvWorkerToken, "")
	inproc := writePlan(t)
	tcp := writePlan(t, "transport: inproc", "transport: tcp")
	const samples = 3
	common := []string{"--samples", strconv.Itoa(samples), "--steps", "3"}
	ref := filepath.Join(t.TempDir(), "inproc")
	if _, errOut, err := runApp(t, append([]string{"run", inproc, "--out", ref}, common...)...); err != nil {
		t.Fatalf("in-process run: %v\n%s", err, errOut)
	}
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(strings.Repeat("3c", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "two-hosts")
	coord, coordOut := nsProc(t, n.a, nil, append([]string{"run", tcp, "--external-workers", "--listen", net.JoinHostPort(n.ipA, "0"),
		"--token-file", tok, "--timeout", "60s", "--out", dir}, common...)...)
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := listeningRE.FindStringSubmatch(coordOut.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) || coord.ProcessState != nil {
			t.Fatalf("the coordinator did not say where it listens:\n%s", coordOut)
		}
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != n.ipA {
		t.Fatalf("the coordinator listens on %s (%v), want %s", addr, err, n.ipA)
	}
	rx0 := n.rxBytes(t, n.b, n.devB)
	workers := []struct{ ns, device string }{{n.a, "cpu0"}, {n.b, "cpu1"}}
	type proc struct {
		cmd *osexec.Cmd
		out *syncBuffer
	}
	var procs []proc
	for _, w := range workers {
		cmd, out := nsProc(t, w.ns, nil, append([]string{"worker", "--plan", tcp, "--coordinator", addr, "--device", w.device,
			"--token-file", tok, "--timeout", "60s"}, common...)...)
		procs = append(procs, proc{cmd, out})
	}
	if err := waitProc(t, coord, 120*time.Second); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, coordOut)
	}
	for i, p := range procs {
		if err := waitProc(t, p.cmd, 30*time.Second); err != nil {
			t.Errorf("worker of %s in %s: %v\n%s", workers[i].device, workers[i].ns, err, p.out)
		}
	}
	if !strings.Contains(coordOut.String(), fmt.Sprintf("%d of %d samples", samples, samples)) {
		t.Errorf("the coordinator did not finish every sample:\n%s", coordOut)
	}
	// Every latent went from cpu0 (in A) to cpu1 (in B) over the veth.
	latent := int64(8 * 4 * 16 * 16 * 4) // the tiny model's frames × channels × height × width × fp32
	if got := n.rxBytes(t, n.b, n.devB) - rx0; got < samples*latent {
		t.Errorf("B's veth end received %d bytes during the run, less than the %d latents' %d bytes: the hand-off did not cross the veth", got, samples, samples*latent)
	}
	sameSamples(t, ref, dir, samples)
}
