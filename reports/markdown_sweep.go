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
	// Metrics are the run's metrics; nil when the layout could not run.
	Metrics *timeline.Metrics
	// Err says why the layout could not run.
	Err string
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
// first-sample latency, makespan and mean utilisation.
func SweepTable(rows []SweepRow) (header []string, cells [][]string) {
	base := 0.0
	baseDevs := 0
	for _, r := range rows {
		if r.Metrics != nil && r.Metrics.Throughput > 0 && (baseDevs == 0 || r.Devices < baseDevs) {
			base, baseDevs = r.Metrics.Throughput, r.Devices
		}
	}
	vs := "vs 1 device"
	if baseDevs > 1 {
		vs = fmt.Sprintf("vs %d devices", baseDevs)
	}
	header = []string{"devices", "layout", "pipelines × stages", "throughput", vs, "first-sample latency", "makespan", "mean utilisation"}
	for _, r := range rows {
		row := []string{fmt.Sprint(r.Devices), r.Layout, fmt.Sprintf("%d × %d", r.Replicas, r.Stages)}
		if r.Metrics == nil {
			why := r.Err
			if why == "" {
				why = "did not run"
			}
			row = append(row, "—", "—", "—", "—", "— ("+why+")")
		} else {
			m := r.Metrics
			speed := "—"
			if base > 0 {
				speed = FormatRatio(m.Throughput / base)
			}
			row = append(row, FormatRate(m.Throughput), speed, FormatNS(m.FirstLatencyNS), FormatNS(m.MakespanNS), FormatPercent(meanUtil(m)))
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
		md.line("> **Warning:** %s (profile source: %s).", CostWarning, r.Plan.Profile.Provenance.Source)
		md.line("")
	}
	if r.Plan != nil {
		p := r.Plan
		md.line("Model %s, %d frames, latent %d×%d×%d, %s; %d sampler steps; %d samples per run (%s arrival); costs %s.",
			p.Model.Family, p.Model.Frames, p.Model.Latent.Channels, p.Model.Latent.Height, p.Model.Latent.Width, p.Model.Dtype,
			p.Sampler.Steps, p.Workload.Samples, p.Workload.Arrival.Kind, orDash(p.Costs))
		md.line("")
	}
	md.line("Layouts: **pipeline** is one pipeline whose stages split the sampler steps over all devices; **data parallel** is one whole-sample pipeline per device; **hybrid** is several pipelines of several stages.")
	md.line("")
	header, cells := SweepTable(r.Rows)
	md.table("rllrrrrr", header, cells)
	for _, im := range r.Images {
		md.line("![%s](%s)", mdEscape(im.Title), im.Path)
		md.line("")
	}
	md.line("## Definitions")
	md.line("")
	for _, d := range timeline.Definitions()[:3] {
		md.line("- **%s.** %s", d.Name, strings.TrimPrefix(d.Text, capitalise(d.Name)+": "))
	}
	if _, err := w.Write(md.buf.Bytes()); err != nil {
		return fmt.Errorf("reports: sweep markdown: %w", err)
	}
	return nil
}
