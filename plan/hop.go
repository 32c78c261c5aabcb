package plan

import "fmt"

// HopCost is what a hand-off of a latent from one device to another costs,
// and where the number came from.
type HopCost struct {
	LinkCosts
	// Kind is the link kind between the two devices (Links.LinkKind).
	Kind string
	// Measured is true when the costs are the profile's measurement of the
	// plan's transport (Profile.Transports), which then prices every link.
	Measured bool
}

// HopCost returns the cost of handing a latent from device a to device b
// (indices into Devices): the one rule that the simulator, the stage times
// (StageNS, and so the balanced assignment) and the plan's checks share.
//
//   - When the profile measured the plan's transport (vdexec profile
//     writes Profile.Transports), that measurement prices every hop: it is
//     what this transport cost on this machine, whatever the link kind.
//   - Otherwise the link kind between the two devices prices it
//     (Profile.Links[Links.LinkKind(a, b)]).
//
// A hand-off within one device costs nothing and reports false, as does
// a plan without a profile or a link kind the profile lacks.
func (p *Plan) HopCost(a, b int) (HopCost, bool) {
	if p.Profile == nil || a == b || a < 0 || b < 0 || a >= len(p.Devices) || b >= len(p.Devices) {
		return HopCost{}, false
	}
	kind := p.Links.LinkKind(p.Devices[a].Name, p.Devices[b].Name)
	if c, ok := p.Profile.Transports[string(p.Transport)]; ok {
		return HopCost{LinkCosts: c, Kind: kind, Measured: true}, true
	}
	c, ok := p.Profile.Links[kind]
	return HopCost{LinkCosts: c, Kind: kind}, ok
}

// HopNS is the time of handing a micro-batch of batch samples from device
// a to device b, set-up excluded: the transfer of batch latents
// (LinkCosts.TransferNS of batch × Model.LatentBytes). It is 0 within one
// device and false where HopCost has no costs.
func (p *Plan) HopNS(a, b, batch int) (int64, bool) {
	if a == b {
		return 0, true
	}
	h, ok := p.HopCost(a, b)
	if !ok {
		return 0, false
	}
	return h.TransferNS(int64(batch) * p.Model.LatentBytes()), true
}

// ReceiveNS is the receiving device's host time per hand-off from device
// a to device b (LinkCosts.ReceiveNS of HopCost): 0 within one device or
// without costs.
func (p *Plan) ReceiveNS(a, b int) int64 {
	h, ok := p.HopCost(a, b)
	if !ok {
		return 0
	}
	return h.ReceiveNS()
}

// Ranks is the number of devices the plan's resolved pipelines use: the
// ranks of a run, by which a link's first-use set-up may grow
// (LinkCosts.SetupNS).
func (p *Plan) Ranks() int {
	seen := map[int]bool{}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			seen[st.DevIdx] = true
		}
	}
	return len(seen)
}

// TransportMeasured reports whether the profile measured the plan's
// transport, so that HopCost prices every hop with that measurement.
func (p *Plan) TransportMeasured() bool {
	if p.Profile == nil {
		return false
	}
	_, ok := p.Profile.Transports[string(p.Transport)]
	return ok
}

// checkLinks checks that every hop of the resolved layout has a cost.
func (p *Plan) checkLinks(c *checker) {
	for _, pl := range p.Pipelines {
		for i := 0; i+1 < len(pl.Stages); i++ {
			a, b := pl.Stages[i], pl.Stages[i+1]
			if a.DevIdx == b.DevIdx {
				continue
			}
			if _, ok := p.HopCost(a.DevIdx, b.DevIdx); ok {
				continue
			}
			kind := p.Links.LinkKind(a.Device, b.Device)
			path := "links.default"
			for i, o := range p.Links.Overrides {
				if (o.Between[0] == a.Device && o.Between[1] == b.Device) || (o.Between[0] == b.Device && o.Between[1] == a.Device) {
					path = fmt.Sprintf("links.overrides[%d].kind", i)
				}
			}
			c.add(path, "link kind %q (%s→%s) has no costs in profile %s (it has: %s), and the profile did not measure transport %s (it measured: %s); add the link kind to the profile, or measure this transport with vdexec profile",
				kind, a.Device, b.Device, p.Profile.name(), keys(p.Profile.Links), p.Transport, keys(p.Profile.Transports))
		}
	}
}
