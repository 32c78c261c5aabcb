package sim

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// Device states.
const (
	devIdle    uint8 = iota
	devCompute       // running a phase of a job (encode, step or decode)
	devSend          // blocking hand-off: waiting for the receiver, then sending
	devRecv          // blocking hand-off: receiving a job it will run next
)

// Compute phases of a job at a stage.
const (
	phEncode uint8 = iota
	phStep
	phDecode
)

// cost is what a stage's work costs a micro-batch of one size, in ns.
type cost struct {
	enc, dec   int64
	step, warm int64 // one UNet step (host work included, speed applied); the device's first UNet call
	run        int64 // the stage's whole step range on a warm device: steps×step
	runWarm    int64 // the same as the device's first: warm + (steps-1)×step
	xfer       int64 // hand-off to the next stage, set-up excluded
}

// stageRT is a stage with its costs precomputed by micro-batch size.
type stageRT struct {
	pipe, idx, dev int32
	first, last    int32
	steps          int64
	encode, decode bool
	next           int32  // flattened index of the next stage; -1 for the last
	nextDev        int32  // device of the next stage; -1 for the last
	link           int32  // link to the next stage's device; -1 when none (last stage or same device)
	cost           []cost // by micro-batch size b, 1..micro_batch (index 0 unused)
}

type pipeRT struct {
	first    int32     // flattened index of stage 0
	queued   int       // released samples not yet taken into a micro-batch
	nextTake int       // id of the next sample to take
	waiting  relCursor // at the release of the next sample to take
	inflight relCursor // at the release of the oldest sample not done (only when recording)
}

// job is a micro-batch: b samples of one pipeline (ids first, first+R, ...)
// travelling together. It is a value that moves with the work: in a
// device's queue, on the device that computes it, on the device that sends
// it. It holds no pointers, so queues cost the garbage collector nothing.
type job struct {
	stage int32 // flattened index of its current stage
	b     int32
	ids   int32 // index of its sample ids in engine.ids, only when recording
}

// waiter is a job in a device's queue.
type waiter struct {
	since int64 // when it became ready for what it waits for
	job   job
	// In incoming: the device that still holds the job (a blocked sender),
	// or -1 when the job is on this device. In outgoing: the receiver.
	peer int32
}

type devRT struct {
	state      uint8
	phase      uint8
	warmed     bool // had its first UNet call
	sendBusy   bool // buffered: send stream in use
	recvBusy   bool // buffered: receive stream in use
	job        job  // the job it computes
	phaseStart int64
	sent       job   // the job its transfer in flight carries
	xStart     int64 // start of that transfer
	jitter     float64
	incoming   queue   // blocking: senders' jobs waiting for this device; buffered: received jobs; both: jobs handed on within it
	outgoing   queue   // buffered: jobs waiting for a transfer
	entries    []int32 // pipelines whose first stage is on this device
	senders    []int32 // devices that hand off to this device
	name       string
}

type linkRT struct {
	setup int64
	used  bool
}

type engine struct {
	now    int64
	seq    uint64
	events int64
	h      eventHeap

	stages []stageRT
	pipes  []pipeRT
	devs   []devRT
	links  []linkRT

	mb       int
	blocking bool
	nSamples int
	done     int
	makespan int64

	rel      *plan.Releases // the workload's release times, in sample order
	jitRng   *rand.Rand
	nextRel  int   // next sample id to release
	nextRelT int64 // its release time

	rec     timeline.Recorder
	meta    timeline.Meta
	ids     [][]int // sample ids of jobs in flight, only when recording
	freeIDs []int32 // unused entries of ids
}

func (e *engine) schedule(t int64, k evKind, a int32) {
	e.seq++
	e.h.push(mkEvent(t, e.seq, k, a))
}

