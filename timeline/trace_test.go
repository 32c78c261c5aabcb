package timeline

import (
	"bytes"
	"encoding/json"
	"sort"
	"testing"
)

type parsedTrace struct {
	DisplayTimeUnit string `json:"displayTimeUnit"`
	TraceEvents     []struct {
		Name string         `json:"name"`
		Cat  string         `json:"cat"`
		Ph   string         `json:"ph"`
		TS   float64        `json:"ts"`
		Dur  float64        `json:"dur"`
		PID  int            `json:"pid"`
		TID  int            `json:"tid"`
		Args map[string]any `json:"args"`
	} `json:"traceEvents"`
}

func TestWriteTrace(t *testing.T) {
	tl := arrivals2()
	// Times large enough to see the microsecond conversion.
	for i := range tl.Spans {
		tl.Spans[i].Start *= 1_000_500
		tl.Spans[i].End *= 1_000_500
	}
	for i := range tl.Samples {
		tl.Samples[i].Release *= 1_000_500
		tl.Samples[i].Done *= 1_000_500
	}
	var buf bytes.Buffer
	if err := WriteTrace(&buf, tl); err != nil {
		t.Fatal(err)
	}
	var tr parsedTrace
	if err := json.Unmarshal(buf.Bytes(), &tr); err != nil {
		t.Fatalf("trace is not JSON: %v\n%s", err, buf.String())
	}
	procs := map[int]string{}
	threads := map[[2]int]string{}
	type iv struct{ a, b float64 }
	tracks := map[[2]int][]iv{}
	nX := 0
	for _, e := range tr.TraceEvents {
		switch {
		case e.Ph == "M" && e.Name == "process_name":
			procs[e.PID] = e.Args["name"].(string)
		case e.Ph == "M" && e.Name == "thread_name":
			threads[[2]int{e.PID, e.TID}] = e.Args["name"].(string)
		case e.Ph == "X":
			nX++
			k := [2]int{e.PID, e.TID}
			tracks[k] = append(tracks[k], iv{e.TS, e.TS + e.Dur})
			if _, ok := e.Args["samples"]; !ok {
				t.Errorf("%s: no samples in args", e.Name)
			}
		}
	}
	if nX != len(tl.Spans) {
		t.Errorf("%d complete events, want %d", nX, len(tl.Spans))
	}
	if procs[1] != "d0" || procs[2] != "d1" || procs[3] != "samples" {
		t.Errorf("process names %v", procs)
	}
	for _, p := range []int{1, 2} {
		if threads[[2]int{p, 1}] != "compute" || threads[[2]int{p, 2}] != "send" || threads[[2]int{p, 3}] != "recv" {
			t.Errorf("thread names of pid %d: %v", p, threads)
		}
	}
	for k, ivs := range tracks {
		if threads[k] == "" {
			t.Errorf("track %v has slices but no name", k)
		}
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].a < ivs[j].a })
		for i := 1; i < len(ivs); i++ {
			if ivs[i].a < ivs[i-1].b {
				t.Errorf("track %v (%s): slices overlap: %v and %v", k, threads[k], ivs[i-1], ivs[i])
			}
		}
	}
	// The warm-up step of d1: samples 0 and 1, steps 2..3, 31..51 (×1000.5 µs).
	found := false
	for _, e := range tr.TraceEvents {
		if e.Ph == "X" && e.PID == 2 && e.Cat == "step" && e.Args["warmup"] == true {
			found = true
			if e.TS != 31*1000.5 || e.Dur != 20*1000.5 || e.Args["first_step"] != 2.0 || e.Args["last_step"] != 3.0 || e.Args["steps"] != 2.0 {
				t.Errorf("warm-up step event %+v", e)
			}
			if s, _ := e.Args["samples"].([]any); len(s) != 2 || s[0] != 0.0 || s[1] != 1.0 {
				t.Errorf("samples arg %v, want [0 1]", e.Args["samples"])
			}
			if e.Name != "step 2-3 s0+1" {
				t.Errorf("name %q", e.Name)
			}
		}
		if e.Ph == "X" && e.Cat == "send" && e.Args["peer"] != "d1" {
			t.Errorf("send without peer: %+v", e)
		}
	}
	if !found {
		t.Error("warm-up step of d1 not found")
	}
}

func TestMicros(t *testing.T) {
	for ns, want := range map[int64]string{0: "0.000", 1: "0.001", 1500: "1.500", 12345678: "12345.678", -1500: "-1.500"} {
		if got := string(micros(ns)); got != want {
			t.Errorf("micros(%d) = %s, want %s", ns, got, want)
		}
	}
}

func TestSampleLabel(t *testing.T) {
	for _, c := range []struct {
		ids  []int
		want string
	}{{nil, ""}, {[]int{3}, "s3"}, {[]int{3, 4}, "s3+4"}, {[]int{3, 4, 5}, "s3-5"}, {[]int{1, 5, 6}, "s1+5+6"}} {
		if got := SampleLabel(c.ids); got != c.want {
			t.Errorf("SampleLabel(%v) = %q, want %q", c.ids, got, c.want)
		}
	}
}
