// Package exec is the real executor: it runs a resolved plan with one
// worker per stage, each with its own model session, hands latents from
// stage to stage, records every span into the shared timeline type, writes
// each sample's outputs as it finishes, and measures cost profiles for the
// simulator (Profile).
//
// Running a plan with ONNX Runtime (exec/ort) and the model family's
// built-in conditioning images (models/family):
//
//	p, err := plan.Load("configs/tiny-cpu-2stage.yaml")
//	shape := models.Shape{Frames: p.Model.Frames, Channels: p.Model.Latent.Channels, Height: p.Model.Latent.Height, Width: p.Model.Latent.Width}
//	set, err := family.Images(p.Model.Family, shape) // or images.Load(files, 8*h, 8*w)
//	res, err := exec.Run(ctx, p, ort.Factory(p, false), exec.Options{
//		OutDir: "out/run", Images: set.Image, Conditioning: set.Label,
//	})
//	m := res.Timeline.Metrics() // timeline.WriteFile(path, res.Timeline) saves it
//
// A plan with transport tcp also needs Options.WorkerCommand: a command
// that starts this program as a worker (calling RunWorker) for a device.
//
// # What a run does (the simulator in sim/ models exactly this)
//
//   - One worker goroutine per stage, each with its own models.Model from
//     the Factory (CPU: its own intra-op thread count; CUDA: its device id).
//     A device runs at most one stage; plans that put two stages on one
//     device are refused.
//   - Samples are released as the workload says (batch: all at 0; poisson:
//     exponential gaps from a PCG stream of workload.seed, sample 0 at 0;
//     interval: i × interval) and dispatched to pipelines round-robin by
//     sample id. A micro-batch forms at the pipeline's entry: when the first
//     stage is free and samples are queued, it takes up to micro_batch of
//     them, first in first out; samples released at the same instant are
//     queued together. The micro-batch travels together to the end. The
//     entry holds no sample before its stage asks (it walks the release
//     times as it goes), a buffered hand-off queues at most 64
//     micro-batches and the output writer 64 samples, so memory does not
//     grow with the workload's sample count (the timeline does, with the
//     samples that ran).
//   - At a stage, per micro-batch: host spans (KindHost) hold the host
//     work around the model calls, so that the stage's spans follow each
//     other without gaps: on the first stage from the micro-batch's
//     arrival to the encode call (taking the samples, their images, the
//     seeded noise, drawn from (seed, sample id) only); on a later stage
//     from the end of the transfer to its first step (a receive: the
//     sender is the span's peer); on the last stage after the decode
//     (handing the outputs on). If the stage encodes (always the first
//     stage), an encode span (conditioning images → embedding and image
//     latent); then one step span covering the stage's whole step range, flagged
//     Warmup when it contains the device's first UNet call; if the stage
//     decodes (always the last), a decode span covering the decoder and
//     the encoding of the videos (GIF and PNG frames, when outputs are
//     written), after which the encoded videos go to an output writer
//     goroutine (writing files does not stall the stage) and the sample
//     records are emitted with Done = end of decode; otherwise a hand-off
//     to the next stage. A send span starts at the end of the steps when
//     the sender did not wait (its own set-up of the hand-off included).
//   - Hand-off of the micro-batch's sampler states (latent, conditioning,
//     next step index, seed, sample id). Blocking (the default): the
//     receiver signals when it is idle and waiting for input; the sender,
//     after computing, waits for that signal (a wait span on its compute
//     stream, only when it had to wait a positive time), then transfers
//     (a send span on the sender and a recv span on the receiver over the
//     same interval in-process; over TCP the recv span is the receiver's
//     read of the frame) and continues once the transfer is complete.
//     Buffered: the sender copies the micro-batch into the receiver's queue
//     (its send span) and continues; the receiver records that transfer as
//     its recv span and takes micro-batches from its queue when free.
//   - Span times are integer nanoseconds from the run's start on the
//     monotonic clock. The timeline's Meta names the plan, Source "exec",
//     the machine, the Go (and caller-supplied runtime) versions, and the
//     devices in plan order; spans are sorted by start time at the end.
//
// Under testing/synctest, with a fake model that sleeps the profile's
// costs, a run produces the simulator's spans exactly (exec_test.go).
//
// # Transports: links and process layouts
//
// Two things are kept apart. The link is how a micro-batch travels from a
// stage to the next: a stage worker holds the two ends of its links (a
// source it takes micro-batches from, a sender it hands them to) and does
// not know what carries them, as net/http's client does not know what its
// RoundTripper does. The process layout is how many processes run the
// stages and who starts them. The plan's transport word picks both, in one
// place (transports, in transport.go):
//
//	transport  link                                  process layout
//	inproc     chanLink: channels (link_chan.go)     oneProcess: goroutines of this process (inprocess.go)
//	tcp        tcpLink: loopback TCP (link_tcp.go)   processPerDevice: a worker process per device (coordinator.go, worker.go)
//	nccl       ncclLink: NCCL send/recv, TCP beside  processPerDevice, as tcp
//	           it (link_nccl.go, exec/nccl)
//
// A link connects ends before the run's clock starts (listen gives an
// address, the stage before dials it, accept waits for it: a rendezvous can
// carry the address between processes) and opens them for the run once the
// clock has started. The layouts only connect and open ends; any link works
// in any layout that can reach it (the tests run the one-process layout
// over TCP links and get the same outputs).
//
// inproc: the states are deep-copied on the way, as a transfer would.
// tcp: one worker process per stage device, started by
// Options.WorkerCommand (or, with Options.ExternalWorkers, by a cluster's
// launcher); each process calls RunWorker. The coordinator (Run) listens
// on Options.Listen (127.0.0.1:0 by default); each worker says hello with
// the run's token and the plan's
// hash (plan.Plan.Hash) and the address of its inlet; the coordinator
// refuses unknown or duplicate devices and mismatched plans, assigns each
// worker the address of its next stage's inlet and the output directory,
// waits until every worker has opened its model and links (all bounded by
// Options.Timeout, 30 s by default), then broadcasts start. Micro-batches
// travel as length-prefixed binary frames (little-endian float32 latents,
// wire.go); control messages are JSON (control.go). The start message
// carries the coordinator's start instant on the host's wall clock; each
// worker converts it to its own monotonic clock (now − (wall now − wall
// start)) and times its spans from there. Processes on one host share the
// wall clock, so the clocks agree to within the microseconds between two
// clock reads, unless the wall clock is stepped (NTP) during the
// rendezvous. At the end every worker reports its spans, sample records
// and outputs (so over TCP Options.Recorder receives them when the run
// ends). Stopping: an interrupt in finish mode lets the admitted samples
// run as long as they take; after an abandon (an interrupt, or a failure
// anywhere) a worker that has not exited within Options.Timeout is killed
// and the error names it.
//
// nccl: the layout of tcp, and every hand-off keeps its TCP connection
// for the small frames (ready, ack, end, and each micro-batch's length),
// while the micro-batch's bytes go by ncclSend/ncclRecv on one
// communicator per run. The coordinator makes it (ncclGetUniqueId, which
// needs NCCL loaded in the coordinator's process too) and hands its id
// and each worker's rank (its stage's place, pipeline by pipeline) in the
// assignment; every worker joins it (ncclCommInitRank, on the CUDA device
// of its plan device's index) before it connects its hand-offs. exec/nccl
// loads libnccl and libcudart at run time and makes all of a process's
// CUDA and NCCL calls on one locked OS thread; a failed or cancelled NCCL
// operation aborts the communicator, and a worker leaves it by abort
// (ncclCommDestroy waits for the other ranks). Where the
// libraries do not load, CheckTransport (and Run, before any work) says
// which and what to use instead. The tests run it against
// internal/fakenccl, a test double of the two libraries' C ABI.
//
// To add a transport, touch:
//
//   - transport.go: its entry in transports (its link, and the process
//     layout it runs in; what it needs at run time, and a communicator
//     the workers join, where it has them);
//   - a new link_<name>.go: the link, its inlet and outlet, and the source
//     and sender they open (the wire format is the link's own; blocking
//     and buffered hand-offs as in the existing links);
//   - transport_test.go: the table's expectations, and the link in
//     TestLinksCarryBatches;
//   - doc.go: the table above.
//
// Nothing else: vdexec asks CheckTransport whether a plan's transport can
// run here and WorkerProcesses whether to give a worker command;
// Profile measures the plan's own transport over its link.
//
// A new process layout (workers on several hosts started by Slurm,
// Kubernetes or torchrun, meeting at a known rendezvous address instead of
// being started by Run) is a new layout type next to oneProcess and
// processPerDevice; RunWorker is the worker side of both.
//
// # Outputs, interruption, failures
//
// Each finished sample gets OutDir/sample_NNNNN/ with frame_000.png…, an
// animated video.gif and sample.json (SampleRecord: seed, conditioning,
// release and done times, per-stage timings, a hash of the final latent),
// written into a temporary directory and renamed into place, so no
// half-written sample is ever visible. Cancelling the context stops
// admitting samples; with OnInterrupt "finish" the samples already
// admitted complete, with "abandon" every stage stops at its next step
// boundary and in-flight samples produce nothing. The timeline is returned
// either way; Result.Interrupted is set only when the cancellation left
// samples unfinished (a cancellation after the last sample finished
// interrupted nothing). A failing model call or a dead worker
// process stops the run with an error naming the stage, its device and the
// samples it held (over TCP a worker reports each micro-batch it takes and
// when it has handed it on or decoded it, so one that dies idle is named
// without samples); outputs finished before stay. The timeline JSON, trace
// and metrics are left to the caller (timeline.WriteFile, timeline.Metrics).
//
// # Profiles
//
// Profile measures the costs the simulator needs with every stage's device
// working at once, one session each, as in a run. Its UNet probes walk a
// real sampling trajectory (steps 0, 1, …, the last, then again from the
// same noise) from the caller's conditioning (ProfileOptions.Images; a
// synthetic pattern without it). It measures the hand-off of each
// transport it is asked for over that transport's link. Then it times the
// UNet calls again, for drift; last, it runs the plan itself for about 3 s
// as it runs (worker processes for tcp, with ProfileOptions.WorkerCommand)
// and reads off that run's spans the host work per sample, the plan
// transport's hand-off, the warm-up of fresh sessions and how much slower
// the calls were with every stage busy (readRun).
// unet_ms is the mean call time (the mean, not the median, is what sums to
// a run's time); median, min and max go to the notes; jitter is the
// relative standard deviation of the batch-1 calls. decode_ms includes
// encoding the videos, as the decode span does.
package exec
