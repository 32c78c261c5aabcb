package plan

import (
	"errors"
	"fmt"
)

// UsePipelines sets a layout built in code (a study, a layout search, a
// test) instead of one resolved from the plan's layout fields, with the
// same checks as an explicit layout in a plan file: each pipeline's stages
// cover the steps in order, contiguously, each step exactly once, on
// devices of the plan. Encode and decode are marked on the ends that
// layout.encode_on and layout.decode_on name, whatever the stages say. A
// device may hold stages of several pipelines (the simulator time-shares
// it; the executor refuses such a plan), but one stage per pipeline.
// Defaults must be filled (EnsureDefaults). On success the plan is
// resolved (see Ready); on error it is left as it was. The layout fields
// are not changed: Resolve, Apply and DataParallel rebuild the layout from
// them, replacing pipelines set here.
func (p *Plan) UsePipelines(pipes []Pipeline) error {
	c := newChecker(p.File, nil)
	specs := make([]stageSpecs, len(pipes))
	for i, pl := range pipes {
		specs[i].path = fmt.Sprintf("pipelines[%d].stages", i)
		for _, st := range pl.Stages {
			specs[i].stages = append(specs[i].stages, StageSpec{Device: st.Device, Steps: [2]StepIndex{st.First, st.Last}})
		}
	}
	if len(pipes) == 0 {
		c.add("pipelines", "no pipelines; give at least one")
	}
	built := p.explicitPipelines(c, specs, true)
	if err := c.err(); err != nil {
		return err
	}
	old := p.Pipelines
	p.Pipelines = built
	if p.checkEnds(c) {
		p.Pipelines = old
		return c.err()
	}
	p.resolved = true
	return nil
}

// errNotReady is wrapped by Ready's errors.
var errNotReady = errors.New("plan is not resolved")

// Ready reports whether p is what the simulator and the executor consume:
// every default filled (EnsureDefaults), a layout resolved into Pipelines
// (Load, Parse, Resolve or UsePipelines), and every field and stage still
// passing the plan's checks, so that sim and exec neither re-default nor
// re-check a plan themselves. The checks are the plan's own (Validate, and
// the step-range and ends checks of an explicit layout), run again because
// a caller may have changed a resolved plan in place; they cost
// microseconds. Every field of every stage must be what the plan makes of
// its device and range (indices, Encode and Decode where layout.encode_on
// and layout.decode_on put them), and a profile's costs must be numbers
// the simulator can use, with a cost for every hop.
func (p *Plan) Ready() error {
	switch {
	case p == nil:
		return fmt.Errorf("nil plan: %w", errNotReady)
	case !p.defaulted:
		return fmt.Errorf("plan %s: defaults not filled (call EnsureDefaults, or load it with plan.Load): %w", p.Name, errNotReady)
	case !p.resolved || len(p.Pipelines) == 0:
		return fmt.Errorf("plan %s: no resolved layout (load it with plan.Load, or call Resolve or UsePipelines): %w", p.Name, errNotReady)
	}
	c := newChecker(p.File, p.pos)
	p.validate(c)
	if err := c.err(); err != nil {
		return err
	}
	specs := make([]stageSpecs, len(p.Pipelines))
	for i, pl := range p.Pipelines {
		specs[i].path = fmt.Sprintf("pipelines[%d].stages", i)
		for j, st := range pl.Stages {
			if st.DevIdx < 0 || st.DevIdx >= len(p.Devices) || p.Devices[st.DevIdx].Name != st.Device {
				c.add(fmt.Sprintf("%s[%d].device", specs[i].path, j), "device %q at index %d is not that device of the plan", st.Device, st.DevIdx)
			}
			specs[i].stages = append(specs[i].stages, StageSpec{Device: st.Device, Steps: [2]StepIndex{st.First, st.Last}})
		}
	}
	for i, want := range p.explicitPipelines(c, specs, true) {
		if p.Pipelines[i].Index != i {
			c.add(fmt.Sprintf("pipelines[%d]", i), "has index %d; pipelines are numbered by position", p.Pipelines[i].Index)
		}
		for j, st := range p.Pipelines[i].Stages {
			if j < len(want.Stages) && st != want.Stages[j] {
				c.add(fmt.Sprintf("%s[%d]", specs[i].path, j), "is %s, but the plan makes it %s (layout.encode_on %s, decode_on %s)",
					stageString(st), stageString(want.Stages[j]), p.Layout.EncodeOn, p.Layout.DecodeOn)
			}
		}
	}
	if len(c.errs) == 0 {
		p.checkEnds(c)
	}
	if len(c.errs) == 0 && p.Profile != nil {
		p.checkLinks(c)
		pc := newChecker(p.Profile.File, nil)
		pc.doc = "profile"
		p.Profile.validateCosts(pc, false)
		if err := pc.err(); err != nil {
			c.merge("costs", err)
		} else {
			p.checkTimes(c)
		}
	}
	return c.err()
}

// stageString describes a stage's fields for messages.
func stageString(s Stage) string {
	return fmt.Sprintf("pipeline %d stage %d on %s (device %d), steps %d..%d, encode %v, decode %v",
		s.Pipeline, s.Index, s.Device, s.DevIdx, s.First, s.Last, s.Encode, s.Decode)
}
