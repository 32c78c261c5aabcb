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
	phPre    uint8 = iota // host work before the model calls (per-sample preparation, receiving)
	phEncode              //
	phStep                //
	phDecode              //
	phPost                // host work after them (per-sample output handling)
)

// cost is what a stage's work costs a micro-batch of one size, in ns.
type cost struct {
	pre, post          int64 // host work before encode/steps (first-stage samples, receive) and after decode (last-stage samples)
	enc, dec           int64
	firstEnc, firstDec []int64 // the device's first encode and decode calls
	step, warm         int64   // one UNet step (host work included, speed applied); the device's first UNet call
	run                int64   // the stage's whole step range on a warm device: steps×step
	runWarm            int64   // the same as the device's first: warm + (steps-1)×step
	xfer               int64   // hand-off to the next stage, set-up excluded
}

// stageRT is a stage with its costs precomputed by micro-batch size.
type stageRT struct {
	pipe, idx, dev int32
	first, last    int32
	steps          int64
	encode, decode bool
	next           int32  // flattened index of the next stage; -1 for the last
	nextDev        int32  // device of the next stage; -1 for the last
	prevDev        int32  // device of the previous stage when it hands off over a link; -1 otherwise
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
	id         int32 // index in engine.devs
	state      uint8
	phase      uint8
	warmed     bool  // had its first UNet call
	encoded    int32 // encode calls so far
	decoded    int32 // decode calls so far
	sendBusy   bool  // buffered: send stream in use
	recvBusy   bool  // buffered: receive stream in use
	job        job   // the job it computes
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
	ranks    int // devices on the plan's pipelines (link set-up may grow with them)
	blocking bool
	nSamples int
	done     int
	makespan int64

	rel      *plan.Releases // the workload's release times, in sample order
	jitRng   *rand.Rand
	nextRel  int   // next sample id to release
	nextRelT int64 // its release time

	rec     timeline.Recorder
	replay  Replay                      // see Options.Replay
	check   func(done, total int) error // see Options.Check
	meta    timeline.Meta
	ids     [][]int // sample ids of jobs in flight, only when recording
	freeIDs []int32 // unused entries of ids
}

func (e *engine) schedule(t int64, k evKind, a int32) {
	e.seq++
	e.h.push(mkEvent(t, e.seq, k, a))
}

// scheduleRelease schedules the next release. It carries sequence number
// 0, which no other event has, so that it fires before every other event
// at the same instant: samples released at the time a device becomes free
// are there when it forms its next micro-batch, as the executor's entry
// queue takes every sample released by now. At most one release is
// pending at a time.
func (e *engine) scheduleRelease() {
	e.h.push(mkEvent(e.nextRelT, 0, evRelease, 0))
}

func (e *engine) run() error {
	e.nextRelT = e.rel.Next()
	e.scheduleRelease()
	for len(e.h) > 0 {
		if err := e.runFor(CheckEvery); err != nil {
			return err
		}
		if e.check != nil && len(e.h) > 0 {
			if err := e.check(e.done, e.nSamples); err != nil {
				return &StoppedError{Plan: e.meta.Plan, Done: e.done, Total: e.nSamples, Err: err}
			}
		}
	}
	if e.done != e.nSamples {
		return fmt.Errorf("sim: plan %q: deadlock: %d of %d samples completed (blocking hand-offs wait on each other; try layout.handoff: buffered or one stage per device)", e.meta.Plan, e.done, e.nSamples)
	}
	return nil
}

