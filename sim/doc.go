// Package sim is the discrete-event simulator of diffusion-step pipelines:
// it predicts, from a resolved plan and its cost profile, the timeline the
// executor would produce, span for span.
//
// # Use
//
//	p, err := plan.Load("configs/svd-14f-320x576-7xa5000.yaml") // resolved, with its profile
//	if err != nil { ... }
//	acc := timeline.NewAccumulator(deviceNames)           // streaming metrics, bounded memory
//	res, err := sim.Run(p, sim.Options{Recorder: acc})    // Trace: true keeps res.Timeline
//	m := acc.Result()                                     // first latency, throughput, ...
//
// Run takes a plan that plan.Ready accepts (loaded, or built in code with
// EnsureDefaults and Resolve or UsePipelines). It asks plan.Ready, whose
// checks are the plan's own, and has no defaults or plan rules of its own;
// what it checks itself is memory. Studies built on many
// runs (data-parallel baseline, sweeps, hindsight, comparison) live in
// package study.
//
// # Engine
//
// The engine is a pure state machine in the style of etcd-io/raft: no
// goroutines, no wall clock, no global random source. Time is an integer
// count of nanoseconds from the run's start. Events are values in a typed
// binary heap ordered by (time, sequence number), so events at the same
// instant fire in the order they were scheduled and the same plan always
// gives the same timeline, byte for byte. Spans and sample records go to a
// timeline.Recorder as they are produced (each when it ends), so with the
// trace off memory does not grow with the sample count.
//
// # Model
//
// Each stage of a pipeline is a worker on its device; stages that share a
// device share its compute stream (one piece of work at a time).
//
//   - Arrivals. Samples are released when plan.Releases says, the one
//     release-time generator the executor uses too: at t=0 (batch), with
//     exponential gaps of mean 1/rate drawn from a PCG seeded by
//     workload.seed (poisson; the first sample at t=0), or every
//     interval_ms (interval; sample i at i·interval). Sample i goes to
//     pipeline i mod replicas (round robin).
//   - Micro-batches form at pipeline entry: when the first stage's device is
//     free and samples of the pipeline are queued (a release at the very
//     instant the device becomes free counts as queued), it takes up to
//     layout.micro_batch of them (at least 1, in release order) as one
//     micro-batch, which travels through the pipeline together.
//   - Work of a micro-batch of size b at a stage: an encode span of
//     b×encode_ms/speed if the stage encodes; one step span for its whole
//     step range of steps×(StepNS(b)/speed + host_ms_per_step), where the
//     device's very first UNet call costs FirstCallNS(b) instead of
//     StepNS(b) (that span is marked Warmup); a decode span of
//     b×decode_ms/speed if the stage decodes, after which the samples are
//     done (timeline.Sample.Done is the end of the decode, or of the last
//     step when nothing decodes). Device speed scales the device's work
//     (UNet, encode, decode) but not the host's sampler work between calls,
//     the same as plan.StageNS. An encode or decode of zero cost makes no
//     span. Encode is on a pipeline's first stage and decode on its last
//     whenever the pipeline has several stages (the plan's rule).
//     Host work outside the model calls makes host spans (not busy time):
//     before the stage's model work, b×sample_first_ms on the first stage
//     (taking the samples, their images and noise) plus the receive_us of
//     the hand-off into the stage (waking the receiver, unpacking); after
//     the decode, b×sample_last_ms on the last stage (handing the outputs
//     on); a sample is done at the end of that host span. Host time is not
//     scaled by the device's speed. With
//     jitter > 0
//     in the device kind's costs, each UNet step's time is multiplied by
//     max(0, 1+jitter·z), z standard normal from a PCG seeded by
//     workload.seed (a stream of its own, so jitter does not move arrivals).
//   - When a device is free it takes the work that has waited longest: a
//     micro-batch handed to it, or queued samples of a pipeline it enters
//     (work already in flight wins a tie).
//   - Hand-off to the next stage moves b×LatentBytes between the two
//     devices at the cost plan.HopCost gives (latency + bytes/bandwidth):
//     the profile's measurement of the plan's transport when it has one
//     (Profile.Transports; profiles measured by the executor do), else the
//     costs of the link kind between the devices (plan.Links.LinkKind,
//     Profile.Links). The first transfer over each ordered device
//     pair also pays the link's set-up cost, setup_ms +
//     setup_ms_per_rank×(ranks − 2), ranks being the devices on the
//     plan's pipelines. A device sends one transfer at
//     a time and receives one at a time (so one transfer per direction of a
//     link). Two consecutive stages on one device hand off for free.
//   - Blocking hand-off (layout.handoff: blocking, the default; a plain
//     NCCL send/recv): the transfer starts only when the receiving device is
//     idle. The sender is held from the end of its compute until the
//     transfer ends (a wait span while the receiver is busy, then a send
//     span); the receiver has a recv span and then runs the micro-batch.
//     Blocking hand-offs around a cycle of devices can deadlock; Run then
//     returns an error.
//   - Buffered hand-off (layout.handoff: buffered): the sender queues the
//     micro-batch and is free at once; the transfer runs when the sender's
//     send stream and the receiver's receive stream are free (oldest
//     first); the receiver takes it from its queue when it is free.
//   - Busy time is encode, step and decode; wait, send and recv are not.
//
// Before simulating, Run checks memory: per device, UNet weights (plus the
// encoder where a stage encodes, the decoder where one decodes) plus the
// runtime plus activations_per_sample × micro_batch, against memory_gb
// (not checked when 0). A plan that does not fit returns a *MemoryError
// listing each device and by how much; Memory gives the table for reports.
package sim
