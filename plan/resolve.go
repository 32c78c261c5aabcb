package plan

import (
	"fmt"
	"math"
)

// Resolve fills p.Pipelines from the layout, checking it, and returns all
// problems as a *Errors. Pipeline r of an even or balanced layout gets the
// devices [r·S, (r+1)·S) with S = len(Devices)/Replicas, in list order.
//
//   - even: stage i gets ⌊N/S⌋ steps, and the first N mod S stages one more
//     (28 steps on 3 devices: 10, 9, 9).
//   - balanced: the contiguous split that minimises the slowest stage's
//     steady-state time per micro-batch (see StageNS); it needs a profile.
//   - explicit: layout.stages (one pipeline) or layout.pipelines[].stages,
//     checked: ranges in order, contiguous, every step exactly once per
//     pipeline, devices that exist, a device in at most one stage.
//
// Encode and decode are marked on the first or last stage of each pipeline
// as layout.encode_on and layout.decode_on say. Resolve expects defaults
// to be filled (EnsureDefaults); Load calls it.
func (p *Plan) Resolve() error {
	c := newChecker(p.File, p.pos)
	p.resolve(c)
	return c.err()
}

func (p *Plan) resolve(c *checker) {
	p.Pipelines = nil
	p.resolved = false
	before := len(c.errs)
	n := p.Sampler.Steps
	switch {
	case n < 1 || n > maxSteps:
		c.add("sampler.steps", "must be from 1 to %d, got %d", maxSteps, n)
		return
	case len(p.Devices) == 0:
		c.add("devices", "missing; list the devices")
		return
	case p.Layout.Replicas < 1:
		c.add("layout.replicas", "must be at least 1, got %d", p.Layout.Replicas)
		return
	}
	defer func() {
		if p.checkEnds(c) {
			p.Pipelines, p.resolved = nil, false
		}
	}()
	var pipes []Pipeline
	switch a := p.Layout.Assignment; a {
	case AssignExplicit:
		pipes = p.resolveExplicit(c)
	case AssignEven, AssignBalanced:
		d, r := len(p.Devices), p.Layout.Replicas
		if d%r != 0 {
			c.add("layout.replicas", "%d devices do not split into %d pipelines of equal size; use a replica count that divides %d, or list pipelines explicitly", d, r, d)
			return
		}
		s := d / r
		if n < s {
			c.add("sampler.steps", "%d steps cannot fill %d stages per pipeline (each stage needs a step); use fewer devices per pipeline, more replicas, or more steps", n, s)
			return
		}
		for ri := 0; ri < r; ri++ {
			devs := make([]int, s)
			for i := range devs {
				devs[i] = ri*s + i
			}
			sizes := evenSplit(n, s)
			if a == AssignBalanced {
				var ok bool
				if sizes, ok = p.balancedSplit(c, n, devs); !ok {
					return
				}
			}
			pipes = append(pipes, p.makePipeline(ri, devs, sizes))
		}
	default:
		c.add("layout.assignment", "%q is not allowed; want one of even, balanced, explicit", a)
	}
	if len(c.errs) == before {
		p.Pipelines = pipes
		p.resolved = true
	}
}

// evenSplit splits n steps over s stages, the earlier stages taking the
// remainder one step each.
func evenSplit(n, s int) []int {
	sizes := make([]int, s)
	for i := range sizes {
		sizes[i] = n / s
		if i < n%s {
			sizes[i]++
		}
	}
	return sizes
}

// makePipeline builds pipeline idx from device indices and step counts.
func (p *Plan) makePipeline(idx int, devs, sizes []int) Pipeline {
	pl := Pipeline{Index: idx}
	first := 0
	for i, dv := range devs {
		pl.Stages = append(pl.Stages, Stage{
			Pipeline: idx, Index: i, Device: p.Devices[dv].Name, DevIdx: dv,
			First: StepIndex(first), Last: StepIndex(first + sizes[i] - 1),
		})
		first += sizes[i]
	}
	p.markEnds(&pl)
	return pl
}

