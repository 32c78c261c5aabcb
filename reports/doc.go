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
// errors that cancel out in a total are seen. Numbers are written with
// three significant digits and their unit by the Format functions, which
// the CLIs use too, so that the terminal and the report read the same.
//
// Pictures are golden-tested through the data behind them (GanttLayout,
// ScalingData), and the PNGs only smoke-tested: rendering differs between
// CPU architectures. Markdown is golden-tested as text.
package reports
