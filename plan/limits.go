package plan

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on names, threads and times. The README's plan reference lists
// them; messages say each one where it is broken.
const (
	// MaxNameLen bounds a device name, a device kind and a link kind (and
	// the profile's keys for them): they are table columns.
	MaxNameLen = 64
	// MaxPlanNameLen bounds the plan's name: it heads every report.
	MaxPlanNameLen = 128
	// NameChars are the characters a name may hold besides ASCII letters
	// and digits. No spaces, newlines or control characters: names are
	// table cells, file names and keys, and must print as one word.
	NameChars = "-_.:/+@"
	// MaxThreads bounds a device's intra-op threads: every thread is a
	// real OS thread with its own stack and arena, so a typo (2000,
	// 100000) would take minutes and gigabytes before anything runs, and
	// no machine the plan can run on has more cores than this.
	MaxThreads = 256
	// MaxTimeNS bounds every time a plan implies, in nanoseconds: the
	// release of the last sample, and that plus all the work of the run.
	// Times are int64 nanoseconds (at most 9.2e18, 292 years); 1e18 ns
	// (31.7 years) keeps sums of them far from overflowing.
	MaxTimeNS = 1e18
	// maxMS is MaxTimeNS in milliseconds: the most any one cost may be.
	maxMS = MaxTimeNS / 1e6
	// maxMicroBatch bounds layout.micro_batch and the profile's keys.
	maxMicroBatch = 4096
	// minSpeed and maxSpeed bound a device's relative speed.
	minSpeed, maxSpeed = 1e-3, 1e3
	// maxText bounds a free-text field (provenance, paths).
	maxText = 16 << 10
)

// nameProblem reports why s is not a valid name of at most max
// characters, or "" when it is. A name (free false) holds ASCII letters,
// digits and NameChars; a title (free true: the plan's name) holds any
// printable characters, spaces included, but no tabs, newlines or other
// control characters.
func nameProblem(s string, max int, free bool) string {
	if s == "" {
		return "empty; a name needs at least one character"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("%s is %d characters long; at most %d", fragment(s), n, max)
	}
	for _, r := range s {
		switch {
		case free && r != utf8.RuneError && unicode.IsPrint(r):
			continue
		case free:
			return fmt.Sprintf("%s holds %s; a plan name is one line of printable characters (it heads every report)", fragment(s), describeRune(r))
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(NameChars, r)):
			continue
		}
		allowed := "ASCII letters, digits and " + strings.Join(strings.Split(NameChars, ""), " ")
		return fmt.Sprintf("%s holds %s; a name may hold only %s (it is a table cell and a key of the cost profile)", fragment(s), describeRune(r), allowed)
	}
	return ""
}

// describeRune names a character for a message without printing it raw.
func describeRune(r rune) string {
	switch {
	case r == ' ':
		return "a space"
	case r == '\n':
		return "a newline"
	case r == '\t':
		return "a tab"
	case unicode.IsControl(r) || !unicode.IsPrint(r):
		return fmt.Sprintf("the control character %U", r)
	}
	return fmt.Sprintf("the character %q", r)
}

// checkName checks a name field (see nameProblem).
func checkName(c *checker, path, s string, max int, free bool) bool {
	if why := nameProblem(s, max, free); why != "" {
		c.add(path, "%s", why)
		return false
	}
	return true
}

// checkText checks a free-text field: at most maxText characters and no
// control characters (lines allows newlines and tabs).
func checkText(c *checker, path, s string, lines bool) {
	if n := utf8.RuneCountInString(s); n > maxText {
		c.add(path, "is %d characters long; at most %d", n, maxText)
		return
	}
	for _, r := range s {
		if lines && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			c.add(path, "holds %s; write it on one line without control characters", describeRune(r))
			return
		}
	}
}

// nameFromFile is the plan's name when the file does not give one: the
// file's base name without its extension, with characters a name may not
// hold replaced by '-', cut to MaxPlanNameLen.
func nameFromFile(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	out := []rune(strings.Map(func(r rune) rune {
		if nameProblem(string(r), 1, true) != "" {
			return '-'
		}
		return r
	}, base))
	if len(out) > MaxPlanNameLen {
		out = out[:MaxPlanNameLen]
	}
	if len(out) == 0 {
		return "plan"
	}
	return string(out)
}

// seconds formats nanoseconds as seconds for messages.
func seconds(ns float64) string {
	return fmt.Sprintf("%.3g s", ns/1e9)
}

// limitWords says what MaxTimeNS is, for messages.
const limitWords = "the limit of 1e9 s (31.7 years: times are int64 nanoseconds, kept far below their 292-year range)"

