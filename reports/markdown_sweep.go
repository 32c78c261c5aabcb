package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vdpp/vdpp/internal/atomicfile"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// SweepRow is one simulated layout of a sweep.
type SweepRow struct {
	Layout   string // "pipeline", "data parallel", "hybrid"
	Devices  int
	Replicas int // pipelines
	Stages   int // stages per pipeline
	// Series names the line of the scaling chart the row belongs to (see
	// SweepSeries); empty: not charted.
	Series string
	// Metrics are the run's metrics; nil when the layout could not run.
	Metrics *timeline.Metrics
	// Err says why the layout could not run (one line per problem).
	Err string
}

// SweepSeries returns the scaling chart's series of a sweep: one per
// Series name of the rows that ran, in order of first appearance. Their
// throughput is the figure the rows are compared by (sweepThroughput).
func SweepSeries(rows []SweepRow) []ScalingSeries {
	var out []ScalingSeries
	index := map[string]int{}
	tput, steady := sweepThroughput(rows)
	for _, r := range rows {
		if r.Metrics == nil || r.Series == "" {
			continue
		}
		i, ok := index[r.Series]
		if !ok {
			i = len(out)
			index[r.Series] = i
			out = append(out, ScalingSeries{Name: r.Series})
		}
		out[i].Points = append(out[i].Points, ScalingPoint{
			Devices: r.Devices, Throughput: tput(r.Metrics), FirstLatencyS: timeline.Seconds(r.Metrics.FirstLatencyNS), Overall: !steady,
		})
	}
	return out
}

// sweepThroughput is the figure by which the rows of a sweep are
// compared: the steady-state throughput when every row that ran has a
// meaningful one, else every row's overall throughput (samples /
// makespan; see timeline.DefSteadyState).
func sweepThroughput(rows []SweepRow) (get func(m *timeline.Metrics) float64, steady bool) {
	var ms []*timeline.Metrics
	for _, r := range rows {
		if r.Metrics != nil {
			ms = append(ms, r.Metrics)
		}
	}
	_, name := timeline.ThroughputForRanking(ms...)
	if name == "steady-state throughput" {
		return func(m *timeline.Metrics) float64 { return m.Throughput }, true
	}
	return func(m *timeline.Metrics) float64 { return m.OverallThroughput }, false
}

// sweepColumns are the metrics of a sweep's table after throughput (and
// its speed-up against the fewest devices), by column key.
var sweepColumns = []string{"overall_throughput", "first_latency", "makespan", "mean_utilisation"}

func sweepColumn(key string) timeline.Column {
	c, ok := timeline.LookupColumn(key)
	if !ok {
		panic("reports: sweep: no metric column " + key) // caught by the tests
	}
	return c
}

// SweepReport is what WriteSweepMarkdown writes.
type SweepReport struct {
	Title  string // empty: "vdpp sweep: PLAN"
	Plan   *plan.Plan
	Rows   []SweepRow
	Images []Image
}

// SweepTable returns the header and the cells of a sweep's table, as the
// Markdown report and the CLI print it: per row the device count, layout,
// pipelines × stages, throughput, throughput against the fewest devices,
// overall throughput, first-sample latency, makespan and mean utilisation
// (the columns of sweepColumns). Throughput against the fewest devices is
// by steady-state throughput, or by overall throughput when a row has too
// few samples for a steady state (see sweepThroughput).
func SweepTable(rows []SweepRow) (header []string, cells [][]string) {
	get, steady := sweepThroughput(rows)
	base := 0.0
	baseDevs := 0
	for _, r := range rows {
		if r.Metrics != nil && get(r.Metrics) > 0 && (baseDevs == 0 || r.Devices < baseDevs) {
			base, baseDevs = get(r.Metrics), r.Devices
		}
	}
	vs := "vs 1 device"
	if baseDevs > 1 {
		vs = fmt.Sprintf("vs %d devices", baseDevs)
	}
	if !steady {
		vs += " (overall)"
	}
	tput := sweepColumn("throughput")
	header = []string{"devices", "layout", "pipelines × stages", tput.ShortLabel(), vs}
	var cols []timeline.Column
	for _, k := range sweepColumns {
		cols = append(cols, sweepColumn(k))
		header = append(header, cols[len(cols)-1].ShortLabel())
	}
	for _, r := range rows {
		row := []string{fmt.Sprint(r.Devices), r.Layout, fmt.Sprintf("%d × %d", r.Replicas, r.Stages)}
		if r.Metrics == nil {
			why := strings.ReplaceAll(r.Err, "\n", "; ")
			if why == "" {
				why = "did not run"
			}
			for range len(cols) + 1 { // throughput, speed-up, all but the last column
				row = append(row, "—")
			}
			row = append(row, "— ("+why+")")
			cells = append(cells, row)
			continue
		}
		speed := "—"
		if base > 0 {
			speed = FormatRatio(get(r.Metrics) / base)
		}
		row = append(row, tput.Text(r.Metrics), speed)
		for _, c := range cols {
			row = append(row, c.Text(r.Metrics))
		}
		cells = append(cells, row)
	}
	return header, cells
}

