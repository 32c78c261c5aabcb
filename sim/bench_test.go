package sim

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/vdpp/vdpp/plan"
)

// benchSpec is the engine benchmark's plan: a 7-stage, 28-step pipeline
// (4 steps a stage, encode on the first, decode on the last), 10 000
// samples released at once.
func benchSpec(mode plan.Handoff) spec {
	return spec{
		stepMS:  []float64{300, 300, 300, 300, 300, 300, 300},
		steps:   []int{4, 4, 4, 4, 4, 4, 4},
		firstMS: []float64{800, 800, 800, 800, 800, 800, 800},
		encMS:   40, decMS: 900, linkUS: 15, bwGBps: 20, setupMS: 50,
		samples: 10_000,
		handoff: mode,
	}
}

var benchModes = []plan.Handoff{plan.HandoffBlocking, plan.HandoffBuffered}

// BenchmarkEngine runs the benchmark plan (benchSpec) with the trace off,
// and reports the engine's events per second.
func BenchmarkEngine(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(string(mode), func(b *testing.B) {
			p := benchSpec(mode).plan()
			var events int64
			b.ReportAllocs()
			for b.Loop() {
				events += runEvents(b, p)
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}

func runEvents(b *testing.B, p *plan.Plan) int64 {
	r, err := Run(p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return r.Events
}

// bareLoop is the ceiling of an event loop of the engine's shape: the
// engine's event values and heap (heap.go) and the same dispatch on the
// kind, with handlers that do nothing but schedule what the engine
// scheduled when it handled the same event. What a heap costs depends on
// the order of the times it holds (how often a sift goes on, how well
// branches predict), so the ceiling replays the engine's own schedule: the
// heap holds the same events and makes the same comparisons.
type bareLoop struct {
	now    int64
	seq    uint64
	events int64
	h      eventHeap
	kinds  [3]int64 // events handled, by kind
	next   []event  // what the engine scheduled, in order (seq not set)
	after  []int32  // after[i]: how many of next the engine had scheduled when its event i was done
	k      int32    // next entry of next to schedule
}

// recordBareLoop runs the engine on p with the loop of engine.run (less its
// checks) and records, for each event it handles, the events it schedules.
// TestBareLoopReplaysEngine checks the replay against a Run of p.
func recordBareLoop(tb testing.TB, p *plan.Plan) *bareLoop {
	e, err := newEngine(p)
	if err != nil {
		tb.Fatal(err)
	}
	l := &bareLoop{}
	seen := e.seq
	record := func() {
		var fresh []event
		for _, ev := range e.h {
			if ev.seq() > seen {
				fresh = append(fresh, ev)
			}
		}
		slices.SortFunc(fresh, func(a, b event) int { return cmp.Compare(a.seq(), b.seq()) })
		l.next = append(l.next, fresh...)
		l.after = append(l.after, int32(len(l.next)))
		seen = e.seq
	}
	e.nextRelT = e.rel.Next()
	e.schedule(e.nextRelT, evRelease, 0)
	record()
	for len(e.h) > 0 {
		ev := e.h.pop()
		e.now = ev.t
		switch ev.kind() {
		case evRelease:
			e.release()
		case evPhase:
			e.phaseDone(ev.arg())
		case evXfer:
			e.xferDone(ev.arg())
		}
		record()
	}
	if e.done != e.nSamples {
		tb.Fatalf("recording the engine: %d of %d samples done", e.done, e.nSamples)
	}
	return l
}

// scheduleRecorded schedules the events the engine scheduled while it
// handled its current event.
func (l *bareLoop) scheduleRecorded() {
	end := l.after[l.events]
	for ; l.k < end; l.k++ {
		x := l.next[l.k]
		l.seq++
		l.h.push(mkEvent(x.t, l.seq, x.kind(), x.arg()))
	}
}

func (l *bareLoop) run() int64 {
	l.h, l.now, l.seq, l.events, l.k = l.h[:0], 0, 0, 0, 0
	l.scheduleRecorded()
	for len(l.h) > 0 {
		ev := l.h.pop()
		l.now = ev.t
		l.events++
		switch ev.kind() {
		case evRelease:
			l.kinds[evRelease]++
		case evPhase:
			l.kinds[evPhase]++
		case evXfer:
			l.kinds[evXfer]++
		}
		l.scheduleRecorded()
	}
	return l.events
}

// TestBareLoopReplaysEngine checks that the bare loop handles as many
// events as the engine, ending when it ends.
func TestBareLoopReplaysEngine(t *testing.T) {
	for _, mode := range benchModes {
		p := benchSpec(mode).plan()
		r, err := Run(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l := recordBareLoop(t, p)
		for range 2 {
			if n := l.run(); n != r.Events || l.now != r.Makespan {
				t.Errorf("%s: bare loop: %d events ending at %d ns, engine: %d ending at %d", mode, n, l.now, r.Events, r.Makespan)
			}
		}
	}
}

// BenchmarkBareLoop replays, in bareLoop, the schedule of one engine run
// of the benchmark plan, and reports its events per second.
func BenchmarkBareLoop(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(string(mode), func(b *testing.B) {
			l := recordBareLoop(b, benchSpec(mode).plan())
			var events int64
			b.ReportAllocs()
			for b.Loop() {
				events += l.run()
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}

// BenchmarkEngineVsBare alternates an engine run and a bare-loop run of
// the same number of events in each iteration, so that both see the same
// machine, and reports both rates and engine/bare.
func BenchmarkEngineVsBare(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(string(mode), func(b *testing.B) {
			p := benchSpec(mode).plan()
			l := recordBareLoop(b, p)
			var engEv, bareEv int64
			var engT, bareT time.Duration
			for b.Loop() {
				t0 := time.Now()
				engEv += runEvents(b, p)
				t1 := time.Now()
				bareEv += l.run()
				t2 := time.Now()
				engT += t1.Sub(t0)
				bareT += t2.Sub(t1)
			}
			if engEv != bareEv {
				b.Fatalf("engine ran %d events, bare loop %d", engEv, bareEv)
			}
			engRate := float64(engEv) / engT.Seconds()
			bareRate := float64(bareEv) / bareT.Seconds()
			b.ReportMetric(engRate, "engine-events/s")
			b.ReportMetric(bareRate, "bare-events/s")
			b.ReportMetric(engRate/bareRate, "engine/bare")
		})
	}
}