// checkEnds rejects encode on the last stage or decode on the first of a
// pipeline with several stages: the image encoder's output conditions every
// step, so it must run before the first one, and the decoder needs the last
// step's latent. (With one stage per pipeline first and last are the same.)
func (p *Plan) checkEnds(c *checker) (bad bool) {
	before := len(c.errs)
	multi := false
	for _, pl := range p.Pipelines {
		multi = multi || len(pl.Stages) > 1
	}
	if !multi {
		return false
	}
	if p.Layout.EncodeOn == EndLast {
		c.add("layout.encode_on", "last is not possible with several stages per pipeline: the image encoding conditions every step, so it runs on the first stage; use first")
	}
	if p.Layout.DecodeOn == EndFirst {
		c.add("layout.decode_on", "first is not possible with several stages per pipeline: decoding needs the last step's latent, so it runs on the last stage; use last")
	}
	return len(c.errs) > before
}

func (p *Plan) markEnds(pl *Pipeline) {
	last := len(pl.Stages) - 1
	pick := func(where End) int {
		if where == EndLast {
			return last
		}
		return 0
	}
	pl.Stages[pick(p.Layout.EncodeOn)].Encode = true
	pl.Stages[pick(p.Layout.DecodeOn)].Decode = true
}

func (p *Plan) resolveExplicit(c *checker) []Pipeline {
	l := p.Layout
	var specs []stageSpecs
	switch {
	case len(l.Stages) > 0 && len(l.Pipelines) > 0:
		c.add("layout.pipelines", "give either layout.stages (one pipeline) or layout.pipelines, not both")
		return nil
	case len(l.Stages) > 0:
		if l.Replicas != 1 {
			c.add("layout.replicas", "layout.stages is one pipeline, but replicas is %d; list each pipeline under layout.pipelines", l.Replicas)
			return nil
		}
		specs = append(specs, stageSpecs{"layout.stages", l.Stages})
	case len(l.Pipelines) > 0:
		if l.Replicas != len(l.Pipelines) {
			c.add("layout.replicas", "replicas is %d but %d pipelines are listed; remove replicas or make them agree", l.Replicas, len(l.Pipelines))
			return nil
		}
		for i, ps := range l.Pipelines {
			specs = append(specs, stageSpecs{fmt.Sprintf("layout.pipelines[%d].stages", i), ps.Stages})
		}
	default:
		c.add("layout.assignment", "explicit assignment needs layout.stages or layout.pipelines[].stages; or use assignment: even")
		return nil
	}
	return p.explicitPipelines(c, specs, false)
}

// stageSpecs is one pipeline's stages as written, with the field path
// that messages name.
type stageSpecs struct {
	path   string
	stages []StageSpec
}

