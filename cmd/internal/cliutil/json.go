package cliutil

import (
	"github.com/vdpp/vdpp/timeline"
)

// MetricsJSON is the JSON form of timeline.Metrics that the CLIs print
// (--json) and write (metrics.json): the same numbers, integer nanoseconds
// and rates per second, with snake_case names.
type MetricsJSON struct {
	Samples            int            `json:"samples"`
	FirstLatencyNS     int64          `json:"first_latency_ns"`
	FirstSample        int            `json:"first_sample"`
	Throughput         float64        `json:"throughput_per_s"`
	ThroughputWindowNS int64          `json:"throughput_window_ns"`
	MakespanNS         int64          `json:"makespan_ns"`
	LatencyMeanNS      float64        `json:"latency_mean_ns"`
	LatencyP50NS       int64          `json:"latency_p50_ns"`
	LatencyP95NS       int64          `json:"latency_p95_ns"`
	LatencyP99NS       int64          `json:"latency_p99_ns"`
	LatencyMinNS       int64          `json:"latency_min_ns"`
	LatencyMaxNS       int64          `json:"latency_max_ns"`
	LatencyExact       bool           `json:"latency_exact"`
	WarmupNS           int64          `json:"warmup_ns"`
	Devices            []DeviceJSON   `json:"devices"`
	Stages             []StageJSON    `json:"stages"`
	SpanCounts         map[string]int `json:"span_counts"`
}

// DeviceJSON is one device's metrics (timeline.DeviceMetrics).
type DeviceJSON struct {
	Device      string  `json:"device"`
	BusyNS      int64   `json:"busy_ns"`
	Utilisation float64 `json:"utilisation"`
	IdleNS      int64   `json:"idle_ns"`
	FillNS      int64   `json:"fill_ns"`
	DrainNS     int64   `json:"drain_ns"`
	BetweenNS   int64   `json:"between_ns"`
	WaitNS      int64   `json:"wait_ns"`
	SendNS      int64   `json:"send_ns"`
	RecvNS      int64   `json:"recv_ns"`
	WarmupNS    int64   `json:"warmup_ns"`
}

// StageJSON is one stage's busy time (timeline.StageMetrics).
type StageJSON struct {
	Pipeline int      `json:"pipeline"`
	Stage    int      `json:"stage"`
	Devices  []string `json:"devices"`
	BusyNS   int64    `json:"busy_ns"`
	StepNS   int64    `json:"step_ns"`
}

// NewMetricsJSON converts m to its JSON form.
func NewMetricsJSON(m timeline.Metrics) MetricsJSON {
	j := MetricsJSON{
		Samples: m.Samples, FirstLatencyNS: m.FirstLatencyNS, FirstSample: m.FirstSample,
		Throughput: m.Throughput, ThroughputWindowNS: m.ThroughputWindowNS, MakespanNS: m.MakespanNS,
		LatencyMeanNS: m.LatencyMeanNS, LatencyP50NS: m.LatencyP50NS, LatencyP95NS: m.LatencyP95NS,
		LatencyP99NS: m.LatencyP99NS, LatencyMinNS: m.LatencyMinNS, LatencyMaxNS: m.LatencyMaxNS,
		LatencyExact: m.LatencyExact, WarmupNS: m.WarmupNS,
		Devices: []DeviceJSON{}, Stages: []StageJSON{}, SpanCounts: map[string]int{},
	}
	for _, d := range m.Devices {
		j.Devices = append(j.Devices, DeviceJSON{
			Device: d.Device, BusyNS: d.BusyNS, Utilisation: d.Utilisation, IdleNS: d.IdleNS,
			FillNS: d.FillNS, DrainNS: d.DrainNS, BetweenNS: d.BetweenNS, WaitNS: d.WaitNS,
			SendNS: d.SendNS, RecvNS: d.RecvNS, WarmupNS: d.WarmupNS,
		})
	}
	for _, s := range m.Stages {
		j.Stages = append(j.Stages, StageJSON{Pipeline: s.Pipeline, Stage: s.Stage, Devices: s.Devices, BusyNS: s.BusyNS, StepNS: s.StepNS})
	}
	for k, v := range m.SpanCounts {
		j.SpanCounts[string(k)] = v
	}
	return j
}
