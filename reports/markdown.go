package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/vdpp/vdpp/internal/atomicfile"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// Run is one side of a report: where a timeline came from and its
// metrics (timeline.Summary). A simulation that did not keep its timeline
// still has both.
type Run = timeline.Summary

// NewRun returns the Run of a timeline: its metadata and its metrics.
func NewRun(tl *timeline.Timeline) *Run { return tl.Summary() }

// Image is a picture a report links.
type Image struct {
	Title string // alt text and caption
	Path  string // relative to the report's directory
}

// Report is what WriteMarkdown writes. Every field but one of Predicted and
// Measured is optional.
type Report struct {
	// Title is the document's heading; empty gives "vdpp report: PLAN".
	Title string
	// Plan is the plan the runs are of: its layout and cost profile go in
	// the report. Optional (a comparison of two timeline files may have none).
	Plan *plan.Plan
	// Predicted is the simulated run, Measured the executed one.
	Predicted, Measured *Run
	// Baseline is the same devices and workload as data parallel (one
	// whole-sample pipeline per device), as predicted by the simulator.
	Baseline *Run
	// Hindsight is the simulator run again with the costs the measured run
	// itself spent (study.Hindsight): not a prediction, but what separates the
	// pipeline model's own error from the cost profile's.
	Hindsight *Run
	// BaselineNote says why there is no baseline, when there is none
	// (the plan is already data parallel, it does not fit, ...).
	BaselineNote string
	// Images are linked under "Charts", in order.
	Images []Image
	// Notes are extra lines printed under the verdict.
	Notes []string
	// NotComparable says why the predicted and the measured run do not
	// test the prediction (study.Comparison.NotComparable); the verdict
	// leads with it and passes no judgement on the errors.
	NotComparable []string
	// Range is the predicted range of the metrics (nil: none was
	// computed): a column beside the prediction, a verdict line and, with
	// a measurement, where it fell against the range.
	Range *Range
}

// NotComparableVerdict is the verdict's first line for two runs that are
// not comparable, given the reasons; the CLI prints it too.
func NotComparableVerdict(reasons []string) string {
	return "**Not comparable:** " + strings.Join(reasons, "; ") + ". The errors below compare two different runs and say nothing about the prediction's accuracy."
}

// WriteMarkdown writes the report r as Markdown to path, atomically.
func WriteMarkdown(path string, r Report) error {
	var buf bytes.Buffer
	if err := RenderMarkdown(&buf, r); err != nil {
		return err
	}
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return fmt.Errorf("reports: markdown: %w", err)
	}
	return nil
}

