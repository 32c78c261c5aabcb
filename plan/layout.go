package plan

import "fmt"

// SplitSteps splits the sampler's steps over the devices devs (indices
// into Devices, in pipeline order) as assignment a does for a pipeline of
// those devices: even (earlier stages take the remainder) or balanced (the
// split that minimises the slowest stage, hand-offs included; it needs a
// profile). Explicit is not a split. It returns the step count of each
// stage.
func (p *Plan) SplitSteps(a Assignment, devs []int) ([]int, error) {
	n, s := p.Sampler.Steps, len(devs)
	switch {
	case s == 0:
		return nil, fmt.Errorf("plan: split steps: no devices")
	case n < s:
		return nil, fmt.Errorf("plan: split steps: %d steps cannot fill %d stages", n, s)
	}
	for _, dv := range devs {
		if dv < 0 || dv >= len(p.Devices) {
			return nil, fmt.Errorf("plan: split steps: no device %d", dv)
		}
	}
	switch a {
	case AssignEven:
		return evenSplit(n, s), nil
	case AssignBalanced:
		c := newChecker(p.File, nil)
		sizes, ok := p.balancedSplit(c, n, devs)
		if !ok {
			return nil, c.err()
		}
		return sizes, nil
	}
	return nil, fmt.Errorf("plan: split steps: assignment %q is not a split (want even or balanced)", a)
}

// BuildPipeline makes pipeline idx of the devices devs (in order) with the
// given step counts per stage, encode and decode on the ends the layout
// names. It does not check it: UsePipelines does.
func (p *Plan) BuildPipeline(idx int, devs, sizes []int) Pipeline {
	return p.makePipeline(idx, devs, sizes)
}