func (e *engine) run() error {
	e.nextRelT = e.rel.Next()
	e.schedule(e.nextRelT, evRelease, 0)
	for len(e.h) > 0 {
		ev := e.h.pop()
		if ev.t < e.now {
			return fmt.Errorf("sim: internal: clock went back from %d to %d ns", e.now, ev.t)
		}
		e.now = ev.t
		e.events++
		switch ev.kind() {
		case evRelease:
			e.release()
		case evPhase:
			e.phaseDone(ev.arg())
		case evXfer:
			e.xferDone(ev.arg())
		}
		if e.seq >= maxSeq {
			return fmt.Errorf("sim: plan %q: more than %d events; simulate fewer samples", e.meta.Plan, maxSeq)
		}
	}
	if e.done != e.nSamples {
		return fmt.Errorf("sim: plan %q: deadlock: %d of %d samples completed (blocking hand-offs wait on each other; try layout.handoff: buffered or one stage per device)", e.meta.Plan, e.done, e.nSamples)
	}
	return nil
}

// release releases every sample due now into its pipeline's queue (round
// robin by sample id) and schedules the next release.
func (e *engine) release() {
	np := len(e.pipes)
	touched := 0
	for e.nextRel < e.nSamples && e.nextRelT <= e.now {
		p := &e.pipes[e.nextRel%np]
		p.queued++
		e.nextRel++
		touched++
		if e.nextRel < e.nSamples {
			e.nextRelT = e.rel.Next()
		}
	}
	if e.nextRel < e.nSamples {
		e.schedule(e.nextRelT, evRelease, 0)
	}
	for i := 0; i < min(touched, np); i++ {
		// Pipelines released into, in release order (round robin).
		pi := (e.nextRel - touched + i) % np
		e.tryStart(e.stages[e.pipes[pi].first].dev)
	}
}

// newIDs stores the sample ids of a new job (when recording) and returns
// their index in e.ids.
func (e *engine) newIDs(ids []int) int32 {
	if n := len(e.freeIDs); n > 0 {
		i := e.freeIDs[n-1]
		e.freeIDs = e.freeIDs[:n-1]
		e.ids[i] = ids
		return i
	}
	e.ids = append(e.ids, ids)
	return int32(len(e.ids) - 1)
}

// tryStart gives an idle device its next piece of work: the waiting job
// (a sender in blocking mode, a received micro-batch in buffered mode) or
// queued samples of a pipeline it enters, whichever has waited longest;
// on a tie, work already in flight goes first.
func (e *engine) tryStart(d int32) {
	dv := &e.devs[d]
	if dv.state != devIdle {
		return
	}
	best := int32(-1) // pipeline
	var bestT int64
	waiting := dv.incoming.len() > 0
	if waiting {
		bestT = dv.incoming.front().since
	}
	for _, pi := range dv.entries {
		p := &e.pipes[pi]
		if p.queued == 0 {
			continue
		}
		if t := p.waiting.t; (best < 0 && !waiting) || t < bestT {
			best, bestT = pi, t
		}
	}
	switch {
	case best >= 0:
		e.startEntry(d, best)
	case waiting:
		w := dv.incoming.pop()
		if w.peer < 0 {
			e.startCompute(d, dv, w.job) // received (buffered) or handed on within the device
		} else {
			e.startXfer(w.peer, w.job, w.since) // a blocked sender: receive its micro-batch
		}
	}
}

// arrive adds waiter w to device d's incoming queue and starts d's next
// work if it is idle. When d is idle with nothing else waiting and no
// pipeline entering on it, w is what tryStart would pick, so it starts at
// once without going through the queue.
func (e *engine) arrive(d int32, w waiter) {
	dv := &e.devs[d]
	if dv.state == devIdle && dv.incoming.len() == 0 && len(dv.entries) == 0 {
		if w.peer < 0 {
			e.startCompute(d, dv, w.job)
		} else {
			e.startXfer(w.peer, w.job, w.since)
		}
		return
	}
	dv.incoming.push(w)
	if dv.state == devIdle {
		e.tryStart(d)
	}
}

// startEntry forms a micro-batch of up to micro_batch queued samples of
// pipeline pi and starts it on device d (the pipeline's first stage).
func (e *engine) startEntry(d, pi int32) {
	p := &e.pipes[pi]
	b := min(p.queued, e.mb)
	jb := job{stage: p.first, b: int32(b), ids: -1}
	if e.rec != nil {
		ids := make([]int, b)
		for i := range ids {
			ids[i] = p.nextTake + i*len(e.pipes)
		}
		jb.ids = e.newIDs(ids)
	}
	p.queued -= b
	p.waiting.advance(b)
	p.nextTake += b * len(e.pipes)
	e.startCompute(d, &e.devs[d], jb)
}