// explicitPipelines checks explicit step ranges and builds the pipelines:
// the one check of step ranges, for layouts written in a plan and for
// layouts built in code (UsePipelines). Every range must be in order,
// contiguous, and cover every step exactly once per pipeline, on a device
// of the plan. A device runs at most one stage, unless share is set: then
// a device may hold stages of several pipelines (the simulator time-shares
// it; the executor refuses it), but still one stage per pipeline.
func (p *Plan) explicitPipelines(c *checker, specs []stageSpecs, share bool) []Pipeline {
	byName := map[string]int{}
	for i, d := range p.Devices {
		if _, dup := byName[d.Name]; !dup {
			byName[d.Name] = i
		}
	}
	n := StepIndex(p.Sampler.Steps)
	usedBy := map[string]string{}
	var pipes []Pipeline
	for pi, sp := range specs {
		if share {
			clear(usedBy)
		}
		if len(sp.stages) == 0 {
			c.add(sp.path, "a pipeline needs at least one stage")
			continue
		}
		pl := Pipeline{Index: pi}
		// Each range on its own first; only when all are sound, their
		// order, then gaps and overlaps: a range already reported (or
		// stages listed out of order) would make every later "not
		// assigned" or "overlaps" message wrong.
		ok := true
		for i, st := range sp.stages {
			at := fmt.Sprintf("%s[%d]", sp.path, i)
			dv := p.checkStageDevice(c, at, st.Device, byName, usedBy)
			if !checkRange(c, at, st.Steps, n) {
				ok = false
			}
			pl.Stages = append(pl.Stages, Stage{Pipeline: pi, Index: i, Device: st.Device, DevIdx: dv, First: st.Steps[0], Last: st.Steps[1]})
		}
		ok = ok && checkOrder(c, sp)
		next := StepIndex(0) // the step the next stage must start at
		for i, st := range sp.stages {
			if !ok {
				break
			}
			at := fmt.Sprintf("%s[%d]", sp.path, i)
			if !checkContiguous(c, at, st.Steps, i, next, sp.stages) {
				ok = false
			}
			next = max(next, st.Steps[1]+1)
		}
		if ok && next < n {
			c.add(fmt.Sprintf("%s[%d].steps", sp.path, len(sp.stages)-1), "steps %d..%d are not assigned; the last stage must end at step %d (steps: %d)", next, n-1, n-1, n)
		}
		p.markEnds(&pl)
		pipes = append(pipes, pl)
	}
	return pipes
}

// checkStageDevice checks the device of the stage at path at and returns
// its index (-1 when it is not a device of the plan).
func (p *Plan) checkStageDevice(c *checker, at, name string, byName map[string]int, usedBy map[string]string) int {
	dv, found := byName[name]
	switch {
	case name == "":
		c.add(at+".device", "missing; name the device that runs this stage")
	case !found:
		c.add(at+".device", "device %q is not in devices (have %s)", name, p.deviceNames())
	case usedBy[name] != "":
		c.add(at+".device", "device %s already runs %s; a device runs one stage", name, usedBy[name])
	default:
		usedBy[name] = at
	}
	if !found {
		return -1
	}
	return dv
}

// checkRange checks the inclusive step range r on its own: no negative
// step, first ≤ last, and last before step n.
func checkRange(c *checker, at string, r [2]StepIndex, n StepIndex) bool {
	f, l := r[0], r[1]
	switch {
	case f < 0 || l < 0:
		c.add(at+".steps", "range %d..%d has a negative step; steps count from 0", f, l)
	case f > l:
		c.add(at+".steps", "range %d..%d is backwards; write [first, last] with first ≤ last", f, l)
	case l >= n:
		c.add(at+".steps", "range %d..%d ends past step %d (steps: %d)", f, l, n-1, n)
	default:
		return true
	}
	return false
}

// checkOrder checks that the stages of a pipeline, each range sound, are
// listed in step order (a pipeline runs its stages in list order).
func checkOrder(c *checker, sp stageSpecs) bool {
	for i := 1; i < len(sp.stages); i++ {
		a, b := sp.stages[i-1].Steps, sp.stages[i].Steps
		if b[0] < a[0] {
			c.add(fmt.Sprintf("%s[%d].steps", sp.path, i), "range %d..%d comes before the previous stage's (%d..%d); list the stages in step order: a pipeline runs them in the order listed",
				b[0], b[1], a[0], a[1])
			return false
		}
	}
	return true
}

// checkContiguous checks that stage i's range r, sound and in order,
// starts at step next, where the previous stage ended.
func checkContiguous(c *checker, at string, r [2]StepIndex, i int, next StepIndex, stages []StageSpec) bool {
	f, l := r[0], r[1]
	switch {
	case f > next && i == 0:
		c.add(at+".steps", "steps 0..%d are not assigned; the first stage must start at step 0", f-1)
	case f < next:
		p := stages[i-1].Steps
		c.add(at+".steps", "range %d..%d overlaps the previous stage (steps %d..%d); start at step %d", f, l, p[0], p[1], next)
	case f > next:
		p := stages[i-1].Steps
		c.add(at+".steps", "steps %d..%d are not assigned: the previous stage (steps %d..%d) ends at %d; start at step %d", next, f-1, p[0], p[1], next-1, next)
	default:
		return true
	}
	return false
}

