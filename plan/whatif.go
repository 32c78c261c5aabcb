package plan

import (
	"fmt"
	"strings"
)

// Overrides are what-if changes to a loaded plan, as the CLIs take them
// from flags. A nil field leaves the plan as it is. Messages name an
// override by its flag (--samples, --steps, --devices, --micro-batch,
// --replicas, --seed, --latent-shape), the names the CLIs give them.
type Overrides struct {
	Samples    *int
	Steps      *int
	Devices    *int // rebuild the device list with this many devices
	MicroBatch *int
	Replicas   *int
	Seed       *uint64
	// LatentShape is B C F H W: micro-batch, latent channels, frames,
	// latent height, latent width.
	LatentShape *[5]int
}

// Apply changes the plan as o says, then validates it, checks it against
// its profile and resolves the layout again. On error the plan is left as
// it was.
//
// Devices N keeps the first min(N, len) devices and adds copies of the
// first device (named like it: gpu7, gpu8, …) as needed; it needs the
// devices to be alike (kind, memory, speed, provider, threads, host) and an even
// or balanced layout. A data-parallel plan (replicas = devices) stays data
// parallel, other plans keep their replica count; link overrides naming a
// device that is gone are dropped.
func (p *Plan) Apply(o Overrides) error {
	if err := o.Check(); err != nil {
		return err
	}
	q := p.Clone()
	explicit := q.Layout.Assignment == AssignExplicit
	var errs []*Error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, &Error{Flag: flag, Msg: fmt.Sprintf(format, args...)})
	}
	// over records which field each flag set, so that the checks of the
	// changed plan name the flag, not the file's line.
	over := map[string]string{}
	if o.Samples != nil {
		q.Workload.Samples = *o.Samples
		over["workload.samples"] = flagText("samples", *o.Samples)
	}
	if o.Steps != nil {
		if explicit && *o.Steps != q.Sampler.Steps {
			bad(flagText("steps", *o.Steps), "cannot change a plan with an explicit layout (its stages name step ranges); edit the plan")
		}
		q.Sampler.Steps = *o.Steps
		over["sampler.steps"] = flagText("steps", *o.Steps)
	}
	if o.MicroBatch != nil {
		q.Layout.MicroBatch = *o.MicroBatch
		over["layout.micro_batch"] = flagText("micro-batch", *o.MicroBatch)
	}
	if o.Replicas != nil {
		if explicit {
			bad(flagText("replicas", *o.Replicas), "cannot change a plan with an explicit layout; edit the plan")
		}
		q.Layout.Replicas = *o.Replicas
		over["layout.replicas"] = flagText("replicas", *o.Replicas)
	}
	if o.Seed != nil {
		q.Workload.Seed = *o.Seed
	}
	if o.LatentShape != nil {
		sh := *o.LatentShape
		q.Layout.MicroBatch = sh[0]
		q.Model.Latent = Latent{Channels: sh[1], Height: sh[3], Width: sh[4]}
		q.Model.Frames = sh[2]
		flag := fmt.Sprintf("--latent-shape \"%d %d %d %d %d\"", sh[0], sh[1], sh[2], sh[3], sh[4])
		for _, f := range []string{"layout.micro_batch", "model.frames", "model.latent.channels", "model.latent.height", "model.latent.width", "costs"} {
			over[f] = flag
		}
	}
	if o.Devices != nil {
		flag := flagText("devices", *o.Devices)
		if explicit {
			bad(flag, "cannot change a plan with an explicit layout; edit the plan")
		} else if err := q.resizeDevices(*o.Devices, o.Replicas == nil); err != nil {
			bad(flag, "%v", err)
		} else {
			for _, f := range []string{"devices", "layout.replicas", "sampler.steps"} {
				if _, ok := over[f]; !ok {
					over[f] = flag
				}
			}
			for i := range q.Devices {
				over[fmt.Sprintf("devices[%d].memory_gb", i)] = flag
			}
		}
	}
	if len(errs) > 0 {
		return errorList(errs, 0)
	}
	if err := q.recheckOver(over); err != nil {
		return err
	}
	*p = *q
	return nil
}

// UseTransport changes the plan's transport to t, as a command-line flag
// says (flag, such as "--backend nccl", names it in messages), fills the
// device indexes that now default (a cpu device under nccl takes the
// position among such devices on its host, see EnsureDefaults), then
// validates and resolves the plan as Apply does. An index written in the
// file is kept. On error the plan is left as it was.
func (p *Plan) UseTransport(t Transport, flag string) error {
	q := p.Clone()
	q.Transport = t
	q.defaultIndexes()
	over := map[string]string{"transport": flag}
	if err := q.recheckOver(over); err != nil {
		return err
	}
	*p = *q
	return nil
}

// flagText is how messages name a what-if flag with its value.
func flagText(name string, v int) string { return fmt.Sprintf("--%s %d", name, v) }