// startCompute starts job jb's work at its current stage on device d.
func (e *engine) startCompute(d int32, dv *devRT, jb job) {
	st := &e.stages[jb.stage]
	dv.state = devCompute
	dv.job = jb
	ph := phStep
	if st.encode {
		ph = phEncode
	}
	e.startPhase(d, dv, st, ph)
}

// startPhase starts phase ph of device d's job at its stage st.
func (e *engine) startPhase(d int32, dv *devRT, st *stageRT, ph uint8) {
	c := &st.cost[dv.job.b]
	var dur int64
	switch {
	case ph == phEncode:
		dur = c.enc
	case ph == phDecode:
		dur = c.dec
	case dv.jitter > 0:
		dur = e.jitteredRun(dv, st.steps, c)
	case dv.warmed:
		dur = c.run
	default:
		dur = c.runWarm
	}
	dv.phase = ph
	dv.phaseStart = e.now
	e.seq++ // e.schedule, written out: it is not inlined
	e.h.push(mkEvent(e.now+dur, e.seq, evPhase, d))
}

// jitteredRun is the time of n UNet steps on device dv, each drawn with
// the device's jitter.
func (e *engine) jitteredRun(dv *devRT, n int64, c *cost) int64 {
	var dur int64
	for i := int64(0); i < n; i++ {
		base := c.step
		if i == 0 && !dv.warmed {
			base = c.warm
		}
		f := 1 + dv.jitter*e.jitRng.NormFloat64()
		dur += int64(math.Round(float64(base) * max(f, 0)))
	}
	return dur
}

// phaseDone ends device d's current phase and starts the job's next phase
// at the stage, or hands the job on when the stage's work is done.
func (e *engine) phaseDone(d int32) {
	dv := &e.devs[d]
	jb := dv.job
	st := &e.stages[jb.stage]
	switch dv.phase {
	case phEncode:
		if e.rec != nil {
			e.emit(d, timeline.KindEncode, jb, st, dv.phaseStart, -1, false)
		}
		e.startPhase(d, dv, st, phStep)
		return
	case phStep:
		warm := !dv.warmed
		dv.warmed = true
		if e.rec != nil {
			e.emit(d, timeline.KindStep, jb, st, dv.phaseStart, -1, warm)
		}
		if st.decode {
			e.startPhase(d, dv, st, phDecode)
			return
		}
	case phDecode:
		if e.rec != nil {
			e.emit(d, timeline.KindDecode, jb, st, dv.phaseStart, -1, false)
		}
	}
	e.handOn(d, jb, st)
}

// handOn passes job jb, done with stage st on device d, to what comes
// next: completion, the next stage on the same device, or a hand-off.
func (e *engine) handOn(d int32, jb job, st *stageRT) {
	dv := &e.devs[d]
	switch {
	case st.next < 0:
		e.complete(jb)
		dv.state = devIdle
		e.tryStart(d)
	case st.link < 0: // next stage on the same device: no transfer
		jb.stage = st.next
		dv.state = devIdle
		e.arrive(d, waiter{since: e.now, job: jb, peer: -1})
	case e.blocking:
		dv.state = devSend
		e.arrive(st.nextDev, waiter{since: e.now, job: jb, peer: d})
	default:
		dv.state = devIdle
		if dv.outgoing.len() == 0 && !dv.sendBusy && !e.devs[st.nextDev].recvBusy {
			e.startXfer(d, jb, e.now) // what tryXferFrom would do, without the queue
		} else {
			dv.outgoing.push(waiter{since: e.now, job: jb, peer: st.nextDev})
			e.tryXferFrom(d)
		}
		e.tryStart(d)
	}
}

// complete records the samples of job jb as done.
func (e *engine) complete(jb job) {
	if e.rec != nil {
		st := &e.stages[jb.stage]
		p := &e.pipes[st.pipe]
		for _, id := range e.ids[jb.ids] {
			e.rec.AddSample(timeline.Sample{ID: id, Pipeline: int(st.pipe), Release: p.inflight.t, Done: e.now})
			p.inflight.advance(1)
		}
		e.ids[jb.ids] = nil
		e.freeIDs = append(e.freeIDs, jb.ids)
	}
	e.done += int(jb.b)
	e.makespan = e.now
}