// stageNS is the steady-state time of a stage of k steps on device dv per
// micro-batch (see StageNS); prev and next are the devices of the stages
// before and after it (-1: none).
func (p *Plan) stageNS(dv, k int, encode, decode bool, prev, next int) (int64, bool) {
	return p.stageNSAt(dv, k, encode, decode, prev, next, p.Layout.MicroBatch)
}

// stageNSAt is stageNS for a micro-batch of mb samples.
func (p *Plan) stageNSAt(dv, k int, encode, decode bool, prev, next, mb int) (int64, bool) {
	w, ok := p.WorkNS(dv, mb)
	if !ok {
		return 0, false
	}
	t := int64(k) * w.Step
	if encode {
		t += w.First + w.Encode
	}
	if decode {
		t += w.Decode + w.Last
	}
	hop := func(a, b int) int64 {
		if a < 0 || b < 0 {
			return 0
		}
		ns, _ := p.HopNS(a, b, mb) // a missing link cost is checkLinks' to report
		return ns
	}
	if prev >= 0 {
		t += p.ReceiveNS(prev, dv)
	}
	in, out := hop(prev, dv), hop(dv, next)
	if p.Layout.Handoff == HandoffBuffered {
		return max(t, in, out), true
	}
	return t + in + out, true
}

// Work is what one micro-batch costs a device, in nanoseconds: a sampler
// step (the UNet call / speed + host time), the device's very first step
// instead (FirstCallNS / speed + host time), encode and decode of the
// whole micro-batch (/ speed), and the micro-batch's per-sample host work
// on the first stage (First: batch × sample_first_ms) and on the last
// (Last: batch × sample_last_ms). Device speed scales the device's work,
// not the host's. Each piece is rounded to whole nanoseconds on its own.
type Work struct {
	Step, FirstStep, Encode, Decode int64
	// FirstEncodes and FirstDecodes are the device's first encode and
	// decode calls of the micro-batch, in order: Encode and Decode plus the
	// warm-up of each of encode_first_ms and decode_first_ms over the
	// steady time of one sample (none when not slower).
	FirstEncodes, FirstDecodes []int64
	First, Last                int64
}

// WorkNS returns the Work of a micro-batch of size batch on device dv from
// the plan's profile: the one cost formula that StageNS (and so the
// balanced assignment) and the simulator share.
// It reports false without a profile, costs for the device's kind, UNet
// costs for the batch size, or with a speed that is not a positive number.
func (p *Plan) WorkNS(dv, batch int) (Work, bool) {
	if p.Profile == nil || dv < 0 || dv >= len(p.Devices) {
		return Work{}, false
	}
	d := p.Devices[dv]
	dc, ok := p.Profile.Devices[d.Kind]
	speed := d.Speed
	if !ok || !(speed > 0) || math.IsInf(speed, 0) {
		return Work{}, false
	}
	step, ok1 := dc.StepNS(batch)
	first, ok2 := dc.FirstCallNS(batch)
	if !ok1 || !ok2 {
		return Work{}, false
	}
	scaled := func(ns int64) int64 { return int64(math.Round(float64(ns) / speed)) }
	host := ms(dc.HostMSPerStep)
	return Work{
		Step:         scaled(step) + host,
		FirstStep:    scaled(first) + host,
		Encode:       scaled(int64(batch) * ms(dc.EncodeMS)),
		Decode:       scaled(int64(batch) * ms(dc.DecodeMS)),
		FirstEncodes: warmCalls(dc.EncodeFirstMS, dc.EncodeMS, batch, scaled),
		FirstDecodes: warmCalls(dc.DecodeFirstMS, dc.DecodeMS, batch, scaled),
		First:        int64(batch) * ms(dc.SampleFirstMS),
		Last:         int64(batch) * ms(dc.SampleLastMS),
	}, true
}