// RenderMarkdown writes the report r as Markdown to w: the verdict, the
// plan in one table, the cost profile's provenance (with a warning when the
// costs were not measured on the machine), the metrics of each run side by
// side, the signed error of every metric when both a prediction and a
// measurement are given (per device and per stage too, so errors that
// cancel out are seen), the data-parallel baseline, charts, where each run
// came from, and the metric definitions.
func RenderMarkdown(w io.Writer, r Report) error {
	if r.Predicted == nil && r.Measured == nil {
		return errors.New("reports: markdown: a report needs a predicted or a measured run")
	}
	md := &mdWriter{}
	name := r.planName()
	title := r.Title
	if title == "" {
		title = "vdpp report: " + name
	}
	md.line("# %s", title)
	md.line("")
	if warn := r.costWarning(); warn != "" {
		md.line("> **Warning:** %s", warn)
		md.line("")
	}

	md.line("## Verdict")
	md.line("")
	for _, v := range r.verdict() {
		md.line("- %s", v)
	}
	for _, n := range r.Notes {
		md.line("- %s", n)
	}
	md.line("")

	r.writePlan(md)
	r.writeProfile(md)
	r.writeMetrics(md)
	if r.Predicted != nil && r.Measured != nil {
		r.writeErrors(md)
	}
	r.writeDevices(md)
	if len(r.Images) > 0 {
		md.line("## Charts")
		md.line("")
		for _, im := range r.Images {
			md.line("![%s](%s)", mdEscape(im.Title), im.Path)
			md.line("")
			md.line("*%s*", mdEscape(im.Title))
			md.line("")
		}
	}
	r.writeSources(md)
	md.line("## Definitions")
	md.line("")
	md.line("Every number above is computed by one implementation (timeline.Metrics) from the timeline, the same way for a prediction and a measurement.")
	md.line("")
	for _, d := range timeline.Definitions() {
		md.line("- **%s.** %s", d.Name, strings.TrimPrefix(d.Text, capitalise(d.Name)+": "))
	}
	md.line("- **signed error.** (predicted − measured) / measured: positive when the prediction is too high. Utilisation errors are differences in percentage points (pp).")
	if r.Range != nil && r.Range.Runs > 0 {
		md.line("- **predicted range.** %s", RangeDefinition)
	}
	_, err := w.Write(md.buf.Bytes())
	if err != nil {
		return fmt.Errorf("reports: markdown: %w", err)
	}
	return nil
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// mdWriter accumulates Markdown lines.
type mdWriter struct{ buf bytes.Buffer }

func (m *mdWriter) line(format string, args ...any) {
	fmt.Fprintf(&m.buf, format, args...)
	m.buf.WriteByte('\n')
}

// table writes a Markdown table; align has one of 'l' or 'r' per column.
func (m *mdWriter) table(align string, header []string, rows [][]string) {
	m.line("| %s |", strings.Join(mdCells(header), " | "))
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
		if i < len(align) && align[i] == 'r' {
			seps[i] = "---:"
		}
	}
	m.line("| %s |", strings.Join(seps, " | "))
	for _, row := range rows {
		m.line("| %s |", strings.Join(mdCells(row), " | "))
	}
	m.line("")
}

func mdCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = mdEscape(c)
	}
	return out
}

// mdEscape keeps a cell on one line and its pipes literal.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func (r *Report) planName() string {
	switch {
	case r.Plan != nil:
		return r.Plan.Name
	case r.Predicted != nil && r.Predicted.Meta.Plan != "":
		return r.Predicted.Meta.Plan
	case r.Measured != nil && r.Measured.Meta.Plan != "":
		return r.Measured.Meta.Plan
	}
	return "(unnamed plan)"
}

// CostWarning is the line a report prints when a prediction's costs are
// published or estimated numbers rather than measurements on the machine.
const CostWarning = "prediction from published/estimated costs, not measured on this machine"

// CostWarningFor is the warning for a profile of the given provenance
// source that was not measured on this machine: CostWarning, or for a
// calibrated profile a line that says so.
func CostWarningFor(source string) string {
	if source == "calibrated" {
		return "prediction from costs fitted to end-to-end runs (vdsim calibrate), not measured on this machine"
	}
	return CostWarning
}

func (r *Report) costWarning() string {
	if r.Predicted == nil {
		return ""
	}
	if r.Plan != nil && r.Plan.Profile != nil {
		if r.Plan.Profile.Provenance.Source != "measured" {
			return fmt.Sprintf("%s (profile source: %s).", CostWarningFor(r.Plan.Profile.Provenance.Source), r.Plan.Profile.Provenance.Source)
		}
		return ""
	}
	// Without the plan, the timeline's profile line says where costs came from.
	p := r.Predicted.Meta.Profile
	if p != "" && !strings.HasPrefix(p, "measured") {
		return CostWarning + "."
	}
	return ""
}

