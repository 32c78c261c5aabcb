package reports

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// SearchRow is one candidate of a layout search in a report's table.
type SearchRow struct {
	Rank          int // 1 for the winner; 0 for one that lost
	Label         string
	Devices       int
	Throughput    float64 // samples/s
	FirstLatencyS float64
	P95S          float64
	Rate          float64 // the rate goal's sustained rate; 0: not searched
	Why           string  // its place, or why it lost
}

// SearchLoss counts the candidates that lost for one reason, with one of
// them as an example.
type SearchLoss struct {
	Reason  string
	Count   int
	Example string
}

// SearchReport is what WriteSearchMarkdown writes.
type SearchReport struct {
	Title       string // empty: "vdpp search: PLAN"
	Plan        *plan.Plan
	Goal        string   // in words: "the highest steady-state throughput"
	Constraints []string // in words, one a line
	Top         []SearchRow
	Losses      []SearchLoss
	Notes       []string
	Images      []Image
	Winner      string // the winning plan's file, relative to the report
}

// WriteSearchMarkdown writes the search report to path, atomically.
func WriteSearchMarkdown(path string, r SearchReport) error {
	return writeFile(path, "search markdown", func(w io.Writer) error { return RenderSearchMarkdown(w, r) })
}

// RenderSearchMarkdown writes a search report as Markdown to w: the goal
// and constraints, the winner, the top candidates with their margins, why
// the others lost, the charts and the notes.
func RenderSearchMarkdown(w io.Writer, r SearchReport) error {
	if len(r.Top) == 0 && len(r.Losses) == 0 {
		return errors.New("reports: search markdown: no candidates")
	}
	md := &mdWriter{}
	title := r.Title
	if title == "" && r.Plan != nil {
		title = "vdpp search: " + r.Plan.Name
	}
	md.line("# %s", title)
	md.line("")
	if r.Plan != nil && r.Plan.Profile != nil && r.Plan.Profile.Provenance.Source != "measured" {
		md.line("> **Warning:** %s (profile source: %s).", CostWarningFor(r.Plan.Profile.Provenance.Source), r.Plan.Profile.Provenance.Source)
		md.line("")
	}
	md.line("Goal: %s.", r.Goal)
	for _, c := range r.Constraints {
		md.line("Constraint: %s.", c)
	}
	md.line("")
	if len(r.Top) > 0 && r.Top[0].Rank == 1 {
		md.line("**Winner: %s** — %s.", mdEscape(r.Top[0].Label), mdEscape(r.Top[0].Why))
		if r.Winner != "" {
			md.line("Its plan: [%s](%s), which vdsim and vdexec take as it is.", r.Winner, r.Winner)
		}
	} else {
		md.line("**No layout meets the constraints.**")
	}
	md.line("")
	writeSearchTop(md, r.Top)
	writeSearchLosses(md, r.Losses)
	for _, im := range r.Images {
		md.line("![%s](%s)", mdEscape(im.Title), im.Path)
		md.line("")
		md.line("*%s*", mdEscape(im.Title))
		md.line("")
	}
	if len(r.Notes) > 0 {
		md.line("## Notes")
		md.line("")
		for _, n := range r.Notes {
			md.line("- %s", mdEscape(n))
		}
		md.line("")
	}
	if _, err := w.Write(md.buf.Bytes()); err != nil {
		return fmt.Errorf("reports: search markdown: %w", err)
	}
	return nil
}

func writeSearchTop(md *mdWriter, top []SearchRow) {
	if len(top) == 0 {
		return
	}
	md.line("## Best candidates")
	md.line("")
	rate := false
	for _, t := range top {
		rate = rate || t.Rate > 0
	}
	header := []string{"rank", "layout", "devices", "throughput", "first-sample latency", "p95 latency"}
	align := "rlrrrr"
	if rate {
		header, align = append(header, "sustained rate"), align+"r"
	}
	header, align = append(header, "margin"), align+"l"
	var rows [][]string
	for _, t := range top {
		row := []string{strconv.Itoa(t.Rank), t.Label, strconv.Itoa(t.Devices), timeline.FormatRate(t.Throughput),
			timeline.FormatSeconds(t.FirstLatencyS), timeline.FormatSeconds(t.P95S)}
		if rate {
			row = append(row, timeline.FormatRate(t.Rate))
		}
		rows = append(rows, append(row, t.Why))
	}
	md.table(align, header, rows)
	md.line("")
}

func writeSearchLosses(md *mdWriter, losses []SearchLoss) {
	if len(losses) == 0 {
		return
	}
	md.line("## Why the others lost")
	md.line("")
	var rows [][]string
	for _, l := range losses {
		rows = append(rows, []string{l.Reason, strconv.Itoa(l.Count), l.Example})
	}
	md.table("lrl", []string{"reason", "candidates", "for example"}, rows)
	md.line("")
}