// runFor processes up to n events (fewer when the heap empties).
func (e *engine) runFor(n int64) error {
	until := e.events + n
	for len(e.h) > 0 && e.events < until {
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
		e.scheduleRelease()
	}
	for i := 0; i < min(touched, np); i++ {
		// Pipelines released into, in release order (round robin).
		pi := (e.nextRel - touched + i) % np
		e.tryStart(&e.devs[e.stages[e.pipes[pi].first].dev])
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

// tryStart gives idle device dv its next piece of work: the waiting job
// (a sender in blocking mode, a received micro-batch in buffered mode) or
// queued samples of a pipeline it enters, whichever has waited longest;
// on a tie, work already in flight goes first.
func (e *engine) tryStart(dv *devRT) {
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
		e.startEntry(dv, best)
	case waiting:
		e.take(dv, dv.incoming.pop())
	}
}

// take starts the work of waiter w on idle device dv: a job on the device
// (received in buffered mode, or handed on within it) or a blocked
// sender's micro-batch to receive.
func (e *engine) take(dv *devRT, w waiter) {
	if w.peer < 0 {
		e.startCompute(dv, w.job)
	} else {
		e.startXfer(&e.devs[w.peer], w.job, w.since)
	}
}

// arrive adds waiter w to device dv's incoming queue and starts dv's next
// work if it is idle. When dv is idle with nothing else waiting and no
// pipeline entering on it, w is what tryStart would pick, so it starts at
// once without going through the queue.
func (e *engine) arrive(dv *devRT, w waiter) {
	if dv.state == devIdle && dv.incoming.len() == 0 && len(dv.entries) == 0 {
		e.take(dv, w)
		return
	}
	dv.incoming.push(w)
	if dv.state == devIdle {
		e.tryStart(dv)
	}
}

// startEntry forms a micro-batch of up to micro_batch queued samples of
// pipeline pi and starts it on device dv (the pipeline's first stage).
func (e *engine) startEntry(dv *devRT, pi int32) {
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
	e.startCompute(dv, jb)
}

// startCompute starts job jb's work at its current stage on device dv.
func (e *engine) startCompute(dv *devRT, jb job) {
	st := &e.stages[jb.stage]
	dv.state = devCompute
	dv.job = jb
	e.startPhase(dv, st, e.firstPhase(st, jb.b))
}

// firstPhase is the first phase of a micro-batch of b at stage st: its
// host work, else encode, else the steps.
func (e *engine) firstPhase(st *stageRT, b int32) uint8 {
	switch {
	case st.cost[b].pre > 0:
		return phPre
	case st.encode:
		return phEncode
	}
	return phStep
}

// startPhase starts phase ph of device dv's job at its stage st.
func (e *engine) startPhase(dv *devRT, st *stageRT, ph uint8) {
	c := &st.cost[dv.job.b]
	var dur int64
	switch {
	case ph == phPre:
		dur = c.pre
	case ph == phPost:
		dur = c.post
	case ph == phEncode:
		dur = warmOr(c.firstEnc, &dv.encoded, c.enc)
	case ph == phDecode:
		dur = warmOr(c.firstDec, &dv.decoded, c.dec)
	case dv.jitter > 0:
		dur = e.jitteredRun(dv, st.steps, c)
	case dv.warmed:
		dur = c.run
	default:
		dur = c.runWarm
	}
	if e.replay != nil {
		dur = e.replayed(st, dv.job, phaseKind[ph], ph == phPost, dur)
	}
	dv.phase = ph
	dv.phaseStart = e.now
	e.seq++ // e.schedule, written out: it is not inlined
	e.h.push(mkEvent(e.now+dur, e.seq, evPhase, dv.id))
}

// phaseKind is the span kind each phase makes.
var phaseKind = [...]timeline.Kind{phPre: timeline.KindHost, phEncode: timeline.KindEncode, phStep: timeline.KindStep, phDecode: timeline.KindDecode, phPost: timeline.KindHost}

// replayed is the replayed time of job jb's work of kind k at stage st
// (after: a host span after the model work), else dur.
func (e *engine) replayed(st *stageRT, jb job, k timeline.Kind, after bool, dur int64) int64 {
	if v, ok := e.replay[ReplayKey{Pipeline: int(st.pipe), Stage: int(st.idx), Sample: e.ids[jb.ids][0], Kind: k, After: after}]; ok {
		return v
	}
	return dur
}

// warmOr is the time of a device's next call, the n-th: first[n] while
// the device is in its first calls, else steady; it counts the call.
func warmOr(first []int64, n *int32, steady int64) int64 {
	i := *n
	if int(i) < len(first) {
		*n = i + 1
		return first[i]
	}
	return steady
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
	case phPre:
		if e.rec != nil {
			var from *devRT // a receive: the sender
			if st.prevDev >= 0 {
				from = &e.devs[st.prevDev]
			}
			e.emit(dv, timeline.KindHost, jb, st, dv.phaseStart, from, false)
		}
		if st.encode {
			e.startPhase(dv, st, phEncode)
		} else {
			e.startPhase(dv, st, phStep)
		}
		return
	case phEncode:
		if e.rec != nil {
			e.emit(dv, timeline.KindEncode, jb, st, dv.phaseStart, nil, false)
		}
		e.startPhase(dv, st, phStep)
		return
	case phStep:
		warm := !dv.warmed
		dv.warmed = true
		if e.rec != nil {
			e.emit(dv, timeline.KindStep, jb, st, dv.phaseStart, nil, warm)
		}
		if st.decode {
			e.startPhase(dv, st, phDecode)
			return
		}
		if e.startPost(dv, jb, st) { // the last stage without a decode call
			return
		}
	case phDecode:
		if e.rec != nil {
			e.emit(dv, timeline.KindDecode, jb, st, dv.phaseStart, nil, false)
		}
		if e.startPost(dv, jb, st) {
			return
		}
	case phPost:
		// The samples were done at the end of their decode; the device
		// is free once it has handed their outputs on.
		if e.rec != nil {
			e.emit(dv, timeline.KindHost, jb, st, dv.phaseStart, nil, false)
		}
		e.releaseIDs(jb)
		dv.state = devIdle
		e.tryStart(dv)
		return
	}
	e.handOn(dv, jb, st)
}

