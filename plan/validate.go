package plan

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Validate checks every field of a plan whose defaults are filled, and the
// rules between fields, and returns all problems as a *Errors. The layout
// itself (step ranges) is checked by Resolve.
func (p *Plan) Validate() error {
	c := newChecker(p.File, p.pos)
	p.validate(c)
	return c.err()
}

// oneOf checks that v is one of the allowed words.
func oneOf(c *checker, path, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	switch {
	case v == "" && c.has(path):
		c.add(path, "empty; want one of %s", strings.Join(allowed, ", "))
	case v == "":
		c.add(path, "missing; want one of %s", strings.Join(allowed, ", "))
	default:
		c.add(path, "%s is not allowed; want one of %s", fragment(v), strings.Join(allowed, ", "))
	}
	return false
}

// count checks a whole number that must be in [lo, hi]. A zero that is
// not written in the file is reported as missing, with what to write.
func count(c *checker, path string, v, lo, hi int, what string) {
	switch {
	case v == 0 && lo > 0 && !c.has(path):
		c.add(path, "missing; set %s (a whole number ≥ %d)", what, lo)
	case v < lo:
		c.add(path, "must be at least %d, got %d", lo, v)
	case v > hi:
		c.add(path, "must be at most %d, got %d", hi, v)
	}
}

const (
	maxShape   = 4096    // frames, channels, height, width
	maxSamples = 1 << 30 // workload.samples
)

func (p *Plan) validate(c *checker) {
	if c.has("name") || p.Name != "" {
		checkName(c, "name", p.Name, MaxPlanNameLen, true)
	}
	if p.Costs == "" && c.has("costs") {
		// Zero is not absent: an empty costs written in the file is a
		// mistake (a variable that expanded to nothing), not "no profile".
		c.add("costs", "empty; name the cost profile file (relative to the plan's folder), or leave costs out")
	}
	checkText(c, "costs", p.Costs, false)
	blankPath(c, "costs", p.Costs)
	p.validateModel(c)
	p.validateSampler(c)
	p.validateDevices(c)
	p.validateLayout(c)
	p.validateLinks(c)
	p.validateTransport(c)
	p.validateWorkload(c)
}

// blankPath checks a file path of the plan: one of white space only
// ("  ") names no file, and is no more meant than an empty one.
func blankPath(c *checker, path, s string) {
	if s != "" && strings.TrimSpace(s) == "" {
		c.add(path, "blank (white space only: %q); name the file (relative to the plan's folder), or leave %s out", s, path[strings.LastIndexByte(path, '.')+1:])
	}
}

func (p *Plan) validateModel(c *checker) {
	m := p.Model
	checkText(c, "model.onnx.unet", m.ONNX.UNet, false)
	checkText(c, "model.onnx.encoder", m.ONNX.Encoder, false)
	checkText(c, "model.onnx.decoder", m.ONNX.Decoder, false)
	blankPath(c, "model.onnx.unet", m.ONNX.UNet)
	blankPath(c, "model.onnx.encoder", m.ONNX.Encoder)
	blankPath(c, "model.onnx.decoder", m.ONNX.Decoder)
	oneOf(c, "model.family", m.Family, "svd", "tiny")
	count(c, "model.frames", m.Frames, 1, maxShape, "the number of frames")
	count(c, "model.latent.channels", m.Latent.Channels, 1, maxShape, "the latent channels, e.g. 4")
	count(c, "model.latent.height", m.Latent.Height, 1, maxShape, "the latent height (pixels / 8)")
	count(c, "model.latent.width", m.Latent.Width, 1, maxShape, "the latent width (pixels / 8)")
	oneOf(c, "model.dtype", m.Dtype, "fp16", "fp32")
	if m.CFG != nil {
		if m.CFG.Min < 0 {
			c.add("model.cfg.min", "must be ≥ 0, got %g", m.CFG.Min)
		}
		if m.CFG.Max < m.CFG.Min {
			c.add("model.cfg.max", "must be ≥ cfg.min (%g), got %g", m.CFG.Min, m.CFG.Max)
		}
	}
	if m.FPS < 1 {
		c.add("model.fps", "must be at least 1 (leave it out for %d), got %d", DefaultFPS, m.FPS)
	}
	if m.MotionBucket < 0 {
		c.add("model.motion_bucket", "must be ≥ 0, got %d", m.MotionBucket)
	}
	if m.NoiseAug < 0 {
		c.add("model.noise_aug", "must be ≥ 0, got %g", m.NoiseAug)
	}
}

