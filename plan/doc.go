// Package plan is the description of a job shared by the simulator and
// the executor: the model, the sampler, the devices, how the sampler's
// steps are laid out on the devices, the links between them, and the
// workload; and the cost profile that says what each piece of work costs.
//
// A plan is YAML:
//
//	name: svd-14f-320x576-4xa5000
//	model:
//	  family: svd                # svd | tiny
//	  frames: 14
//	  latent: {channels: 4, height: 40, width: 72}
//	  dtype: fp16                # fp16 | fp32
//	  cfg: {min: 1.0, max: 3.0}  # guidance ramped over frames; leave out for one pass
//	sampler: {kind: euler-karras, steps: 28, sigma_min: 0.002, sigma_max: 700, rho: 7}
//	devices: {count: 4, kind: a5000, memory_gb: 24}   # or a list of {name, kind, host, ...}
//	layout:
//	  replicas: 1                # independent pipelines over the devices
//	  assignment: even           # even | balanced | explicit
//	  # stages: [{device: gpu0, steps: [0, 6]}, ...]   (explicit, inclusive ranges)
//	  encode_on: first           # first | last
//	  decode_on: last
//	  micro_batch: 1
//	links: {default: pcie4, overrides: [{between: [gpu1, gpu2], kind: cross-socket}]}
//	transport: nccl              # inproc | tcp | nccl
//	workload: {samples: 10, arrival: {kind: batch}, seed: 42}   # or poisson (rate), interval (interval_ms)
//	costs: profiles/a5000-svd-14f-320x576.yaml                   # relative to this file
//
// Use:
//
//	p, err := plan.Load("configs/tiny-cpu-2stage.yaml") // defaults, checks, profile, layout
//	if err != nil { ... }                               // *Errors: file:line:col, field, rule
//	for _, pl := range p.Pipelines { ... }               // the resolved stages
//	ns, _ := p.StageNS(p.Pipelines[0].Stages[0])         // steady-state time per micro-batch
//	dp, err := p.DataParallel()                          // the same devices as data parallel
//
// What the simulator and the executor consume is a plan that Ready
// accepts; they neither re-default nor re-check it. A layout built in code
// (a study, a search, a test) goes in with UsePipelines, through the same
// step-range checks as an explicit layout in a file.
//
// Load (or Parse, for bytes) reads a plan strictly: unknown fields, wrong
// types and impossible values are errors that name the file, line, column
// and field and say what would be right, and every problem is reported at
// once in a *Errors. Loading then fills defaults (EnsureDefaults), checks
// fields and the rules between them (Validate), loads and checks the cost
// profile, and resolves the layout into Pipelines of Stages (Resolve).
//
// Limits: a plan or profile file is at most MaxFileBytes (1 MiB), checked
// before parsing, and one YAML document holding a mapping; a *Errors lists
// at most MaxErrors (40) problems and counts the rest ("... and N more
// problems"). Only a field left out takes its default: one written as 0,
// "" or null is checked as written (replicas: 0 is an error, motion_bucket:
// 0 is 0). A whole number written with a leading zero (010, which YAML
// reads as octal 8) is an error; 0x10 and 0o10 say their base and are
// read as written. A problem is reported once: where a value could not be
// decoded, the checks that depend on it say nothing more, and a field of
// the short device form ({count: 2, memory_gb: -24}) is reported on the
// short form's field (devices.memory_gb), not once per device. A plan or
// profile given as a named pipe is refused (it would wait for a writer);
// /dev/stdin and /dev/fd/N, as <(command) gives, are read. Names (devices, kinds, link kinds, the profile's keys) are 1 to
// MaxNameLen (64) ASCII letters, digits and NameChars (- _ . : / + @); the
// plan's name is 1 to MaxPlanNameLen (128) printable characters, spaces
// included, without tabs, newlines or other control characters. A device
// has at most MaxThreads (256) threads and a speed from 0.001 to 1000.
// Every time a plan implies (the last release; that plus all the work of
// the run, from the profile) must stay under MaxTimeNS (1e18 ns, 31.7
// years), and every cost in a profile under 1e12 ms, so that no int64
// nanosecond count overflows. Messages quote at most 32 characters of the
// file, escaped. Notices lists what a valid plan predicts from derived
// rather than measured costs (a micro-batch size the profile lacks), a
// micro-batch larger than the workload (every micro-batch partial), and
// devices that run no stage of the layout (explicit pipelines naming only
// some). A file path (costs, model.onnx.*) of white space only is an
// error, as an empty one written in the file is; a plan or profile path
// naming a folder is refused. A profile's transports are keyed by the
// plan's transports (inproc, tcp, nccl): another key is an error at that
// key, and a bandwidth_gbps left out is reported missing, not as 0.
//
// Hosts: a device may name the machine it is on (host: node-a), for runs
// over several hosts: a host name as the machine's os.Hostname reports it
// (labels of 1 to 63 ASCII letters, digits and hyphens, not starting or
// ending with a hyphen, joined by dots, at most MaxHostLen (253)
// characters) or an IP address without a zone; a name of digits and dots
// only must be an IP address. Left out, the device is on any host; an
// empty host written in the file is an error. CheckHost states the rule
// (HostRule) and Device.RunsOn the match a worker's host is held to
// (case-insensitive; node-a matches node-a.cluster.local either way
// round; addresses by value). The short form gives all its devices one
// host. A what-if resize needs the devices on one host.
//
// Transport nccl runs on devices of either provider: a cpu device
// computes on the CPU and NCCL hands its latents through the CUDA device
// of its index (how the GPU check and the tests' fake NCCL run). Every
// device that takes a CUDA device (TakesIndex) gets, unless its index is
// written, its position among such devices on its host; under nccl two
// devices on one named host may not share a CUDA device. UseTransport
// changes a loaded plan's transport as a command-line flag says (vdexec
// --backend), with those defaults filled again.
//
// Step assignment: even splits any step count (28 steps on 3 devices is
// 10/9/9, earlier stages taking the remainder); explicit ranges are checked
// each on its own, then to be listed in step order, then to cover every
// step exactly once per pipeline; balanced picks the
// contiguous split that minimises the slowest stage's steady-state time
// (StageNS), counting the device's speed, host overhead, encode and decode
// on the stages that run them, and the hand-offs in and out.
//
// The plan owns its vocabulary (Transport, Handoff, ArrivalKind,
// Assignment, End, Provider, Dispatch: typed words with constants and
// Valid), its defaults (EnsureDefaults, once), its checks (Validate,
// Resolve, Ready), the workload's release times (Releases, the one
// generator) and the cost formulas: WorkNS (what a micro-batch costs a
// device), HopCost and HopNS (what a hand-off costs: a measured transport,
// else the link kind), StageNS (a stage's steady-state time, hops
// included) and StageMemoryGB.
//
// A step's position in the schedule is a StepIndex, the same type as
// models.Step; sigma and timestep values are other types, in package
// models.
//
// Apply changes a loaded plan for what-if questions (more samples, other
// device counts), DataParallel turns it into plain data parallelism on the
// same devices, and Describe prints the resolved layout.
package plan
