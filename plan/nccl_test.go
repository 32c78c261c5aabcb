package plan

import (
	"strings"
	"testing"
)

func indexes(p *Plan) []int {
	out := make([]int, len(p.Devices))
	for i, d := range p.Devices {
		out[i] = d.Index
	}
	return out
}

// Transport nccl runs on devices of provider cpu too (they compute on the
// CPU; NCCL hands their latents through the CUDA device of their index),
// and such a device's index defaults as a cuda device's does: its
// position among the devices that take one, on its host.
func TestNCCLOnCPU(t *testing.T) {
	for _, tc := range []struct {
		name, devices string
		want          []int
	}{
		{"short form", "devices: {count: 3, kind: cpu}\n", []int{0, 1, 2}},
		{"index written", "devices:\n  - {name: a, kind: cpu}\n  - {name: b, kind: cpu, index: 5}\n  - {name: c, kind: cpu}\n", []int{0, 5, 2}},
		{"cpu and cuda", "devices:\n  - {name: g, kind: a5000}\n  - {name: c, kind: cpu}\n  - {name: h, kind: a5000}\n", []int{0, 1, 2}},
		{"per host", "devices:\n  - {name: a0, kind: cpu, host: node-a}\n  - {name: b0, kind: cpu, host: node-b}\n  - {name: a1, kind: cpu, host: node-a}\n  - {name: b1, kind: cpu, host: node-b}\n", []int{0, 0, 1, 1}},
		// One machine written three ways (case, short and dotted name):
		// its devices number on, as RunsOn matches them (HostKey).
		{"one host written differently", "devices:\n  - {name: a0, kind: cpu, host: node-a}\n  - {name: a1, kind: cpu, host: Node-A}\n  - {name: a2, kind: cpu, host: node-a.cluster.local}\n", []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(minimal+tc.devices+"transport: nccl\n"), "x.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if p.Transport != TransportNCCL || !equalInts(indexes(p), tc.want) {
				t.Errorf("transport %s, indexes %v; want nccl, %v", p.Transport, indexes(p), tc.want)
			}
			// Without nccl a cpu device takes no CUDA device: its index
			// stays 0 unless written.
			q, err := Parse([]byte(minimal+tc.devices+"transport: tcp\n"), "x.yaml")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range q.Devices {
				if d.Provider == ProviderCPU && d.Index != 0 && d.Name != "b" {
					t.Errorf("tcp: cpu device %s has index %d, want 0 (not written)", d.Name, d.Index)
				}
			}
		})
	}
	// cuda devices number per host as well.
	p, err := Parse([]byte(minimal+"devices:\n  - {name: g0, kind: a5000, host: n1}\n  - {name: g1, kind: a5000, host: n2}\n  - {name: g2, kind: a5000, host: n1}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(indexes(p), []int{0, 0, 1}) {
		t.Errorf("cuda devices on two hosts: indexes %v, want [0 0 1]", indexes(p))
	}
}

// Under nccl two devices on one named host cannot share a CUDA device;
// devices without a host may be on different machines and are not
// compared.
func TestNCCLDuplicateIndex(t *testing.T) {
	doc := minimal + "devices:\n  - {name: a, kind: cpu, host: node-a, index: 1}\n  - {name: b, kind: cpu, host: Node-A, index: 1}\ntransport: nccl\n"
	list := problems(t, doc)
	expect(t, list, where(t, doc, 10, "1}"), "devices[1].index", "device b uses CUDA device 1 on host Node-A, as a (devices[0]) does", "give it another index")
	if len(list) != 1 {
		t.Errorf("%d problems, want 1:\n%s", len(list), (&Errors{List: list}).Error())
	}
	for _, ok := range []string{
		"devices:\n  - {name: a, kind: cpu, index: 1}\n  - {name: b, kind: cpu, index: 1}\ntransport: nccl\n",
		"devices:\n  - {name: a, kind: cpu, host: node-a, index: 1}\n  - {name: b, kind: cpu, host: node-b, index: 1}\ntransport: nccl\n",
		"devices:\n  - {name: a, kind: cpu, host: node-a, index: 1}\n  - {name: b, kind: cpu, host: node-a, index: 1}\ntransport: tcp\n",
	} {
		if _, err := Parse([]byte(minimal+ok), "x.yaml"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// UseTransport sets the transport as a flag says, fills the indexes that
// now default, and leaves the plan as it was when the result is invalid.
func TestUseTransport(t *testing.T) {
	p, err := Parse([]byte(minimal+"devices:\n  - {name: a, kind: cpu}\n  - {name: b, kind: cpu}\n  - {name: c, kind: cpu, index: 7}\ntransport: tcp\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before := p.Hash()
	if err := p.UseTransport(TransportNCCL, "--backend nccl"); err != nil {
		t.Fatal(err)
	}
	if p.Transport != TransportNCCL || !equalInts(indexes(p), []int{0, 1, 7}) {
		t.Errorf("after --backend nccl: transport %s, indexes %v; want nccl, [0 1 7]", p.Transport, indexes(p))
	}
	if p.Hash() == before {
		t.Error("the plan's hash did not change with its transport")
	}
	// The same plan written with transport nccl is the same plan.
	q, err := Parse([]byte(minimal+"devices:\n  - {name: a, kind: cpu}\n  - {name: b, kind: cpu}\n  - {name: c, kind: cpu, index: 7}\ntransport: nccl\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if q.Hash() != p.Hash() {
		t.Errorf("--backend nccl on a tcp plan gives hash %s, the plan written with nccl %s", p.Hash(), q.Hash())
	}
	if err := p.UseTransport(TransportTCP, "--backend gloo"); err != nil || p.Transport != TransportTCP {
		t.Errorf("back to tcp: %v, transport %s", err, p.Transport)
	}

	r, err := Parse([]byte(minimal+"devices:\n  - {name: a, kind: cpu, host: h, index: 0}\n  - {name: b, kind: cpu, host: h, index: 0}\ntransport: tcp\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = r.UseTransport(TransportNCCL, "--backend nccl")
	if err == nil || !strings.Contains(err.Error(), "devices[1].index") || !strings.Contains(err.Error(), "one CUDA device per device") {
		t.Errorf("two devices on one CUDA device under nccl: %v", err)
	}
	if r.Transport != TransportTCP {
		t.Errorf("a failed UseTransport changed the transport to %s", r.Transport)
	}
	err = r.UseTransport("bogus", "--backend bogus")
	if err == nil || !strings.HasPrefix(err.Error(), "plan: --backend bogus: transport:") {
		t.Errorf("unknown transport: %v", err)
	}
}