// warmCalls are the first calls of a micro-batch of batch samples whose
// one-sample times are first (steady: the time of one sample after them),
// scaled by the device's speed.
func warmCalls(first []float64, steady float64, batch int, scaled func(int64) int64) []int64 {
	if len(first) == 0 {
		return nil
	}
	out := make([]int64, len(first))
	for i, v := range first {
		out[i] = scaled(int64(batch)*ms(steady) + ms(max(v-steady, 0)))
	}
	return out
}

// StageNS is the expected steady-state time of stage s per micro-batch, in
// nanoseconds, from the plan's profile:
//
//	compute = steps × (UNet step time at the micro-batch size / device speed
//	                   + host overhead per step)
//	        + micro-batch × (sample_first + encode time / speed), on the encode stage
//	        + micro-batch × (decode time / speed + sample_last), on the decode stage
//	        + the receive time of the hop into the stage (receive_us)
//	blocking hand-off: compute + hop in + hop out
//	buffered hand-off: max(compute, hop in, hop out)
//
// where a hop is HopNS of the micro-batch from the previous stage's device
// and to the next one's (0 at the pipeline's ends and within a device). A
// blocking stage is busy while it receives and sends; a buffered one
// overlaps transfers with compute, so a link is the bottleneck only when
// a transfer outlasts the compute. The first UNet call's extra warm-up and
// a link's first-use set-up are not counted: they are paid once, so they
// shift the first sample's latency but not the steady-state rate that the
// slowest stage sets. Each UNet call, encode and decode is rounded to whole
// nanoseconds after the speed is applied, as the simulator does, so the
// two agree exactly. This is the time the balanced assignment minimises the
// maximum of. It reports false without a profile or without costs for the
// stage's device kind. The stage's neighbours are read from the plan's
// resolved Pipelines; for a pipeline not (yet) in the plan, use
// PipelineStageNS.
func (p *Plan) StageNS(s Stage) (int64, bool) {
	if s.Pipeline >= 0 && s.Pipeline < len(p.Pipelines) && s.Index >= 0 && s.Index < len(p.Pipelines[s.Pipeline].Stages) {
		return p.PipelineStageNS(p.Pipelines[s.Pipeline], s.Index, p.Layout.MicroBatch)
	}
	return p.stageNS(s.DevIdx, s.Steps(), s.Encode, s.Decode, -1, -1)
}

// PipelineStageNS is StageNS of stage i of pipeline pl for a micro-batch
// of batch samples; pl need not be one of the plan's Pipelines (a
// candidate layout being weighed): the hand-offs are those to and from
// pl's neighbouring stages. It reports false for an i out of range or a
// batch < 1, as StageNS does without costs.
func (p *Plan) PipelineStageNS(pl Pipeline, i, batch int) (int64, bool) {
	if i < 0 || i >= len(pl.Stages) || batch < 1 {
		return 0, false
	}
	st := pl.Stages
	prev, next := -1, -1
	if i > 0 {
		prev = st[i-1].DevIdx
	}
	if i+1 < len(st) {
		next = st[i+1].DevIdx
	}
	s := st[i]
	return p.stageNSAt(s.DevIdx, s.Steps(), s.Encode, s.Decode, prev, next, batch)
}

// maxBalancedWork bounds the balanced search (stages × steps²).
const maxBalancedWork = 2e9