func (p *Plan) validateSampler(c *checker) {
	s := p.Sampler
	oneOf(c, "sampler.kind", s.Kind, "euler-karras")
	count(c, "sampler.steps", s.Steps, 1, maxSteps, "the number of sampler steps, e.g. steps: 25")
	if s.SigmaMin <= 0 {
		c.add("sampler.sigma_min", "must be > 0 (leave it out for %g), got %g", DefaultSigmaMin, s.SigmaMin)
	} else if s.SigmaMin >= s.SigmaMax {
		c.add("sampler.sigma_max", "must be greater than sigma_min (%g), got %g", s.SigmaMin, s.SigmaMax)
	}
	if s.SigmaMax <= 0 && s.SigmaMin <= 0 {
		c.add("sampler.sigma_max", "must be > 0 (leave it out for %g), got %g", DefaultSigmaMax, s.SigmaMax)
	}
	if s.Rho <= 0 {
		c.add("sampler.rho", "must be > 0 (leave it out for %g), got %g", DefaultRho, s.Rho)
	}
}

// validateTransport checks the transport word and, for nccl, that no two
// devices on one named host use the same CUDA device: NCCL gives each rank
// its own. Devices of provider cpu are allowed under nccl: they compute on
// the CPU and NCCL hands their latents through the CUDA device of their
// index (as the fake NCCL of the tests, and a GPU check, do). Devices
// without a host may be on different machines, and are not compared.
func (p *Plan) validateTransport(c *checker) {
	if !oneOfWord(c, "transport", p.Transport) || p.Transport != TransportNCCL {
		return
	}
	type slot struct {
		host  string
		index int
	}
	used := map[slot]int{}
	for i, d := range p.Devices {
		if d.Host == "" || !p.TakesIndex(d) {
			continue
		}
		k := slot{HostKey(d.Host), d.Index}
		if j, dup := used[k]; dup {
			c.add(fmt.Sprintf("devices[%d].index", i), "device %s uses CUDA device %d on host %s, as %s (devices[%d]) does; transport nccl needs one CUDA device per device of the plan: give it another index", d.Name, d.Index, d.Host, p.Devices[j].Name, j)
			continue
		}
		used[k] = i
	}
}

func (p *Plan) validateWorkload(c *checker) {
	w := p.Workload
	count(c, "workload.samples", w.Samples, 1, maxSamples, "the number of samples, e.g. samples: 10")
	a := w.Arrival
	if oneOfWord(c, "workload.arrival.kind", a.Kind) {
		switch {
		case a.Kind == ArrivalPoisson && a.Rate <= 0:
			c.add("workload.arrival.rate", "poisson arrivals need rate > 0 (samples per second), got %g", a.Rate)
		case a.Kind != ArrivalPoisson && a.Rate != 0:
			c.add("workload.arrival.rate", "rate is only for kind poisson (kind is %s); remove it or set kind: poisson", a.Kind)
		}
		switch {
		case a.Kind == ArrivalInterval && a.IntervalMS <= 0:
			c.add("workload.arrival.interval_ms", "interval arrivals need interval_ms > 0, got %g", a.IntervalMS)
		case a.Kind != ArrivalInterval && a.IntervalMS != 0:
			c.add("workload.arrival.interval_ms", "interval_ms is only for kind interval (kind is %s); remove it or set kind: interval", a.Kind)
		}
		p.checkReleases(c)
	}
}