// startXfer starts the hand-off of job jb, ready since readyAt, from
// device d (its stage's) to the next stage's device, now.
func (e *engine) startXfer(d int32, jb job, readyAt int64) {
	st := &e.stages[jb.stage]
	dur := st.cost[jb.b].xfer
	if l := &e.links[st.link]; !l.used {
		l.used = true
		dur += l.setup
	}
	dv := &e.devs[d]
	if e.blocking {
		if e.rec != nil && readyAt < e.now {
			e.emit(d, timeline.KindWait, jb, st, readyAt, st.nextDev, false)
		}
		e.devs[st.nextDev].state = devRecv
	} else {
		dv.sendBusy = true
		e.devs[st.nextDev].recvBusy = true
	}
	dv.sent, dv.xStart = jb, e.now
	e.seq++ // e.schedule, written out: it is not inlined
	e.h.push(mkEvent(e.now+dur, e.seq, evXfer, d))
}

// xferDone ends the transfer device from sends.
func (e *engine) xferDone(from int32) {
	fv := &e.devs[from]
	jb := fv.sent
	st := &e.stages[jb.stage]
	to := st.nextDev
	if e.rec != nil {
		e.emit(from, timeline.KindSend, jb, st, fv.xStart, to, false)
		e.emit(to, timeline.KindRecv, jb, &e.stages[st.next], fv.xStart, from, false)
	}
	jb.stage = st.next
	if e.blocking {
		e.startCompute(to, &e.devs[to], jb)
		fv.state = devIdle
		e.tryStart(from)
		return
	}
	fv.sendBusy = false
	e.devs[to].recvBusy = false
	e.arrive(to, waiter{since: e.now, job: jb, peer: -1})
	if len(e.devs[to].senders) > 1 {
		e.tryXferTo(to) // with one sender, that is from: tryXferFrom does the same
	}
	e.tryXferFrom(from)
}

// tryXferFrom starts the transfer at the head of device d's outgoing queue
// if d's send stream and the receiver's receive stream are free (buffered).
func (e *engine) tryXferFrom(d int32) {
	dv := &e.devs[d]
	if dv.sendBusy || dv.outgoing.len() == 0 {
		return
	}
	w := dv.outgoing.front()
	if e.devs[w.peer].recvBusy {
		return
	}
	dv.outgoing.pop()
	e.startXfer(d, w.job, w.since)
}

// tryXferTo starts, when device d's receive stream is free, the transfer
// to d that has waited longest among its senders' outgoing heads.
func (e *engine) tryXferTo(d int32) {
	if e.devs[d].recvBusy {
		return
	}
	best := int32(-1)
	var bestT int64
	for _, s := range e.devs[d].senders {
		sv := &e.devs[s]
		if sv.sendBusy || sv.outgoing.len() == 0 {
			continue
		}
		w := sv.outgoing.front()
		if w.peer != d {
			continue
		}
		if best < 0 || w.since < bestT {
			best, bestT = s, w.since
		}
	}
	if best >= 0 {
		e.tryXferFrom(best)
	}
}

// emit records a span of job jb on device d ending now. peer is the other
// device of a transfer or wait, or -1.
// Callers check e.rec first, so that a run without a recorder pays nothing.
func (e *engine) emit(d int32, k timeline.Kind, jb job, st *stageRT, start int64, peer int32, warm bool) {
	s := timeline.Span{
		Device: e.devs[d].name, Kind: k, Samples: e.ids[jb.ids],
		Pipeline: int(st.pipe), Stage: int(st.idx),
		FirstStep: -1, LastStep: -1, Start: start, End: e.now, Warmup: warm,
	}
	if k == timeline.KindStep {
		s.FirstStep, s.LastStep = int(st.first), int(st.last)
	}
	if peer >= 0 {
		s.Peer = e.devs[peer].name
	}
	e.rec.AddSpan(s)
}