// verdict is a few plain sentences: how the pipeline compares with data
// parallel, and how far the prediction was from the measurement.
func (r *Report) verdict() []string {
	var out []string
	main := r.Predicted
	side := "predicted"
	if main == nil {
		main, side = r.Measured, "measured"
	}
	m := main.Metrics
	if len(r.NotComparable) > 0 && r.Measured != nil && r.Predicted != nil {
		out = append(out, NotComparableVerdict(r.NotComparable))
	}
	rate := FormatRate(m.Throughput)
	if m.TooFewSamples {
		rate = FormatRate(m.OverallThroughput) + " overall (too few samples for a steady state)"
	}
	out = append(out, fmt.Sprintf("%s: %d samples; first sample after %s, then %s; all done after %s.",
		capitalise(side), m.Samples, FormatNS(m.FirstLatencyNS), rate, FormatNS(m.MakespanNS)))
	if r.Predicted != nil && r.Measured == nil {
		out = append(out, r.Range.verdictLines(&r.Predicted.Metrics)...)
	}
	if r.Baseline != nil && r.Predicted != nil {
		out = append(out, BaselineVerdict(r.Predicted.Metrics, r.Baseline.Metrics, r.layoutWord(), "data parallel")...)
	} else if r.BaselineNote != "" {
		out = append(out, "No data-parallel baseline: "+r.BaselineNote+".")
	}
	if r.Predicted != nil && r.Measured != nil {
		p, q := r.Predicted.Metrics, r.Measured.Metrics
		fe := RelError(float64(p.FirstLatencyNS), float64(q.FirstLatencyNS))
		tv, tname := timeline.ThroughputForRanking(&p, &q)
		te := RelError(tv[0], tv[1])
		worst := math.Max(math.Abs(fe), math.Abs(te))
		judge := "within 5%"
		switch {
		case len(r.NotComparable) > 0:
			judge = "not a test of the prediction: the runs are not comparable"
		case math.IsNaN(worst) || worst > 0.05:
			judge = "off by more than 5%; see the per-stage errors below for where"
		}
		out = append(out, fmt.Sprintf("Prediction against measurement: first-sample latency %s, %s %s (%s).",
			FormatSignedPercent(fe), tname, FormatSignedPercent(te), judge))
		if line := computeDrift(p, q); line != "" {
			out = append(out, line)
		}
		out = append(out, r.Range.verdictLines(&p)...)
		if r.Hindsight != nil {
			h := r.Hindsight.Metrics
			hv, hname := timeline.ThroughputForRanking(&h, &q)
			out = append(out, fmt.Sprintf("In hindsight, with the costs this run actually spent, the simulator is off by %s on first-sample latency and %s on %s: that is the pipeline model's own error.",
				FormatSignedPercent(RelError(float64(h.FirstLatencyNS), float64(q.FirstLatencyNS))), FormatSignedPercent(RelError(hv[0], hv[1])), hname))
		}
	}
	return out
}

// BaselineVerdict says in two plain sentences how a run m compares with a
// baseline run base (usually data parallel on the same devices): which has
// the higher steady-state throughput, and which gives the first sample
// sooner, by what factor. name and baseName name the two in the sentences.
func BaselineVerdict(m, base timeline.Metrics, name, baseName string) []string {
	var out []string
	v, _ := timeline.ThroughputForRanking(&m, &base)
	x, y := v[0], v[1]
	label := "Throughput"
	if m.TooFewSamples || base.TooFewSamples {
		label = "Throughput (overall, samples / makespan: too few samples for a steady state)"
	}
	switch r := x / y; {
	case y <= 0 || x <= 0:
		out = append(out, label+": not comparable (no throughput in one of the runs).")
	case math.Abs(r-1) < 0.01:
		out = append(out, fmt.Sprintf("%s: %s and %s are about equal (%s against %s).", label, name, baseName, FormatRate(x), FormatRate(y)))
	default:
		better := baseName
		if r > 1 {
			better = name
		}
		out = append(out, fmt.Sprintf("%s: %s delivers %s the throughput of %s (%s against %s): %s is better.",
			label, name, FormatRatio(r), baseName, FormatRate(x), FormatRate(y), better))
	}
	a, b := float64(m.FirstLatencyNS), float64(base.FirstLatencyNS)
	switch r := a / b; {
	case a <= 0 || b <= 0:
		out = append(out, "First sample: not comparable.")
	case math.Abs(r-1) < 0.01:
		out = append(out, fmt.Sprintf("First sample: %s and %s are about equal (%s against %s).", name, baseName, FormatNS(m.FirstLatencyNS), FormatNS(base.FirstLatencyNS)))
	case r > 1:
		out = append(out, fmt.Sprintf("First sample: %s is %s slower than %s (%s against %s): %s is better.",
			name, FormatRatio(r), baseName, FormatNS(m.FirstLatencyNS), FormatNS(base.FirstLatencyNS), baseName))
	default:
		out = append(out, fmt.Sprintf("First sample: %s is %s faster than %s (%s against %s): %s is better.",
			name, FormatRatio(1/r), baseName, FormatNS(m.FirstLatencyNS), FormatNS(base.FirstLatencyNS), name))
	}
	return out
}