func (p *Plan) validateDevices(c *checker) {
	if len(p.Devices) == 0 {
		c.add("devices", "missing; list the devices, or write {count: 2, kind: a5000, memory_gb: 24}")
		return
	}
	if len(p.Devices) > maxDevices {
		c.add("devices", "at most %d devices, got %d", maxDevices, len(p.Devices))
		return
	}
	names := map[string]int{}
	for i, d := range p.Devices {
		at := fmt.Sprintf("devices[%d]", i)
		checkName(c, at+".name", d.Name, MaxNameLen, false)
		if j, dup := names[d.Name]; dup {
			c.add(at+".name", "name %s is already used by devices[%d]; names must be unique", fragment(d.Name), j)
		}
		names[d.Name] = i
		if d.Kind == "" {
			c.add(at+".kind", "missing; set the device kind, the key of its costs in the profile (e.g. a5000, cpu)")
		} else {
			checkName(c, at+".kind", d.Kind, MaxNameLen, false)
		}
		if d.MemoryGB < 0 || d.MemoryGB > 1e6 {
			c.add(at+".memory_gb", "must be from 0 to 1e6 GiB (0: not checked), got %g", d.MemoryGB)
		}
		if d.NUMA < 0 || d.NUMA >= maxDevices {
			c.add(at+".numa", "must be from 0 to %d, got %d", maxDevices-1, d.NUMA)
		}
		if !(d.Speed >= minSpeed && d.Speed <= maxSpeed) {
			c.add(at+".speed", "must be from %g to %g (1 = as in the profile, 2 = twice as fast; leave it out for 1), got %g", minSpeed, maxSpeed, d.Speed)
		}
		if oneOfWord(c, at+".provider", d.Provider) && d.Kind == "cpu" && d.Provider != ProviderCPU {
			c.add(at+".provider", "kind cpu runs on provider cpu, got %s", d.Provider)
		}
		if d.Threads < 1 {
			c.add(at+".threads", "must be at least 1 (leave it out for 1), got %d", d.Threads)
		} else if d.Threads > MaxThreads {
			c.add(at+".threads", "must be at most %d, got %d: each is an OS thread of this device's session, and more threads than cores only slow it down", MaxThreads, d.Threads)
		}
		if d.Index < 0 || d.Index >= maxDevices {
			c.add(at+".index", "must be from 0 to %d, got %d", maxDevices-1, d.Index)
		}
		if d.Host != "" || c.has(at+".host") {
			if why := hostProblem(d.Host); why != "" {
				c.add(at+".host", "%s", why)
			}
		}
	}
}

func (p *Plan) validateLayout(c *checker) {
	l := p.Layout
	if l.Replicas < 1 {
		c.add("layout.replicas", "must be at least 1 (leave it out for 1, or the number of pipelines listed), got %d", l.Replicas)
	} else if l.Replicas > maxDevices {
		c.add("layout.replicas", "must be at most %d, got %d", maxDevices, l.Replicas)
	}
	if oneOfWord(c, "layout.assignment", l.Assignment) && l.Assignment != AssignExplicit {
		if len(l.Stages) > 0 {
			c.add("layout.stages", "stages are given but assignment is %s; set assignment: explicit or remove stages", l.Assignment)
		}
		if len(l.Pipelines) > 0 {
			c.add("layout.pipelines", "pipelines are given but assignment is %s; set assignment: explicit or remove pipelines", l.Assignment)
		}
	}
	oneOfWord(c, "layout.encode_on", l.EncodeOn)
	oneOfWord(c, "layout.decode_on", l.DecodeOn)
	if l.MicroBatch < 1 {
		c.add("layout.micro_batch", "must be at least 1 (leave it out for 1), got %d", l.MicroBatch)
	} else if l.MicroBatch > maxMicroBatch {
		c.add("layout.micro_batch", "must be at most %d, got %d", maxMicroBatch, l.MicroBatch)
	}
	oneOfWord(c, "layout.handoff", l.Handoff)
	oneOfWord(c, "layout.dispatch", l.Dispatch)
}

func (p *Plan) validateLinks(c *checker) {
	if p.Links.Default == "" {
		c.add("links.default", "missing; name the default link kind, e.g. pcie4")
	} else {
		checkName(c, "links.default", p.Links.Default, MaxNameLen, false)
	}
	names := map[string]bool{}
	for _, d := range p.Devices {
		names[d.Name] = true
	}
	pairs := map[[2]string]int{}
	for i, o := range p.Links.Overrides {
		at := fmt.Sprintf("links.overrides[%d]", i)
		for j, n := range o.Between {
			if !names[n] {
				c.add(fmt.Sprintf("%s.between[%d]", at, j), "device %s is not in devices (have %s)", fragment(n), p.deviceNames())
			}
		}
		if o.Between[0] == o.Between[1] {
			c.add(at+".between", "a link joins two different devices, got %s twice", o.Between[0])
		}
		key := o.Between
		if key[0] > key[1] {
			key[0], key[1] = key[1], key[0]
		}
		if j, dup := pairs[key]; dup {
			c.add(at+".between", "the link %s–%s is already overridden by links.overrides[%d]", key[0], key[1], j)
		}
		pairs[key] = i
		if o.Kind == "" {
			c.add(at+".kind", "missing; name the link kind, e.g. cross-socket")
		} else {
			checkName(c, at+".kind", o.Kind, MaxNameLen, false)
		}
	}
}

