package timeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Thread ids of a device's streams in a Chrome trace.
var streamTID = map[Stream]int{StreamCompute: 1, StreamSend: 2, StreamRecv: 3}

// streams in track order.
var streams = []Stream{StreamCompute, StreamSend, StreamRecv}

// traceEvent is one Chrome trace event. Field order is fixed by the struct
// so the output is deterministic.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	TS   json.Number    `json:"ts,omitempty"`
	Dur  json.Number    `json:"dur,omitempty"`
	PID  int            `json:"pid"`
	TID  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// micros formats integer nanoseconds as microseconds with three decimals,
// exactly.
func micros(ns int64) json.Number {
	neg := ns < 0
	if neg {
		ns = -ns
	}
	s := strconv.FormatInt(ns/1000, 10) + "." + fmt.Sprintf("%03d", ns%1000)
	if neg {
		s = "-" + s
	}
	return json.Number(s)
}

// spanName is the slice label in a trace viewer.
func spanName(s *Span) string {
	label := string(s.Kind)
	if s.Kind == KindStep {
		if s.FirstStep == s.LastStep {
			label += " " + strconv.Itoa(s.FirstStep)
		} else {
			label += " " + strconv.Itoa(s.FirstStep) + "-" + strconv.Itoa(s.LastStep)
		}
	}
	if len(s.Samples) > 0 {
		label += " " + SampleLabel(s.Samples)
	}
	return label
}

// SampleLabel formats sample ids briefly: "s3", "s3+5", "s3-6" for a
// consecutive run of more than two.
func SampleLabel(ids []int) string {
	switch len(ids) {
	case 0:
		return ""
	case 1:
		return "s" + strconv.Itoa(ids[0])
	}
	consecutive := true
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			consecutive = false
			break
		}
	}
	if consecutive && len(ids) > 2 {
		return "s" + strconv.Itoa(ids[0]) + "-" + strconv.Itoa(ids[len(ids)-1])
	}
	out := "s" + strconv.Itoa(ids[0])
	for _, id := range ids[1:] {
		out += "+" + strconv.Itoa(id)
	}
	return out
}