// layoutWord names the plan's layout in a sentence: "the pipeline",
// "the hybrid layout", "this layout".
func (r *Report) layoutWord() string {
	if r.Plan == nil || len(r.Plan.Pipelines) == 0 {
		return "this layout"
	}
	switch reps, stages := len(r.Plan.Pipelines), len(r.Plan.Pipelines[0].Stages); {
	case stages > 1 && reps == 1:
		return "the pipeline"
	case stages > 1:
		return "the hybrid layout"
	}
	return "this layout"
}

func (r *Report) writePlan(md *mdWriter) {
	md.line("## Plan")
	md.line("")
	p := r.Plan
	if p == nil {
		var devs []string
		if r.Predicted != nil {
			devs = r.Predicted.Meta.Devices
		} else {
			devs = r.Measured.Meta.Devices
		}
		md.table("ll", []string{"", ""}, [][]string{
			{"plan", r.planName()},
			{"devices", strings.Join(devs, ", ")},
		})
		md.line("(No plan file was given, so the layout is not shown.)")
		md.line("")
		return
	}
	file := p.Name
	if p.File != "" {
		file += " (" + p.File + ")"
	}
	m := p.Model
	cfg := "off (one UNet pass per step)"
	if m.CFG != nil {
		cfg = fmt.Sprintf("on, guidance %g→%g over frames (two passes per step)", m.CFG.Min, m.CFG.Max)
	}
	s := p.Sampler
	l := p.Layout
	stages := 0
	if len(p.Pipelines) > 0 {
		stages = len(p.Pipelines[0].Stages)
	}
	w := p.Workload
	arrival := w.Arrival.String()
	md.table("ll", []string{"plan", "value"}, [][]string{
		{"name", file},
		{"model", fmt.Sprintf("%s, %d frames, latent %d×%d×%d (%d×%d pixels), %s", m.Family, m.Frames, m.Latent.Channels, m.Latent.Height, m.Latent.Width, m.Latent.Height*8, m.Latent.Width*8, m.Dtype)},
		{"sampler", fmt.Sprintf("%s, %d steps, sigma %g..%g, rho %g", s.Kind, s.Steps, s.SigmaMin, s.SigmaMax, s.Rho)},
		{"CFG", cfg},
		{"devices", describeDevices(p.Devices)},
		{"layout", fmt.Sprintf("%d pipeline(s) × %d stage(s), assignment %s, micro-batch %d, encode on %s, decode on %s", len(p.Pipelines), stages, l.Assignment, l.MicroBatch, l.EncodeOn, l.DecodeOn)},
		{"workload", fmt.Sprintf("%d samples, arrival %s, seed %d", w.Samples, arrival, w.Seed)},
		{"transport / hand-off", fmt.Sprintf("%s, %s hand-off, link default %s", p.Transport, l.Handoff, p.Links.Default)},
		{"costs", orDash(p.Costs)},
	})
	var rows [][]string
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			work := []string{}
			if st.Encode {
				work = append(work, "encode")
			}
			work = append(work, "unet")
			if st.Decode {
				work = append(work, "decode")
			}
			t := "—"
			if ns, ok := p.StageNS(st); ok {
				t = FormatNS(ns)
			}
			rows = append(rows, []string{
				fmt.Sprint(pl.Index), fmt.Sprint(st.Index), st.Device,
				fmt.Sprintf("%d..%d", st.First, st.Last), fmt.Sprint(st.Steps()), strings.Join(work, " + "), t,
			})
		}
	}
	md.table("rrllrlr", []string{"pipeline", "stage", "device", "steps", "count", "work", "stage time per micro-batch"}, rows)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// describeDevices is "7 × a5000, 24 GiB (gpu0..gpu6)" when the devices are
