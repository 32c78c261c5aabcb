package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Describe prints a human summary of the resolved plan: the model, sampler,
// devices, layout and workload, then per pipeline each stage's device,
// step range and work, and, when a profile is loaded, the expected stage
// time per micro-batch (StageNS) and the steady-state rate the slowest
// stage allows.
func (p *Plan) Describe(w io.Writer) {
	m := p.Model
	fmt.Fprintf(w, "plan %s", p.Name)
	if p.File != "" {
		fmt.Fprintf(w, " (%s)", p.File)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  model\t%s\n", describeModel(m.Family, m.Frames, m.Latent, m.Dtype, m.CFG != nil))
	s := p.Sampler
	fmt.Fprintf(tw, "  sampler\t%s, %d steps, sigma %g..%g, rho %g\n", s.Kind, s.Steps, s.SigmaMin, s.SigmaMax, s.Rho)
	fmt.Fprintf(tw, "  devices\t%s\n", p.describeDevices())
	l := p.Layout
	stages := 0
	if len(p.Pipelines) > 0 {
		stages = len(p.Pipelines[0].Stages)
	}
	fmt.Fprintf(tw, "  layout\t%d pipeline(s) × %d stage(s), assignment %s, micro-batch %d, encode on %s, decode on %s, handoff %s\n",
		len(p.Pipelines), stages, l.Assignment, l.MicroBatch, l.EncodeOn, l.DecodeOn, l.Handoff)
	fmt.Fprintf(tw, "  workload\t%d samples, arrival %s, seed %d; transport %s\n", p.Workload.Samples, p.Workload.Arrival, p.Workload.Seed, p.Transport)
	if p.Profile != nil {
		pv := p.Profile.Provenance
		from := ""
		if pv.Source == "measured" {
			from = " on " + pv.Machine
		}
		fmt.Fprintf(tw, "  costs\t%s (%s%s, %s)\n", p.Profile.File, pv.Source, from, pv.Date)
	} else {
		fmt.Fprintf(tw, "  costs\tnone (no stage times)\n")
	}
	tw.Flush()

	var rate float64
	for _, pl := range p.Pipelines {
		fmt.Fprintf(w, "\npipeline %d\n", pl.Index)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "  stage\tdevice\tkind\tsteps\tcount\twork")
		if p.Profile != nil {
			fmt.Fprint(tw, "\tstage time/micro-batch")
		}
		fmt.Fprint(tw, "\tnext hop\n")
		var slowest int64
		slow := -1
		for i, st := range pl.Stages {
			var work []string
			if st.Encode {
				work = append(work, "encode")
			}
			work = append(work, "unet")
			if st.Decode {
				work = append(work, "decode")
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d..%d\t%d\t%s", st.Index, st.Device, p.Devices[st.DevIdx].Kind, st.First, st.Last, st.Steps(), strings.Join(work, "+"))
			if p.Profile != nil {
				if t, ok := p.StageNS(st); ok {
					fmt.Fprintf(tw, "\t%.3f s", float64(t)/1e9)
					if t > slowest {
						slowest, slow = t, i
					}
				} else {
					fmt.Fprint(tw, "\t?")
				}
			}
			next := "-"
			if i+1 < len(pl.Stages) {
				next = p.Links.LinkKind(st.Device, pl.Stages[i+1].Device) + " → " + pl.Stages[i+1].Device
			}
			fmt.Fprintf(tw, "\t%s\n", next)
		}
		tw.Flush()
		if slow >= 0 {
			r := float64(p.Layout.MicroBatch) / (float64(slowest) / 1e9)
			rate += r
			fmt.Fprintf(w, "  slowest stage %d: %.3f s per micro-batch of %d → at most %.3f samples/s\n", slow, float64(slowest)/1e9, p.Layout.MicroBatch, r)
		}
	}
	if rate > 0 && len(p.Pipelines) > 1 {
		fmt.Fprintf(w, "\nall pipelines: at most %.3f samples/s (steady state, hand-offs counted, warm-up and link set-up not)\n", rate)
	}
}

// describeDevices summarises the device list: "7 × a5000 24 GiB (gpu0..gpu6)"
// when the devices are alike, else one entry per device.
func (p *Plan) describeDevices() string {
	if len(p.Devices) == 0 {
		return "none"
	}
	one := func(d Device) string {
		s := d.Kind
		if d.MemoryGB > 0 {
			s += fmt.Sprintf(" %g GiB", d.MemoryGB)
		}
		if d.Speed != 1 {
			s += fmt.Sprintf(" speed %g", d.Speed)
		}
		return s
	}
	first := one(p.Devices[0])
	alike := true
	numa := map[int]bool{}
	for _, d := range p.Devices {
		alike = alike && one(d) == first
		numa[d.NUMA] = true
	}
	if alike {
		names := p.Devices[0].Name
		if len(p.Devices) > 1 {
			names += ".." + p.Devices[len(p.Devices)-1].Name
		}
		s := fmt.Sprintf("%d × %s (%s)", len(p.Devices), first, names)
		if len(numa) > 1 {
			s += fmt.Sprintf(", %d NUMA nodes", len(numa))
		}
		return s
	}
	var parts []string
	for _, d := range p.Devices {
		parts = append(parts, fmt.Sprintf("%s: %s", d.Name, one(d)))
	}
	return strings.Join(parts, ", ")
}