// WriteSweepMarkdown writes a sweep's table (see SweepTable) and its charts
// as Markdown to path, atomically.
func WriteSweepMarkdown(path string, r SweepReport) error {
	var buf bytes.Buffer
	if err := RenderSweepMarkdown(&buf, r); err != nil {
		return err
	}
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return fmt.Errorf("reports: sweep markdown: %w", err)
	}
	return nil
}

// RenderSweepMarkdown writes a sweep report as Markdown to w.
func RenderSweepMarkdown(w io.Writer, r SweepReport) error {
	if len(r.Rows) == 0 {
		return errors.New("reports: sweep markdown: no rows")
	}
	md := &mdWriter{}
	name := "(unnamed plan)"
	if r.Plan != nil {
		name = r.Plan.Name
	}
	title := r.Title
	if title == "" {
		title = "vdpp sweep: " + name
	}
	md.line("# %s", title)
	md.line("")
	if r.Plan != nil && r.Plan.Profile != nil && r.Plan.Profile.Provenance.Source != "measured" {
		md.line("> **Warning:** %s (profile source: %s).", CostWarningFor(r.Plan.Profile.Provenance.Source), r.Plan.Profile.Provenance.Source)
		md.line("")
	}
	if r.Plan != nil {
		p := r.Plan
		md.line("Model %s, %d frames, latent %d×%d×%d, %s; %d sampler steps; %d samples per run, arrival %s; costs %s.",
			p.Model.Family, p.Model.Frames, p.Model.Latent.Channels, p.Model.Latent.Height, p.Model.Latent.Width, p.Model.Dtype,
			p.Sampler.Steps, p.Workload.Samples, p.Workload.Arrival, orDash(p.Costs))
		md.line("")
	}
	md.line("Layouts: **pipeline** is one pipeline whose stages split the sampler steps over all devices; **data parallel** is one whole-sample pipeline per device; **hybrid** is several pipelines of several stages.")
	md.line("")
	header, cells := SweepTable(r.Rows)
	md.table("rllrrrrrr", header, cells)
	if _, steady := sweepThroughput(r.Rows); !steady {
		md.line("Too few samples for a steady state in some layouts (their steady-state throughput is n/a): the rows are compared, and charted, by overall throughput, samples / makespan.")
		md.line("")
	}
	for _, im := range r.Images {
		md.line("![%s](%s)", mdEscape(im.Title), im.Path)
		md.line("")
	}
	md.line("## Definitions")
	md.line("")
	shown := map[string]bool{sweepColumn("throughput").Label: true}
	for _, k := range sweepColumns {
		shown[sweepColumn(k).Label] = true
	}
	for _, d := range timeline.Definitions() {
		if shown[d.Name] {
			md.line("- **%s.** %s", d.Name, strings.TrimPrefix(d.Text, capitalise(d.Name)+": "))
		}
	}
	if _, err := w.Write(md.buf.Bytes()); err != nil {
		return fmt.Errorf("reports: sweep markdown: %w", err)
	}
	return nil
}