// alike, else a list.
func describeDevices(ds plan.Devices) string {
	if len(ds) == 0 {
		return "none"
	}
	one := func(d plan.Device) string {
		s := d.Kind
		if d.MemoryGB > 0 {
			s += fmt.Sprintf(", %g GiB", d.MemoryGB)
		}
		if d.Speed != 1 && d.Speed != 0 {
			s += fmt.Sprintf(", speed %g", d.Speed)
		}
		return s
	}
	alike := true
	for _, d := range ds {
		alike = alike && one(d) == one(ds[0])
	}
	if alike {
		names := ds[0].Name
		if len(ds) > 1 {
			names += ".." + ds[len(ds)-1].Name
		}
		return fmt.Sprintf("%d × %s (%s)", len(ds), one(ds[0]), names)
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Name + ": " + one(d)
	}
	return strings.Join(parts, "; ")
}

func (r *Report) writeProfile(md *mdWriter) {
	if r.Plan == nil || r.Plan.Profile == nil {
		if r.Predicted != nil && r.Predicted.Meta.Profile != "" {
			md.line("## Cost profile")
			md.line("")
			md.line("%s", mdEscape(r.Predicted.Meta.Profile))
			md.line("")
		}
		return
	}
	pv := r.Plan.Profile.Provenance
	md.line("## Cost profile")
	md.line("")
	rows := [][]string{{"file", r.Plan.Profile.File}, {"source", pv.Source}, {"date", pv.Date}}
	if pv.Machine != "" {
		rows = append(rows, []string{"machine", pv.Machine})
	}
	if pv.Runtime != "" {
		rows = append(rows, []string{"runtime", pv.Runtime})
	}
	if pv.Reference != "" {
		rows = append(rows, []string{"reference", pv.Reference})
	}
	if pv.Notes != "" {
		rows = append(rows, []string{"notes", strings.Join(strings.Fields(strings.ReplaceAll(pv.Notes, "\n", " · ")), " ")})
	}
	md.table("ll", []string{"", ""}, rows)
}

// column is one run's column in the metrics table.
type column struct {
	name string
	run  *Run
}

func (r *Report) columns() []column {
	var cols []column
	if r.Predicted != nil {
		cols = append(cols, column{"predicted", r.Predicted})
	}
	if r.Measured != nil {
		cols = append(cols, column{"measured", r.Measured})
	}
	return cols
}

func (r *Report) writeMetrics(md *mdWriter) {
	md.line("## Metrics")
	md.line("")
	cols := r.columns()
	ranged := r.Predicted != nil && r.Range.hasQuantiles()
	header := []string{"metric"}
	for _, c := range cols {
		header = append(header, c.name)
		if ranged && c.run == r.Predicted {
			header = append(header, "predicted p10–p90")
		}
	}
	if r.Baseline != nil {
		header = append(header, "data parallel (predicted)", "this layout / data parallel")
	}
	var rows [][]string
	for _, col := range timeline.Columns() {
		row := []string{col.Label}
		for _, c := range cols {
			row = append(row, col.Text(&c.run.Metrics))
			if ranged && c.run == r.Predicted {
				row = append(row, r.Range.cell(col))
			}
		}
		if r.Baseline != nil {
			row = append(row, col.Text(&r.Baseline.Metrics))
			ratio := "—"
			if r.Predicted != nil {
				if v, ok := col.Ratio(&r.Predicted.Metrics, &r.Baseline.Metrics); ok {
					ratio = FormatRatio(v)
				}
			}
			row = append(row, ratio)
		}
		rows = append(rows, row)
	}
	samples := []string{"samples"}
	for _, c := range cols {
		samples = append(samples, fmt.Sprint(c.run.Metrics.Samples))
		if ranged && c.run == r.Predicted {
			samples = append(samples, "")
		}
	}
	if r.Baseline != nil {
		samples = append(samples, fmt.Sprint(r.Baseline.Metrics.Samples), "")
	}
	rows = append(rows, samples)
	md.table("l"+strings.Repeat("r", len(header)-1), header, rows)
	if ranged {
		md.line("The predicted range is %s (see the definitions below).", r.Range.Over())
		md.line("")
	}
	if r.Baseline != nil {
		md.line("The data-parallel baseline runs the same workload on the same devices, each device running whole samples (one pipeline of one stage per device). A ratio above 1 means this layout's number is larger: better for throughput and utilisation, worse for latencies and makespan.")
		md.line("")
	} else if r.BaselineNote != "" {
		md.line("No data-parallel baseline: %s.", r.BaselineNote)
		md.line("")
	}
}