// deviceNames lists the device names for messages, shortened when long.
func (p *Plan) deviceNames() string {
	names := p.Devices.Names()
	if len(names) > 8 {
		return strings.Join(names[:4], ", ") + ", …, " + names[len(names)-1]
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// describeModel is a one-line summary of a model shape, for messages.
func describeModel(family string, frames int, lat Latent, dtype string, cfg bool) string {
	g := "cfg off"
	if cfg {
		g = "cfg on"
	}
	return fmt.Sprintf("%s, %d frames, latent %d×%d×%d, %s, %s", family, frames, lat.Channels, lat.Height, lat.Width, dtype, g)
}

// checkProfile checks that the loaded profile fits the plan: the same
// model shape, and costs for every device kind.
func (p *Plan) checkProfile(c *checker) {
	pm, m := p.Profile.Model, p.Model
	// A model field already reported (frames: .nan, read as 0) would show
	// here as a value nobody wrote.
	modelBad := false
	for _, f := range []string{"model.family", "model.frames", "model.latent", "model.dtype", "model.cfg"} {
		modelBad = modelBad || c.reported(f)
	}
	if !modelBad && (pm.Family != m.Family || pm.Frames != m.Frames || pm.Latent != m.Latent || pm.Dtype != m.Dtype || pm.CFG != (m.CFG != nil)) {
		c.add("costs", "profile %s is for %s, but the plan's model is %s; use a profile measured for this model",
			p.Profile.name(), describeModel(pm.Family, pm.Frames, pm.Latent, pm.Dtype, pm.CFG),
			describeModel(m.Family, m.Frames, m.Latent, m.Dtype, m.CFG != nil))
	}
	seen := map[string]bool{}
	for i, d := range p.Devices {
		if seen[d.Kind] || d.Kind == "" {
			continue
		}
		seen[d.Kind] = true
		if _, ok := p.Profile.Devices[d.Kind]; !ok {
			c.add(fmt.Sprintf("devices[%d].kind", i), "no costs for kind %q in profile %s (it has: %s)", d.Kind, p.Profile.name(), keys(p.Profile.Devices))
		}
	}
}

// checkMemory checks that every stage fits its device's memory, when both
// the device's memory and the profile's memory costs are known.
func (p *Plan) checkMemory(c *checker) {
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			d := p.Devices[st.DevIdx]
			need, ok := p.StageMemoryGB(st)
			if ok && d.MemoryGB > 0 && need > d.MemoryGB {
				c.add(fmt.Sprintf("devices[%d].memory_gb", st.DevIdx), "pipeline %d stage %d needs %.2f GiB (weights, runtime, activations for micro-batch %d) but %s has %g GiB; lower micro_batch or use a larger device",
					pl.Index, st.Index, need, p.Layout.MicroBatch, d.Name, d.MemoryGB)
			}
		}
	}
}

