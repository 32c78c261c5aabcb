// Package reports turns timelines into pictures and documents: Gantt charts
// (a lane per device, spans coloured by kind, a prediction and a
// measurement stacked on one time axis), scaling charts (throughput and
// first-sample latency against device count, per layout), and Markdown
// reports.
//
// A report (WriteMarkdown) puts a plan, its cost profile's provenance, the
// metrics of a predicted run, a measured run or both, the data-parallel
// baseline and, when both sides are there, the signed error of every
// metric, device and stage, (predicted − measured) / measured, so that
// errors that cancel out in a total are seen. Given a predicted range
// (Range: p10–p90 of each metric over seeded simulations), it shows the
// range beside the prediction and says whether the measurement fell
// inside it. The metrics, their labels,
// definitions and formats come from timeline's column table
// (timeline.Columns), which the CLIs use too, so that the terminal, the
// JSON and the report read the same; the Format functions here are
// timeline's, for numbers outside a column.
//
// Pictures are golden-tested through the data behind them (GanttLayout,
// ScalingData), and the PNGs only smoke-tested: rendering differs between
// CPU architectures. Markdown is golden-tested as text.
package reports