// writeErrors writes the signed error of every metric, device and stage.
func (r *Report) writeErrors(md *mdWriter) {
	p, q := &r.Predicted.Metrics, &r.Measured.Metrics
	md.line("## Prediction error")
	md.line("")
	md.line("Signed error = (predicted − measured) / measured: positive means the prediction was too high. Utilisation errors are in percentage points.")
	md.line("")
	var rows [][]string
	checked := r.Range != nil && len(r.Range.Checks) > 0
	for _, col := range timeline.Columns() {
		a, b := col.Get(p), col.Get(q)
		row := []string{col.Label, col.Format(a), col.Format(b), col.Error(a, b)}
		if checked {
			row = append(row, r.Range.checkCell(col))
		}
		if r.Hindsight != nil {
			c := col.Get(&r.Hindsight.Metrics)
			row = append(row, col.Format(c), col.Error(c, b))
		}
		rows = append(rows, row)
	}
	header := []string{"metric", "predicted", "measured", "error"}
	if checked {
		header = append(header, "measured against predicted p10–p90")
	}
	if r.Hindsight != nil {
		md.table("lrrr"+strings.Repeat("r", len(header)-2), append(header, "hindsight", "hindsight error"), rows)
		md.line("")
		md.line("*Hindsight* is the same simulation with the costs this run actually spent, read off its own spans: " +
			"each piece of work of each sample (host work, encode, steps, decode, hand-off) as long as it took in the run. " +
			"It is not a prediction: its error is the pipeline model's own (scheduling, hand-offs, waits); the rest of the " +
			"prediction's error came from the costs.")
	} else {
		md.table("lrrr"+strings.Repeat("r", len(header)-4), header, rows)
	}

	rows = nil
	for _, name := range deviceNames(p, q) {
		dp, okp := p.Device(name)
		dq, okq := q.Device(name)
		row := []string{name, "—", "—", "—", "—", "—", "—"}
		if okp {
			row[1], row[4] = FormatPercent(dp.Utilisation), FormatNS(dp.BusyNS)
		}
		if okq {
			row[2], row[5] = FormatPercent(dq.Utilisation), FormatNS(dq.BusyNS)
		}
		if okp && okq {
			row[3] = FormatSignedPP(dp.Utilisation - dq.Utilisation)
			row[6] = FormatSignedPercent(RelError(float64(dp.BusyNS), float64(dq.BusyNS)))
		}
		rows = append(rows, row)
	}
	md.line("### Per device")
	md.line("")
	md.table("lrrrrrr", []string{"device", "utilisation predicted", "utilisation measured", "error", "busy predicted", "busy measured", "busy error"}, rows)

	rows = nil
	for _, k := range stageKeys(p, q) {
		sp, okp := p.Stage(k.Pipeline, k.Stage)
		sq, okq := q.Stage(k.Pipeline, k.Stage)
		devs := strings.Join(slices.Compact(append(append([]string(nil), sp.Devices...), sq.Devices...)), ", ")
		row := []string{fmt.Sprint(k.Pipeline), fmt.Sprint(k.Stage), devs, "—", "—", "—"}
		if okp {
			row[3] = FormatNS(sp.BusyNS)
		}
		if okq {
			row[4] = FormatNS(sq.BusyNS)
		}
		if okp && okq {
			row[5] = FormatSignedPercent(RelError(float64(sp.BusyNS), float64(sq.BusyNS)))
		}
		rows = append(rows, row)
	}
	md.line("### Per stage")
	md.line("")
	md.line("Busy time of each (pipeline, stage) over the whole run, so that a stage predicted too fast and another too slow do not hide behind a good total.")
	md.line("")
	md.table("rrlrrr", []string{"pipeline", "stage", "device", "busy predicted", "busy measured", "error"}, rows)
}