// startPost completes job jb at the last stage st and starts its output
// handling on device dv, when the stage has any (sample_last_ms); false
// when it has none, and nothing was done.
func (e *engine) startPost(dv *devRT, jb job, st *stageRT) bool {
	if st.next >= 0 || st.cost[jb.b].post == 0 {
		return false
	}
	e.record(jb)
	e.startPhase(dv, st, phPost)
	return true
}

// handOn passes job jb, done with stage st on device dv, to what comes
// next: completion, the next stage on the same device, or a hand-off.
func (e *engine) handOn(dv *devRT, jb job, st *stageRT) {
	switch {
	case st.next < 0:
		e.complete(jb)
		dv.state = devIdle
		e.tryStart(dv)
	case st.link < 0: // next stage on the same device: no transfer
		jb.stage = st.next
		dv.state = devIdle
		e.arrive(dv, waiter{since: e.now, job: jb, peer: -1})
	case e.blocking:
		dv.state = devSend
		e.arrive(&e.devs[st.nextDev], waiter{since: e.now, job: jb, peer: dv.id})
	default:
		dv.state = devIdle
		if dv.outgoing.len() == 0 && !dv.sendBusy && !e.devs[st.nextDev].recvBusy {
			e.startXfer(dv, jb, e.now) // what tryXferFrom would do, without the queue
		} else {
			dv.outgoing.push(waiter{since: e.now, job: jb, peer: st.nextDev})
			e.tryXferFrom(dv)
		}
		e.tryStart(dv)
	}
}

// complete records the samples of job jb as done and forgets its ids.
func (e *engine) complete(jb job) {
	e.record(jb)
	e.releaseIDs(jb)
}

// record records the samples of job jb as done now.
func (e *engine) record(jb job) {
	if e.rec != nil {
		st := &e.stages[jb.stage]
		p := &e.pipes[st.pipe]
		for _, id := range e.ids[jb.ids] {
			e.rec.AddSample(timeline.Sample{ID: id, Pipeline: int(st.pipe), Release: p.inflight.t, Done: e.now})
			p.inflight.advance(1)
		}
	}
	e.done += int(jb.b)
	e.makespan = e.now
}

// releaseIDs frees the sample ids of job jb, which is done.
func (e *engine) releaseIDs(jb job) {
	if e.rec != nil {
		e.ids[jb.ids] = nil
		e.freeIDs = append(e.freeIDs, jb.ids)
	}
}

