package plan

import (
	"strings"
	"testing"
)

// A device's host is a host name or an IP address; every other value is
// reported at its line, on devices[i].host, with the rule.
func TestDeviceHost(t *testing.T) {
	for _, h := range []string{"node-a", "Node-A", "node-a.cluster.local", "n1", "10.0.0.5", "fd00::5", "::ffff:10.0.0.5", "a123456789012345678901234567890123456789012345678901234567890bc"} {
		doc := minimal + "devices:\n  - {name: gpu0, kind: a5000, host: \"" + h + "\"}\n  - {name: gpu1, kind: a5000}\n"
		p, err := Parse([]byte(doc), "x.yaml")
		if err != nil {
			t.Errorf("host %q: %v", h, err)
			continue
		}
		if p.Devices[0].Host != h || p.Devices[1].Host != "" {
			t.Errorf("host %q: devices' hosts %q, %q", h, p.Devices[0].Host, p.Devices[1].Host)
		}
	}
	long := strings.Repeat("a", 64)
	for _, tc := range []struct{ host, want string }{
		{"", "empty; name the host the device is on"},
		{"node_a", `holds the character '_'`},
		{"node a", "holds a space"},
		{"-node", "starting or ending with a hyphen"},
		{"node-", "starting or ending with a hyphen"},
		{"a..b", "empty label"},
		{"node.", "empty label"},
		{long, "a label of 64 characters"},
		{strings.Repeat("abcdefg.", 32) + "x", "is 257 characters long; a host is at most 253"},
		{"10.0.0.256", "digits and dots but not an IP address"},
		{"10.0.0", "digits and dots but not an IP address"},
		{"fe80::1%eth0", "not an IP address nor a host name"},
		{"fd00::zz", "not an IP address nor a host name"},
		{"nöde", "holds the character 'ö'"},
	} {
		doc := minimal + "devices:\n  - {name: gpu0, kind: a5000}\n  - {name: gpu1, kind: a5000, host: \"" + tc.host + "\"}\n"
		list := problems(t, doc)
		expect(t, list, where(t, doc, 10, `"`+tc.host[:min(len(tc.host), 1)]), "devices[1].host", tc.want, "host name")
		if len(list) != 1 {
			t.Errorf("host %q: %d problems, want 1:\n%s", tc.host, len(list), (&Errors{List: list}).Error())
		}
	}
	// Left out is any host, and not reported.
	if p, err := Parse([]byte(minimal+"devices: {count: 2, kind: a5000}\n"), "x.yaml"); err != nil || p.Devices[0].Host != "" {
		t.Errorf("host left out: %v", err)
	}
}

// The short form gives every device its host, and a bad one is reported
// once, on the short form's field.
func TestDeviceHostShortForm(t *testing.T) {
	p, err := Parse([]byte(minimal+"devices: {count: 3, kind: a5000, host: node-b}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range p.Devices {
		if d.Host != "node-b" {
			t.Errorf("%s: host %q, want node-b", d.Name, d.Host)
		}
	}
	doc := minimal + "devices: {count: 3, kind: a5000, host: node_b}\n"
	onlyProblems(t, doc, map[string]string{"devices.host": `"node_b" holds the character '_'`})
	expect(t, problems(t, doc), where(t, doc, 8, "node_b"), "devices.host", "host name")
}

// A plan with hosts is written by Marshal and read back with the same
// hosts; one without writes no host field.
func TestDeviceHostRoundTrip(t *testing.T) {
	p, err := Parse([]byte(minimal+"devices:\n  - {name: gpu0, kind: a5000, host: node-a}\n  - {name: gpu1, kind: a5000, host: 10.0.0.7}\n  - {name: gpu2, kind: a5000}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p)
	b, err := p.Marshal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "host:"); n != 2 {
		t.Errorf("Marshal wrote %d host fields, want 2 (none for the device without one):\n%s", n, b)
	}
}

func TestRunsOn(t *testing.T) {
	for _, tc := range []struct {
		plan, worker string
		want         bool
	}{
		{"", "anything", true},
		{"", "", true},
		{"node-a", "node-a", true},
		{"node-a", "NODE-A", true},
		{"node-a", "node-a.cluster.local", true},
		{"node-a.cluster.local", "node-a", true},
		{"node-a.cluster.local", "node-a.other", false},
		{"node-a", "node-b", false},
		{"node-a", "node-ab", false},
		{"node-a", "", false},
		{"10.0.0.5", "10.0.0.5", true},
		{"10.0.0.5", "::ffff:10.0.0.5", true},
		{"fd00::5", "fd00:0::5", true},
		{"10.0.0.5", "10.0.0.6", false},
		{"10.0.0.5", "10", false},
		{"10.0.0.5", "node-a", false},
		{"node-a", "10.0.0.5", false},
	} {
		if got := (Device{Host: tc.plan}).RunsOn(tc.worker); got != tc.want {
			t.Errorf("host %q, worker on %q: RunsOn %v, want %v", tc.plan, tc.worker, got, tc.want)
		}
	}
	if err := CheckHost("node-a"); err != nil {
		t.Errorf("CheckHost(node-a): %v", err)
	}
	if err := CheckHost("node_a"); err == nil || !strings.Contains(err.Error(), HostRule) {
		t.Errorf("CheckHost(node_a): %v", err)
	}
}

// A what-if resize copies the first device; devices on different hosts are
// not alike, and the resize is refused.
func TestResizeHosts(t *testing.T) {
	p, err := Parse([]byte(minimal+"devices:\n  - {name: gpu0, kind: a5000, host: node-a}\n  - {name: gpu1, kind: a5000, host: node-b}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 4
	if err := p.Apply(Overrides{Devices: &n}); err == nil || !strings.Contains(err.Error(), `host (node-b, not node-a)`) {
		t.Errorf("resize over two hosts: %v", err)
	}
	q, err := Parse([]byte(minimal+"devices: {count: 2, kind: a5000, host: node-a}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Apply(Overrides{Devices: &n}); err != nil {
		t.Fatal(err)
	}
	for _, d := range q.Devices {
		if d.Host != "node-a" {
			t.Errorf("resized %s: host %q, want node-a", d.Name, d.Host)
		}
	}
}