func deviceNames(ms ...*timeline.Metrics) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range ms {
		for _, d := range m.Devices {
			if !seen[d.Device] {
				seen[d.Device] = true
				out = append(out, d.Device)
			}
		}
	}
	return out
}

func stageKeys(ms ...*timeline.Metrics) []timeline.StageKey {
	seen := map[timeline.StageKey]bool{}
	var out []timeline.StageKey
	for _, m := range ms {
		for _, s := range m.Stages {
			if !seen[s.StageKey] {
				seen[s.StageKey] = true
				out = append(out, s.StageKey)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pipeline != out[j].Pipeline {
			return out[i].Pipeline < out[j].Pipeline
		}
		return out[i].Stage < out[j].Stage
	})
	return out
}

// writeDevices writes each run's per-device utilisation and idle split.
func (r *Report) writeDevices(md *mdWriter) {
	runs := r.columns()
	if r.Baseline != nil {
		runs = append(runs, column{"data parallel (predicted)", r.Baseline})
	}
	md.line("## Devices")
	md.line("")
	md.line("Idle time is split into fill (before the device's first work), drain (after its last) and between (gaps, including waits for a hand-off).")
	md.line("")
	for _, c := range runs {
		md.line("### %s", capitalise(c.name))
		md.line("")
		var rows [][]string
		for _, d := range c.run.Metrics.Devices {
			rows = append(rows, []string{d.Device, FormatPercent(d.Utilisation), FormatNS(d.BusyNS),
				FormatNS(d.FillNS), FormatNS(d.DrainNS), FormatNS(d.BetweenNS), FormatNS(d.WarmupNS)})
		}
		md.table("lrrrrrr", []string{"device", "utilisation", "busy", "idle: fill", "idle: drain", "idle: between", "warm-up"}, rows)
	}
}

func (r *Report) writeSources(md *mdWriter) {
	md.line("## Where the numbers come from")
	md.line("")
	var rows [][]string
	add := func(name string, run *Run) {
		if run == nil {
			return
		}
		m := run.Meta
		var vs []string
		keys := make([]string, 0, len(m.Versions))
		for k := range m.Versions {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vs = append(vs, k+" "+m.Versions[k])
		}
		rows = append(rows, []string{name, orDash(m.Source), orDash(m.Machine), orDash(strings.Join(vs, ", ")), orDash(m.Created)})
	}
	add("predicted", r.Predicted)
	add("measured", r.Measured)
	add("data parallel", r.Baseline)
	md.table("lllll", []string{"run", "source", "machine", "versions", "created"}, rows)
	for _, c := range []column{{"predicted", r.Predicted}, {"measured", r.Measured}} {
		if c.run == nil || len(c.run.Meta.Notes) == 0 {
			continue
		}
		md.line("Notes on the %s run:", c.name)
		md.line("")
		for _, n := range c.run.Meta.Notes {
			md.line("- %s", n)
		}
		md.line("")
	}
}

// computeDrift says when the stages' compute itself (busy time summed over
// all stages) differs between prediction and measurement by more than 3%.
// That part of an error comes from the per-step costs, not from the
// pipeline model: on a shared machine, its speed between profiling and the
// run. It returns "" when the compute agrees.
func computeDrift(pred, meas timeline.Metrics) string {
	var bp, bm int64
	for _, st := range pred.Stages {
		bp += st.BusyNS
	}
	for _, st := range meas.Stages {
		bm += st.BusyNS
	}
	e := RelError(float64(bp), float64(bm))
	if math.IsNaN(e) || math.Abs(e) <= 0.03 {
		return ""
	}
	return fmt.Sprintf("The stages' compute itself differed from the cost profile (busy time over all stages: %s predicted, %s measured, %s), "+
		"so this part of the error is in the per-step costs, "+
		"not the pipeline model: the machine ran at another speed during the run than while profiling "+
		"(shared or throttled CPUs), or the profile is stale. Profile again right before the run, with more --reps.",
		FormatNS(bp), FormatNS(bm), FormatSignedPercent(e))
}