// balancedSplit returns the step counts for the stages on devs that
// minimise the slowest stage's StageNS. Among optimal splits it picks the
// one whose later stages are themselves as balanced as possible, earlier
// stages taking more on a tie (so equal devices without encode and decode
// split as evenly as the even assignment does).
//
// g[i][m] is the best bottleneck for stages i..S-1 covering m steps (each
// stage at least one); g[i][m] = min over k of max(cost_i(k), g[i+1][m-k]).
func (p *Plan) balancedSplit(c *checker, n int, devs []int) ([]int, bool) {
	if p.Profile == nil {
		c.add("layout.assignment", "balanced assignment needs a cost profile; set costs: path/to/profile.yaml, or use assignment: even")
		return nil, false
	}
	s := len(devs)
	if float64(s)*float64(n)*float64(n) > maxBalancedWork {
		c.add("layout.assignment", "balanced assignment of %d steps over %d stages is too large to search; use even or explicit", n, s)
		return nil, false
	}
	encode, decode := 0, s-1
	if p.Layout.EncodeOn == EndLast {
		encode = s - 1
	}
	if p.Layout.DecodeOn == EndFirst {
		decode = 0
	}
	cost := make([][]int64, s) // cost[i][k]: stage i with k steps
	for i, dv := range devs {
		cost[i] = make([]int64, n+1)
		for k := 1; k <= n; k++ {
			prev, next := -1, -1
			if i > 0 {
				prev = devs[i-1]
			}
			if i+1 < s {
				next = devs[i+1]
			}
			t, ok := p.stageNS(dv, k, i == encode, i == decode, prev, next)
			if !ok {
				c.add("layout.assignment", "balanced assignment needs costs for device kind %q (device %s) in profile %s", p.Devices[dv].Kind, p.Devices[dv].Name, p.Profile.name())
				return nil, false
			}
			cost[i][k] = t
		}
	}
	g := make([][]int64, s)
	g[s-1] = cost[s-1]
	for i := s - 2; i >= 0; i-- {
		g[i] = make([]int64, n+1)
		rest := s - 1 - i // stages after i
		for m := rest + 1; m <= n; m++ {
			best := int64(math.MaxInt64)
			for k := 1; k <= m-rest; k++ {
				best = min(best, max(cost[i][k], g[i+1][m-k]))
			}
			g[i][m] = best
		}
	}
	sizes := make([]int, s)
	m := n
	for i := 0; i < s-1; i++ {
		rest := s - 1 - i
		bestK, best := 0, int64(math.MaxInt64)
		for k := 1; k <= m-rest; k++ {
			if t := max(cost[i][k], g[i+1][m-k]); t <= best {
				bestK, best = k, t
			}
		}
		sizes[i] = bestK
		m -= bestK
	}
	sizes[s-1] = m
	return sizes, true
}

// StageMemoryGB is the device memory stage s needs, in GiB: the UNet
// weights and the runtime's overhead, activations for one micro-batch,
// and the encoder's or decoder's weights on the stage that runs them. It
// reports false without a profile or without costs for the device kind.
func (p *Plan) StageMemoryGB(s Stage) (float64, bool) {
	if p.Profile == nil || s.DevIdx < 0 || s.DevIdx >= len(p.Devices) {
		return 0, false
	}
	dc, ok := p.Profile.Devices[p.Devices[s.DevIdx].Kind]
	if !ok {
		return 0, false
	}
	return dc.Memory.NeedGB(p.Layout.MicroBatch, s.Encode, s.Decode), true
}

// Hop is one device-to-device transfer a pipeline makes per micro-batch,
// with the link kind it goes over.
type Hop struct {
	From, To string // device names
	Kind     string // link kind (Links.LinkKind)
}

// Hops lists the transfers of pipeline pl: the latent from each stage to
// the next.
func (p *Plan) Hops(pl Pipeline) []Hop {
	var hops []Hop
	st := pl.Stages
	for i := 0; i+1 < len(st); i++ {
		hops = append(hops, Hop{st[i].Device, st[i+1].Device, p.Links.LinkKind(st[i].Device, st[i+1].Device)})
	}
	return hops
}