// Check checks the overrides' own values, before any plan: counts at
// least 1 and within the plan's limits, a latent shape of positive
// numbers. Problems name the flag ("--samples 0: must be at least 1").
func (o Overrides) Check() error {
	var errs []*Error
	check := func(name string, v *int, hi int) {
		switch {
		case v == nil:
		case *v < 1:
			errs = append(errs, &Error{Flag: flagText(name, *v), Msg: name + " must be at least 1"})
		case *v > hi:
			errs = append(errs, &Error{Flag: flagText(name, *v), Msg: fmt.Sprintf("%s must be at most %d", name, hi)})
		}
	}
	check("samples", o.Samples, maxSamples)
	check("steps", o.Steps, maxSteps)
	check("devices", o.Devices, maxDevices)
	check("micro-batch", o.MicroBatch, maxMicroBatch)
	check("replicas", o.Replicas, maxDevices)
	if o.LatentShape != nil {
		sh := *o.LatentShape
		flag := fmt.Sprintf("--latent-shape \"%d %d %d %d %d\"", sh[0], sh[1], sh[2], sh[3], sh[4])
		for i, hi := range []int{maxMicroBatch, maxShape, maxShape, maxShape, maxShape} {
			if sh[i] < 1 || sh[i] > hi {
				errs = append(errs, &Error{Flag: flag, Msg: fmt.Sprintf("B C F H W must each be from 1 to %d (micro-batch up to %d), got %d at position %d", maxShape, maxMicroBatch, sh[i], i+1)})
				break
			}
		}
	}
	return errorList(errs, 0)
}

// deviceDiff lists the fields in which device d differs from t, among
// those a resize copies ("memory_gb (16, not 24), speed (0.65, not 1)"),
// or "" when d is alike.
func deviceDiff(d, t Device) string {
	var out []string
	add := func(field string, a, b any) {
		if a != b {
			out = append(out, fmt.Sprintf("%s (%v, not %v)", field, a, b))
		}
	}
	add("kind", d.Kind, t.Kind)
	add("memory_gb", d.MemoryGB, t.MemoryGB)
	add("speed", d.Speed, t.Speed)
	add("provider", d.Provider, t.Provider)
	add("threads", d.Threads, t.Threads)
	add("host", d.Host, t.Host)
	return strings.Join(out, ", ")
}

// resizeDevices rebuilds the device list with n devices (see Apply).
func (p *Plan) resizeDevices(n int, keepDP bool) error {
	if len(p.Devices) == 0 {
		return fmt.Errorf("the plan has no devices to copy")
	}
	if n > maxDevices {
		return fmt.Errorf("devices must be at most %d, got %d", maxDevices, n)
	}
	t := p.Devices[0]
	for _, d := range p.Devices[1:] {
		if diff := deviceDiff(d, t); diff != "" {
			return fmt.Errorf("devices can only be resized when all are alike, but %s differs from %s in %s; edit the plan", d.Name, t.Name, diff)
		}
	}
	if keepDP && p.Layout.Replicas == len(p.Devices) {
		p.Layout.Replicas = n
	}
	prefix := strings.TrimRight(t.Name, "0123456789")
	cuda := 0
	for _, d := range p.Devices {
		if p.TakesIndex(d) {
			cuda = max(cuda, d.Index+1)
		}
	}
	devs := make(Devices, n)
	have := map[string]bool{}
	for i := range devs {
		if i < len(p.Devices) {
			devs[i] = p.Devices[i]
		} else {
			d := t
			d.Name = fmt.Sprintf("%s%d", prefix, i)
			if p.TakesIndex(d) {
				d.Index = cuda
				cuda++
			}
			devs[i] = d
		}
		have[devs[i].Name] = true
	}
	var links []LinkOverride
	for _, o := range p.Links.Overrides {
		if have[o.Between[0]] && have[o.Between[1]] {
			links = append(links, o)
		}
	}
	p.Devices, p.Links.Overrides = devs, links
	return nil
}

// recheck validates a changed plan, checks it against its profile and
// resolves it.
func (p *Plan) recheck() error { return p.recheckOver(nil) }

// recheckOver is recheck with problems on the fields in over reported
// against the flag that set them.
func (p *Plan) recheckOver(over map[string]string) error {
	c := newChecker(p.File, p.pos)
	c.over = over
	p.validate(c)
	if p.Profile != nil {
		p.checkProfile(c)
	}
	p.resolve(c)
	if p.Profile != nil && len(p.Pipelines) > 0 {
		p.checkLinks(c)
		p.checkMemory(c)
		p.checkTimes(c)
	}
	return c.err()
}

// DataParallel returns a copy of the plan in which every device is its own
// one-stage pipeline (replicas = devices, encode and decode on it), for
// comparing a step pipeline with plain data parallelism on the same
// devices and workload. Its name gets the suffix "-dp".
func (p *Plan) DataParallel() (*Plan, error) {
	q := p.Clone()
	q.Name += "-dp"
	q.Layout.Assignment = AssignEven
	q.Layout.Stages, q.Layout.Pipelines = nil, nil
	q.Layout.Replicas = len(q.Devices)
	if err := q.recheck(); err != nil {
		return nil, err
	}
	return q, nil
}

// Clone returns a deep copy of the plan. The profile is shared: it is
// read-only once loaded.
func (p *Plan) Clone() *Plan {
	q := *p
	if p.Model.CFG != nil {
		cfg := *p.Model.CFG
		q.Model.CFG = &cfg
	}
	q.Devices = append(Devices(nil), p.Devices...)
	q.Layout.Stages = append([]StageSpec(nil), p.Layout.Stages...)
	q.Layout.Pipelines = nil
	for _, ps := range p.Layout.Pipelines {
		q.Layout.Pipelines = append(q.Layout.Pipelines, PipelineSpec{Stages: append([]StageSpec(nil), ps.Stages...)})
	}
	q.Links.Overrides = append([]LinkOverride(nil), p.Links.Overrides...)
	q.Pipelines = nil
	for _, pl := range p.Pipelines {
		q.Pipelines = append(q.Pipelines, Pipeline{Index: pl.Index, Stages: append([]Stage(nil), pl.Stages...)})
	}
	return &q
}