// releaseSpanNS is a bound on the release time of the workload's last
// sample in nanoseconds: (samples-1) × interval for interval arrivals;
// for poisson, (samples + 50) mean gaps (one exponential draw is below 45
// mean gaps). It also returns the field that sets it.
func (w Workload) releaseSpanNS() (float64, string) {
	n := float64(max(w.Samples, 1))
	switch w.Arrival.Kind {
	case ArrivalInterval:
		return (n - 1) * w.Arrival.IntervalMS * 1e6, "workload.arrival.interval_ms"
	case ArrivalPoisson:
		if w.Arrival.Rate > 0 {
			return (n + 50) / w.Arrival.Rate * 1e9, "workload.arrival.rate"
		}
	}
	return 0, ""
}

// checkReleases checks that the workload's release times fit MaxTimeNS.
func (p *Plan) checkReleases(c *checker) {
	a := p.Workload.Arrival
	switch {
	case a.Kind == ArrivalInterval && a.IntervalMS > maxMS:
		c.add("workload.arrival.interval_ms", "is too large: at most 1e12 ms, got %g; one interval alone passes %s", a.IntervalMS, limitWords)
		return
	case a.Kind == ArrivalPoisson && a.Rate > 0 && 1/a.Rate*1e9 > MaxTimeNS/100:
		c.add("workload.arrival.rate", "must be at least %g samples/s, got %g: a mean gap of %.3g s between releases leaves no room under %s", 1e9*100/MaxTimeNS, a.Rate, 1/a.Rate, limitWords)
		return
	}
	span, field := p.Workload.releaseSpanNS()
	if span > MaxTimeNS {
		c.add(field, "%d samples would be released over %s, past %s; release them closer together or use fewer samples", p.Workload.Samples, seconds(span), limitWords)
	}
}

// interpMS is interpBatch in milliseconds, unrounded, for bounds.
func interpMS(m map[int]float64, batch int) float64 {
	v, _, _, _ := interpBatchMS(m, batch)
	return v
}

// checkTimes checks that the whole run fits MaxTimeNS: the last release
// plus all the work of every stage (every micro-batch's steps, encode,
// decode and hand-off, at the device's speed, plus a first call's
// warm-up), as if done one after another. A plan that passes cannot
// overflow the simulator's clock. It needs the profile and the resolved
// layout.
func (p *Plan) checkTimes(c *checker) {
	if p.Profile == nil || len(p.Pipelines) == 0 || p.Layout.MicroBatch < 1 || p.Layout.Replicas < 1 {
		return
	}
	span, _ := p.Workload.releaseSpanNS()
	if span > MaxTimeNS {
		return // checkReleases said so
	}
	mb := p.Layout.MicroBatch
	nmb := float64((max(p.Workload.Samples, 1) + mb - 1) / mb)
	perPipe := math.Ceil(nmb / float64(len(p.Pipelines)))
	work := 0.0
	worst, worstDev := 0.0, ""
	for _, pl := range p.Pipelines {
		for i, st := range pl.Stages {
			if st.DevIdx < 0 || st.DevIdx >= len(p.Devices) {
				continue
			}
			d := p.Devices[st.DevIdx]
			dc, ok := p.Profile.Devices[d.Kind]
			if !ok || !(d.Speed > 0) {
				continue
			}
			stepMS := interpMS(dc.UNetMS, mb)
			firstMS := max(interpMS(dc.FirstCallMS, mb)-stepMS, 0)
			msPer := float64(st.Steps())*(stepMS/d.Speed+dc.HostMSPerStep) + float64(mb)*(dc.EncodeMS+dc.DecodeMS)/d.Speed +
				float64(mb)*(dc.SampleFirstMS+dc.SampleLastMS)
			for _, v := range dc.EncodeFirstMS {
				firstMS += max(v-dc.EncodeMS, 0) // divided by the speed below
			}
			for _, v := range dc.DecodeFirstMS {
				firstMS += max(v-dc.DecodeMS, 0)
			}
			hopNS := 0.0
			if i+1 < len(pl.Stages) {
				if h, ok := p.HopCost(st.DevIdx, pl.Stages[i+1].DevIdx); ok {
					hopNS = (h.LatencyUS+h.ReceiveUS)*1e3 + h.SetupNSFloat(p.Ranks())/perPipe
					if h.BandwidthGBps > 0 {
						hopNS += float64(mb) * float64(p.Model.LatentBytes()) / h.BandwidthGBps
					}
				}
			}
			stage := perPipe*(msPer*1e6+hopNS) + firstMS*1e6/d.Speed
			work += stage
			if stage > worst {
				worst, worstDev = stage, d.Name
			}
		}
	}
	if span+work > MaxTimeNS || math.IsNaN(work) {
		c.add("workload.samples", "%d samples would take about %s of work (%s of it on %s: samples × steps × the profile's step time at micro-batch %d) after the last release at %s, past %s; use fewer samples or check the profile's costs",
			p.Workload.Samples, seconds(work), seconds(worst), worstDev, mb, seconds(span), limitWords)
	}
}
