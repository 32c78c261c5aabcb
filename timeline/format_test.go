package timeline

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	cases := []struct{ got, want string }{
		{FormatSeconds(10.34), "10.3 s"},
		{FormatSeconds(0.8125), "812 ms"},
		{FormatSeconds(0.9999), "1.00 s"},
		{FormatSeconds(9.996), "10.0 s"},
		{FormatSeconds(1234.6), "1235 s"},
		{FormatSeconds(45e-6), "45.0 µs"},
		{FormatSeconds(3e-9), "3.00 ns"},
		{FormatSeconds(0), "0 s"},
		{FormatNS(267_000), "267 µs"},
		{FormatRate(0.49749), "0.497 samples/s"},
		{FormatPercent(0.873), "87.3%"},
		{FormatPercent(1), "100%"},
		{FormatRatio(1.0), "1.00×"},
		{FormatSignedPercent(0.02314), "+2.31%"},
		{FormatSignedPercent(-0.00512), "−0.512%"},
		{FormatSignedPercent(0), "0%"},
		{FormatSignedPercent(math.NaN()), "n/a"},
		{FormatSignedPP(math.NaN()), "n/a"},
		{FormatSignedPP(0.012), "+1.20 pp"},
		{FormatSignedPP(-0.2), "−20.0 pp"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if e := RelError(0, 0); e != 0 {
		t.Errorf("RelError(0, 0) = %v", e)
	}
	if e := RelError(1, 0); !math.IsNaN(e) {
		t.Errorf("RelError(1, 0) = %v, want NaN", e)
	}
	if e := RelError(3, 4); e != -0.25 {
		t.Errorf("RelError(3, 4) = %v", e)
	}
}