// DeviceOrder returns the devices of t in lane order: t.Meta.Devices first,
// then any device that appears only in spans, in order of first appearance.
func DeviceOrder(t *Timeline) []string {
	seen := make(map[string]bool, len(t.Meta.Devices))
	var out []string
	for _, d := range t.Meta.Devices {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for i := range t.Spans {
		if d := t.Spans[i].Device; !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// WriteTrace writes t in the Chrome trace event format, which Perfetto
// (ui.perfetto.dev) and chrome://tracing open. Each device is a process,
// in the order of DeviceOrder; each of its streams (compute, send, recv)
// is a thread, so slices never overlap on a track of a valid timeline.
// Spans are complete events ("ph":"X") with ts and dur in microseconds;
// their args carry the sample ids, step range, pipeline, stage, peer and
// warm-up flag. Sample releases and completions are instant events on a
// "samples" process after the devices.
func WriteTrace(w io.Writer, t *Timeline) error {
	if t == nil {
		return fmt.Errorf("timeline: write trace: nil timeline")
	}
	tw := &traceWriter{bw: bufio.NewWriter(w), first: true}
	devs := DeviceOrder(t)
	title := t.Meta.Plan
	if t.Meta.Source != "" {
		title += " (" + t.Meta.Source + ")"
	}
	tw.bw.WriteString("{\"displayTimeUnit\":\"ms\",\"otherData\":")
	other, err := json.Marshal(map[string]any{"plan": t.Meta.Plan, "source": t.Meta.Source, "machine": t.Meta.Machine, "title": title})
	if err != nil {
		return fmt.Errorf("timeline: write trace: %w", err)
	}
	tw.bw.Write(other)
	tw.bw.WriteString(",\"traceEvents\":[\n")
	pid := make(map[string]int, len(devs))
	for i, d := range devs {
		pid[d] = i + 1
		tw.device(i+1, i, d)
	}
	for i := range t.Spans {
		tw.span(&t.Spans[i], pid[t.Spans[i].Device])
	}
	if len(t.Samples) > 0 {
		tw.samples(len(devs)+1, len(devs), t.Samples)
	}
	tw.bw.WriteString("\n]}\n")
	if tw.err == nil {
		tw.err = tw.bw.Flush()
	}
	if tw.err != nil {
		return fmt.Errorf("timeline: write trace: %w", tw.err)
	}
	return nil
}

// traceWriter writes trace events separated by commas, keeping the first
// error.
type traceWriter struct {
	bw    *bufio.Writer
	first bool
	err   error
}

func (tw *traceWriter) emit(evs ...traceEvent) {
	for i := range evs {
		if tw.err != nil {
			return
		}
		b, err := json.Marshal(&evs[i])
		if err != nil {
			tw.err = err
			return
		}
		if !tw.first {
			tw.bw.WriteString(",\n")
		}
		tw.first = false
		tw.bw.Write(b)
	}
}

// device writes the process and thread names of device d (process p, at
// position i), one thread per stream.
func (tw *traceWriter) device(p, i int, d string) {
	tw.emit(
		traceEvent{Name: "process_name", Ph: "M", PID: p, Args: map[string]any{"name": d}},
		traceEvent{Name: "process_sort_index", Ph: "M", PID: p, Args: map[string]any{"sort_index": i}},
	)
	for _, st := range streams {
		tid := streamTID[st]
		tw.emit(
			traceEvent{Name: "thread_name", Ph: "M", PID: p, TID: tid, Args: map[string]any{"name": string(st)}},
			traceEvent{Name: "thread_sort_index", Ph: "M", PID: p, TID: tid, Args: map[string]any{"sort_index": tid}},
		)
	}
}

// span writes one span as a complete event of process p.
func (tw *traceWriter) span(s *Span, p int) {
	args := map[string]any{
		"samples":  s.Samples,
		"pipeline": s.Pipeline,
		"stage":    s.Stage,
	}
	if s.Samples == nil {
		args["samples"] = []int{}
	}
	if s.Kind == KindStep {
		args["first_step"] = s.FirstStep
		args["last_step"] = s.LastStep
		args["steps"] = s.LastStep - s.FirstStep + 1
	}
	if s.Peer != "" {
		args["peer"] = s.Peer
	}
	if s.Warmup {
		args["warmup"] = true
	}
	tw.emit(traceEvent{
		Name: spanName(s), Cat: string(s.Kind), Ph: "X",
		TS: micros(s.Start), Dur: micros(s.End - s.Start),
		PID: p, TID: streamTID[StreamOf(s.Kind)], Args: args,
	})
}

// samples writes the releases and completions as instant events of a
// "samples" process p, at position i.
func (tw *traceWriter) samples(p, i int, samples []Sample) {
	tw.emit(
		traceEvent{Name: "process_name", Ph: "M", PID: p, Args: map[string]any{"name": "samples"}},
		traceEvent{Name: "process_sort_index", Ph: "M", PID: p, Args: map[string]any{"sort_index": i}},
		traceEvent{Name: "thread_name", Ph: "M", PID: p, TID: 1, Args: map[string]any{"name": "release / done"}},
	)
	for _, s := range samples {
		tw.emit(
			traceEvent{Name: "release s" + strconv.Itoa(s.ID), Cat: "sample", Ph: "i", TS: micros(s.Release), PID: p, TID: 1,
				Args: map[string]any{"sample": s.ID, "pipeline": s.Pipeline}},
			traceEvent{Name: "done s" + strconv.Itoa(s.ID), Cat: "sample", Ph: "i", TS: micros(s.Done), PID: p, TID: 1,
				Args: map[string]any{"sample": s.ID, "pipeline": s.Pipeline, "latency_ms": float64(s.Done-s.Release) / 1e6}},
		)
	}
}