func keys[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// validate checks a profile's provenance and costs.
func (prof *Profile) validate(c *checker) {
	pv := prof.Provenance
	if oneOf(c, "provenance.source", pv.Source, "measured", "publication", "estimate", "calibrated") {
		if pv.Source == "measured" && pv.Machine == "" {
			c.add("provenance.machine", "missing; a measured profile names the machine it was measured on")
		}
		if pv.Source != "measured" && pv.Reference == "" {
			c.add("provenance.reference", "missing; a %s profile names the publication or method its numbers come from", pv.Source)
		}
	}
	if pv.Date == "" {
		c.add("provenance.date", "missing; the date the numbers were taken, YYYY-MM-DD")
	} else if err := CheckDate(pv.Date, time.Now()); err != nil {
		c.add("provenance.date", "%v", err)
	}
	checkText(c, "provenance.source", pv.Source, false)
	checkText(c, "provenance.machine", pv.Machine, false)
	checkText(c, "provenance.runtime", pv.Runtime, false)
	checkText(c, "provenance.reference", pv.Reference, false)
	checkText(c, "provenance.notes", pv.Notes, true)
	m := prof.Model
	oneOf(c, "model.family", m.Family, "svd", "tiny")
	count(c, "model.frames", m.Frames, 1, maxShape, "the number of frames")
	count(c, "model.latent.channels", m.Latent.Channels, 1, maxShape, "the latent channels")
	count(c, "model.latent.height", m.Latent.Height, 1, maxShape, "the latent height")
	count(c, "model.latent.width", m.Latent.Width, 1, maxShape, "the latent width")
	oneOf(c, "model.dtype", m.Dtype, "fp16", "fp32")
	prof.validateCosts(c, true)
}

// validateCosts checks the numbers of a profile: times and sizes finite
// and not negative, UNet times positive, jitter in [0, 1). Strict (a
// profile file) also wants every device kind's UNet time and a positive
// bandwidth on every link; a profile built in code may leave a bandwidth
// at 0 for a pure latency (LinkCosts.TransferNS).
func (prof *Profile) validateCosts(c *checker, strict bool) {
	if len(prof.Devices) == 0 {
		c.add("devices", "missing; give the costs of at least one device kind")
	}
	for _, k := range sortedKeys(prof.Devices) {
		d := prof.Devices[k]
		at := join("devices", pathKey(k))
		if !checkName(c, at, k, MaxNameLen, false) {
			continue
		}
		if len(d.UNetMS) == 0 && strict {
			c.add(at+".unet_ms", "missing; the time of one step by micro-batch size, e.g. unet_ms: {1: 300}")
		}
		for _, b := range sortedInts(d.UNetMS) {
			positiveMS(c, fmt.Sprintf("%s.unet_ms[%d]", at, b), d.UNetMS[b])
		}
		for _, b := range sortedInts(d.FirstCallMS) {
			path := fmt.Sprintf("%s.first_call_ms[%d]", at, b)
			positiveMS(c, path, d.FirstCallMS[b])
			// The first call is a step plus its warm-up: below the step
			// time, the warm-up (and what is derived from it for other
			// sizes, see FirstCallNS) would be negative.
			step, lo, hi, ok := interpBatchMS(d.UNetMS, b)
			switch {
			case !ok || !(d.FirstCallMS[b] < step):
			case lo < 0 && hi < 0:
				c.add(path, "%g ms is below unet_ms[%d] (%g ms); the first call is a step plus its warm-up, so it takes at least as long", d.FirstCallMS[b], b, step)
			default:
				c.add(path, "%g ms is below the step time at micro-batch %d (%.4g ms, derived from unet_ms); the first call is a step plus its warm-up, so it takes at least as long", d.FirstCallMS[b], b, step)
			}
		}
		nonNeg(c, at+".encode_ms", d.EncodeMS)
		nonNeg(c, at+".decode_ms", d.DecodeMS)
		checkWarmCalls(c, at+".encode_first_ms", d.EncodeFirstMS)
		checkWarmCalls(c, at+".decode_first_ms", d.DecodeFirstMS)
		nonNeg(c, at+".host_ms_per_step", d.HostMSPerStep)
		nonNeg(c, at+".sample_first_ms", d.SampleFirstMS)
		nonNeg(c, at+".sample_last_ms", d.SampleLastMS)
		if !(d.Jitter >= 0 && d.Jitter < 1) {
			c.add(at+".jitter", "must be in [0, 1) (a relative standard deviation), got %g", d.Jitter)
		}
		if !(d.Drift >= 0 && d.Drift < 1) {
			c.add(at+".drift", "must be in [0, 1) (a relative spread of the costs' scale), got %g", d.Drift)
		}
		mem := d.Memory
		nonNeg(c, at+".memory_gb.unet", mem.UNet)
		nonNeg(c, at+".memory_gb.encoder", mem.Encoder)
		nonNeg(c, at+".memory_gb.decoder", mem.Decoder)
		nonNeg(c, at+".memory_gb.activations_per_sample", mem.ActivationsPerSample)
		nonNeg(c, at+".memory_gb.runtime", mem.Runtime)
	}
	for _, group := range []struct {
		name string
		m    map[string]LinkCosts
	}{{"links", prof.Links}, {"transports", prof.Transports}} {
		for _, k := range sortedKeys(group.m) {
			l := group.m[k]
			at := join(group.name, pathKey(k))
			if !checkName(c, at, k, MaxNameLen, false) {
				continue
			}
			// A transport is measured for one of the plan's transports
			// (hop costs look it up by plan.transport): any other key
			// would never be used, a typing mistake.
			if group.name == "transports" && !Transport(k).Valid() {
				c.add(at, "%s", unknownTransport(k))
				continue
			}
			nonNegMax(c, at+".latency_us", l.LatencyUS, maxMS*1e3)
			// +Inf is a link whose bytes cost nothing (only its latency).
			switch bw := l.BandwidthGBps; {
			case strict && bw == 0 && len(c.pos) > 0 && !c.has(at+".bandwidth_gbps"):
				// Left out, not written as 0 (c.pos is empty for a
				// profile built in code: nothing was written).
				c.add(at+".bandwidth_gbps", "missing; the bytes per second of a hand-off in GB/s, e.g. bandwidth_gbps: 10")
			case strict && !(bw > 0):
				c.add(at+".bandwidth_gbps", "must be > 0 GB/s, got %g", bw)
			case !(bw >= 0):
				c.add(at+".bandwidth_gbps", "must be ≥ 0 GB/s (0 or +Inf: latency only), got %g", bw)
			}
			nonNeg(c, at+".setup_ms", l.SetupMS)
			nonNeg(c, at+".setup_ms_per_rank", l.SetupMSPerRank)
			nonNegMax(c, at+".receive_us", l.ReceiveUS, maxMS*1e3)
		}
	}
}

// unknownTransport is the problem of a profile's transports key that is
// not one of the plan's transports.
func unknownTransport(key string) string {
	var names []string
	for _, t := range Transport("").Values() {
		names = append(names, string(t))
	}
	return fmt.Sprintf("unknown transport %s; a profile measures the plan's transports: %s", fragment(key), strings.Join(names, ", "))
}

// checkWarmCalls checks a list of first calls' times: at most MaxWarmCalls,
// each a time in ms.
func checkWarmCalls(c *checker, path string, v []float64) {
	if len(v) > MaxWarmCalls {
		c.add(path, "%d first calls, at most %d (the warm-up of a session's first calls)", len(v), MaxWarmCalls)
		return
	}
	for i, x := range v {
		nonNeg(c, fmt.Sprintf("%s[%d]", path, i), x)
	}
}

// nonNeg checks a time in ms (or a size): finite, ≥ 0 and at most maxMS.
func nonNeg(c *checker, path string, v float64) { nonNegMax(c, path, v, maxMS) }

// nonNegMax checks a number that must be finite and in [0, hi].
func nonNegMax(c *checker, path string, v, hi float64) {
	switch {
	case !(v >= 0) || math.IsInf(v, 0):
		c.add(path, "must be a finite number ≥ 0, got %g", v)
	case v > hi:
		c.add(path, "is too large: at most %.0e, got %g; times must stay under %s", hi, v, limitWords)
	}
}

// positiveMS checks a step time in ms: > 0 and at most maxMS.
func positiveMS(c *checker, path string, v float64) {
	switch {
	case !(v > 0) || math.IsInf(v, 0):
		c.add(path, "must be > 0 ms, got %g", v)
	case v > maxMS:
		c.add(path, "is too large: at most 1e+12 ms, got %g; times must stay under %s", v, limitWords)
	}
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckDate checks a profile's date as of now: a real date written
// YYYY-MM-DD, not after today. A day's grace allows for the measuring
// machine's time zone being ahead of this one's.
func CheckDate(date string, now time.Time) error {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil || len(date) != len(time.DateOnly) {
		return fmt.Errorf("want a real date written YYYY-MM-DD, such as %s, got %s", now.Format(time.DateOnly), fragment(date))
	}
	if d.After(now.Add(24 * time.Hour)) {
		return fmt.Errorf("%s is after today (%s): a measurement cannot be dated after today", date, now.Format(time.DateOnly))
	}
	return nil
}
