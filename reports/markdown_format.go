package reports

import "github.com/vdpp/vdpp/timeline"

// The number formats of reports and CLI tables live with the metric table
// in timeline (timeline.FormatSeconds and the rest); these names stay for
// the callers that format numbers outside a column.

// FormatSeconds is timeline.FormatSeconds: 10.3 s, 812 ms, 45.0 µs.
func FormatSeconds(s float64) string { return timeline.FormatSeconds(s) }

// FormatNS is timeline.FormatNS: integer nanoseconds as FormatSeconds.
func FormatNS(ns int64) string { return timeline.FormatNS(ns) }

// FormatRate is timeline.FormatRate: "0.868 samples/s", or "n/a" for 0.
func FormatRate(perS float64) string { return timeline.FormatRate(perS) }

// FormatPercent is timeline.FormatPercent: 0.873 → "87.3%".
func FormatPercent(frac float64) string { return timeline.FormatPercent(frac) }

// FormatRatio is timeline.FormatRatio: "1.15×".
func FormatRatio(r float64) string { return timeline.FormatRatio(r) }

// FormatSignedPercent is timeline.FormatSignedPercent: "+2.31%", "−0.512%".
func FormatSignedPercent(frac float64) string { return timeline.FormatSignedPercent(frac) }

// FormatSignedPP is timeline.FormatSignedPP: "+1.20 pp".
func FormatSignedPP(diff float64) string { return timeline.FormatSignedPP(diff) }

// RelError is timeline.RelError: (predicted − measured) / measured.
func RelError(predicted, measured float64) float64 { return timeline.RelError(predicted, measured) }