// startXfer starts the hand-off of job jb, ready since readyAt, from
// device dv (its stage's) to the next stage's device, now.
func (e *engine) startXfer(dv *devRT, jb job, readyAt int64) {
	st := &e.stages[jb.stage]
	dur := st.cost[jb.b].xfer
	if l := &e.links[st.link]; !l.used {
		l.used = true
		dur += l.setup
	}
	if e.replay != nil {
		dur = e.replayed(st, jb, timeline.KindSend, false, dur)
	}
	to := &e.devs[st.nextDev]
	if e.blocking {
		if e.rec != nil && readyAt < e.now {
			e.emit(dv, timeline.KindWait, jb, st, readyAt, to, false)
		}
		to.state = devRecv
	} else {
		dv.sendBusy = true
		to.recvBusy = true
	}
	dv.sent, dv.xStart = jb, e.now
	e.seq++ // e.schedule, written out: it is not inlined
	e.h.push(mkEvent(e.now+dur, e.seq, evXfer, dv.id))
}

// xferDone ends the transfer device from sends.
func (e *engine) xferDone(from int32) {
	fv := &e.devs[from]
	jb := fv.sent
	st := &e.stages[jb.stage]
	tv := &e.devs[st.nextDev]
	if e.rec != nil {
		e.emit(fv, timeline.KindSend, jb, st, fv.xStart, tv, false)
		e.emit(tv, timeline.KindRecv, jb, &e.stages[st.next], fv.xStart, fv, false)
	}
	jb.stage = st.next
	if e.blocking {
		e.startCompute(tv, jb)
		fv.state = devIdle
		e.tryStart(fv)
		return
	}
	fv.sendBusy = false
	tv.recvBusy = false
	e.arrive(tv, waiter{since: e.now, job: jb, peer: -1})
	if len(tv.senders) > 1 {
		e.tryXferTo(tv) // with one sender, that is fv: tryXferFrom does the same
	}
	if fv.outgoing.len() > 0 {
		e.tryXferFrom(fv)
	}
}

// tryXferFrom starts the transfer at the head of device dv's outgoing
// queue if dv's send stream and the receiver's receive stream are free
// (buffered).
func (e *engine) tryXferFrom(dv *devRT) {
	if dv.sendBusy || dv.outgoing.len() == 0 {
		return
	}
	w := dv.outgoing.front()
	if e.devs[w.peer].recvBusy {
		return
	}
	dv.outgoing.pop()
	e.startXfer(dv, w.job, w.since)
}

// tryXferTo starts, when device dv's receive stream is free, the transfer
// to dv that has waited longest among its senders' outgoing heads.
func (e *engine) tryXferTo(dv *devRT) {
	if dv.recvBusy {
		return
	}
	var best *devRT
	var bestT int64
	for _, s := range dv.senders {
		sv := &e.devs[s]
		if sv.sendBusy || sv.outgoing.len() == 0 {
			continue
		}
		w := sv.outgoing.front()
		if w.peer != dv.id {
			continue
		}
		if best == nil || w.since < bestT {
			best, bestT = sv, w.since
		}
	}
	if best != nil {
		e.tryXferFrom(best)
	}
}

// emit records a span of job jb on device dv ending now. peer is the other
// device of a transfer or wait, or nil.
// Callers check e.rec first, so that a run without a recorder pays nothing.
func (e *engine) emit(dv *devRT, k timeline.Kind, jb job, st *stageRT, start int64, peer *devRT, warm bool) {
	s := timeline.Span{
		Device: dv.name, Kind: k, Samples: e.ids[jb.ids],
		Pipeline: int(st.pipe), Stage: int(st.idx),
		FirstStep: -1, LastStep: -1, Start: start, End: e.now, Warmup: warm,
	}
	if k == timeline.KindStep {
		s.FirstStep, s.LastStep = int(st.first), int(st.last)
	}
	if peer != nil {
		s.Peer = peer.name
	}
	e.rec.AddSpan(s)
}
