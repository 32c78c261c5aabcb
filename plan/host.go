package plan

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxHostLen bounds a device's host: the longest DNS name.
const MaxHostLen = 253

// HostRule is the rule a device's host follows, as messages state it.
const HostRule = "a host name (labels of 1 to 63 ASCII letters, digits and hyphens, not starting or ending with a hyphen, joined by dots, at most 253 characters, e.g. node-a or node-a.cluster.local) or an IP address (10.0.0.5, fd00::5)"

// CheckHost reports why h cannot name a device's host, or nil: it must be
// a host name or an IP address (HostRule). An IP address is written as
// net/netip reads it, without a zone (%eth0); a name made of digits and
// dots only must be an IP address (10.0.0.256 is neither).
func CheckHost(h string) error {
	if why := hostProblem(h); why != "" {
		return fmt.Errorf("%s", why)
	}
	return nil
}

func hostProblem(h string) string {
	if h == "" {
		return "empty; name the host the device is on (" + HostRule + "), or leave host out for any host"
	}
	if len(h) > MaxHostLen {
		return fmt.Sprintf("%s is %d characters long; a host is at most %d. Want %s", fragment(h), len(h), MaxHostLen, HostRule)
	}
	if strings.ContainsAny(h, ":%") {
		// Only an IPv6 address holds a colon.
		if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
			return ""
		}
		return fmt.Sprintf("%s is not an IP address nor a host name; want %s", fragment(h), HostRule)
	}
	numeric := true
	for _, label := range strings.Split(h, ".") {
		switch {
		case label == "":
			return fmt.Sprintf("%s has an empty label (two dots in a row, or a dot at an end); want %s", fragment(h), HostRule)
		case len(label) > 63:
			return fmt.Sprintf("%s has a label of %d characters; a label is at most 63. Want %s", fragment(h), len(label), HostRule)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Sprintf("%s has a label starting or ending with a hyphen (%s); want %s", fragment(h), fragment(label), HostRule)
		}
		for _, r := range label {
			switch {
			case r >= '0' && r <= '9':
			case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-':
				numeric = false
			default:
				return fmt.Sprintf("%s holds %s; want %s", fragment(h), describeRune(r), HostRule)
			}
		}
	}
	if numeric {
		if _, err := netip.ParseAddr(h); err != nil {
			return fmt.Sprintf("%s is digits and dots but not an IP address; want %s", fragment(h), HostRule)
		}
	}
	return ""
}

// HostKey is the machine a host names, for counting and comparing the
// plan's devices by host: an address in its canonical form, a name in
// lower case up to its first dot (node-a and Node-A.cluster.local are
// one machine, as RunsOn matches them). "" stays "": devices without a
// host count as one machine.
func HostKey(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	return strings.ToLower(h)
}

// IsAddress reports whether h is an IP address (not a host name).
func IsAddress(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// RunsOn reports whether a worker on host (its os.Hostname, or an
// address) may run the device: always when the device names no host;
// else when the names are equal ignoring case, or when one is a dotted
// name (node-a.cluster.local) and the other is its first label (node-a),
// since a machine may report either form. IP addresses match only the
// same address (written in any form netip reads the same).
func (d Device) RunsOn(host string) bool {
	if d.Host == "" {
		return true
	}
	if strings.EqualFold(d.Host, host) {
		return true
	}
	a, errA := netip.ParseAddr(d.Host)
	b, errB := netip.ParseAddr(host)
	if errA == nil || errB == nil {
		return errA == nil && errB == nil && a.Unmap() == b.Unmap()
	}
	short := func(s string) string {
		if i := strings.IndexByte(s, '.'); i >= 0 {
			return s[:i]
		}
		return s
	}
	x, y := d.Host, host
	if strings.Contains(x, ".") == strings.Contains(y, ".") {
		return false // both short or both qualified: equal or not, said above
	}
	return strings.EqualFold(short(x), short(y))
}
