package reports

import (
	"bytes"
	"strings"
	"testing"
)

func TestWritePareto(t *testing.T) {
	pts := []ParetoPoint{
		{Label: "7×1 mb 1", Throughput: 0.73, FirstLatencyS: 9.8, Frontier: true, Best: true},
		{Label: "1×7 balanced mb 1 buffered", Throughput: 0.71, FirstLatencyS: 12.8},
		{Label: "2×3 even mb 1 blocking", Throughput: 0.6, FirstLatencyS: 10.3},
	}
	var buf bytes.Buffer
	if err := WritePareto(&buf, "pareto", pts); err != nil {
		t.Fatal(err)
	}
	img, cols := decodePNG(t, buf.Bytes())
	if img.Bounds().Dx() != 1200 || img.Bounds().Dy() != 800 {
		t.Errorf("size %v, want 1200x800", img.Bounds())
	}
	if n := cols[toRGBA(seriesColours[0])]; n < 20 { // the frontier
		t.Errorf("the frontier's colour covers %d pixels", n)
	}
	ring := 0 // the winner's ring, vermillion (antialiased: count reddish pixels)
	for c, n := range cols {
		if int(c.R) > int(c.G)+60 && int(c.R) > int(c.B)+60 {
			ring += n
		}
	}
	if ring < 20 {
		t.Errorf("the winner's ring covers %d pixels", ring)
	}
	for _, bad := range [][]ParetoPoint{nil, {{Label: "nan", Throughput: -1}}} {
		if err := WritePareto(&buf, "", bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestRenderSearchMarkdown(t *testing.T) {
	r := SearchReport{
		Title: "search", Goal: "the highest steady-state throughput", Constraints: []string{"at most 7 devices"},
		Top: []SearchRow{
			{Rank: 1, Label: "data parallel 7×1", Devices: 7, Throughput: 0.731, FirstLatencyS: 9.79, P95S: 19.1, Why: "best; 3.3% more throughput than the next"},
			{Rank: 2, Label: "pipeline 1×7", Devices: 7, Throughput: 0.708, FirstLatencyS: 12.8, P95S: 25.5, Why: "3.19% less throughput than the best"},
		},
		Losses: []SearchLoss{{Reason: "bound", Count: 714, Example: "pipeline 1×6: throughput at most 0.725 samples/s"}},
		Winner: "winner.yaml",
	}
	var buf bytes.Buffer
	if err := RenderSearchMarkdown(&buf, r); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"**Winner: data parallel 7×1**", "[winner.yaml](winner.yaml)", "| 2 | pipeline 1×7 | 7 | 0.708 samples/s |", "| bound | 714 |", "Constraint: at most 7 devices."} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	r.Top, r.Winner = nil, ""
	buf.Reset()
	if err := RenderSearchMarkdown(&buf, r); err != nil || !strings.Contains(buf.String(), "No layout meets the constraints") {
		t.Errorf("no winner: %v\n%s", err, buf.String())
	}
	if err := RenderSearchMarkdown(&buf, SearchReport{}); err == nil {
		t.Error("empty report: no error")
	}
}
