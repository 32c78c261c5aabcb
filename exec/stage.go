package exec

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// StageTiming is the time one stage spent on a sample (from the start of
// its first span to the end of its last one, hand-offs excluded), in ns
// from the start of the process that ran the stage.
type StageTiming struct {
	Stage  int    `json:"stage"`
	Device string `json:"device"`
	Start  int64  `json:"start_ns"`
	End    int64  `json:"end_ns"`
}

// item is one sample travelling through a pipeline.
type item struct {
	id      int
	release int64
	state   *models.State // nil until the encode stage starts it
	timings []StageTiming
}

// batch is a micro-batch: samples that travel together.
type batch struct {
	items []*item
}

func (b *batch) ids() []int {
	ids := make([]int, len(b.items))
	for i, it := range b.items {
		ids[i] = it.id
	}
	return ids
}

// interval is a span's start and end.
type interval struct{ start, end int64 }

// source gives a stage its next micro-batch; io.EOF when no more will come.
// The interval, when not nil, is the transfer that delivered it (a recv
// span on the receiving device).
type source interface {
	next(ctx context.Context) (*batch, *interval, error)
}

// sender hands micro-batches to the next stage.
type sender interface {
	// send hands b over. readyAt is when the receiver was ready (blocking
	// mode; 0 otherwise) and waited reports that the sender had to wait
	// for it; xfer is the transfer.
	send(ctx context.Context, b *batch) (readyAt int64, waited bool, xfer interval, err error)
	// close tells the receiver that no more micro-batches will come.
	close() error
}

// linkError is a failed hand-off: usually the consequence of a failure
// elsewhere (the peer died), reported only when nothing better is known.
type linkError struct{ err error }

func (e *linkError) Error() string { return e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

// stageWorker runs one stage: it takes micro-batches from its source, runs
// encode, its step range and decode as the stage says, and hands the
// micro-batch on.
type stageWorker struct {
	p      *plan.Plan
	st     plan.Stage
	model  models.Model
	smp    *models.Sampler
	scfg   models.SamplerConfig
	images func(int) ([]float32, error)
	now    func() int64

	in     source
	out    sender // nil on the decode stage
	peer   string // the next stage's device
	prev   string // the previous stage's device
	emit   timeline.Recorder
	encode func(frames []float32, n int) ([]*models.Video, error) // the decode stage's video encoder
	finish func(b *batch, videos []*models.Video, done int64)     // the decode stage's sink
	busy   func(ids []int)                                        // reports the micro-batch taken, nil once idle (tcp)
	hooks  *testHooks                                             // tests only

	warmed bool
	// freeAt is the end of the last span of this worker's own work (all
	// but receives): host work on a micro-batch starts when both it and
	// the worker are there.
	freeAt int64
	// buffers reused across micro-batches
	images3, emb, lat, lats []float32
}

func newStageWorker(p *plan.Plan, st plan.Stage, m models.Model, scfg models.SamplerConfig, images func(int) ([]float32, error), now func() int64) (*stageWorker, error) {
	smp, err := models.NewSampler(m, scfg)
	if err != nil {
		return nil, fmt.Errorf("exec: stage %d of pipeline %d (device %s): %w", st.Index, st.Pipeline, st.Device, err)
	}
	w := &stageWorker{p: p, st: st, model: m, smp: smp, scfg: scfg, images: images, now: now}
	if st.Index > 0 {
		w.prev = p.Pipelines[st.Pipeline].Stages[st.Index-1].Device
	}
	return w, nil
}

// run processes micro-batches until its source is exhausted or ctx ends.
func (w *stageWorker) run(ctx context.Context) error {
	for {
		b, xfer, err := w.in.next(ctx)
		if err == io.EOF {
			if w.out != nil {
				return w.out.close()
			}
			return nil
		}
		if err != nil {
			return w.fail(nil, &linkError{fmt.Errorf("receive from %s: %w", w.prev, err)})
		}
		// avail is when both the micro-batch and this worker were there.
		avail := w.freeAt
		if xfer != nil {
			w.span(timeline.KindRecv, b, -1, -1, xfer.start, xfer.end, w.prev, false)
			avail = max(avail, xfer.end)
		} else if w.st.Index == 0 {
			for _, it := range b.items { // released by the entry queue
				avail = max(avail, it.release)
			}
		}
		if w.busy != nil {
			w.busy(b.ids())
		}
		if err := w.process(ctx, b, avail); err != nil {
			return w.fail(b, err)
		}
	}
}

// fail names the stage, its device and the samples it held.
func (w *stageWorker) fail(b *batch, err error) error {
	if b == nil {
		return fmt.Errorf("exec: stage %d of pipeline %d (device %s): %w", w.st.Index, w.st.Pipeline, w.st.Device, err)
	}
	return fmt.Errorf("exec: stage %d of pipeline %d (device %s), samples %v: %w", w.st.Index, w.st.Pipeline, w.st.Device, b.ids(), err)
}

func (w *stageWorker) span(k timeline.Kind, b *batch, first, last int, start, end int64, peer string, warm bool) {
	if k != timeline.KindRecv { // the worker itself was busy (a send too: it waits for the transfer)
		w.freeAt = max(w.freeAt, end)
	}
	w.emit.AddSpan(timeline.Span{
		Device: w.st.Device, Kind: k, Samples: b.ids(), Pipeline: w.st.Pipeline, Stage: w.st.Index,
		FirstStep: first, LastStep: last, Start: start, End: end, Peer: peer, Warmup: warm,
	})
}

// process runs the stage's work on micro-batch b, there since avail:
// encode (on the first stage), the stage's steps, then decode (on the last
// stage) or the hand-off to the next stage. The host work around the model
// calls makes host spans (timeline.KindHost): on the first stage, from
// avail until the encode call (taking the samples, loading their images,
// drawing their noise); on a later stage, from avail until its first step
// (waking up, unpacking the micro-batch: a receive, with the sender as
// peer); on the last, after the decode (handing the outputs on).
func (w *stageWorker) process(ctx context.Context, b *batch, avail int64) error {
	// Each span starts where the one before ends, so that no time of
	// the stage's falls between its spans.
	t0 := w.now()
	ts := t0
	if w.st.Encode {
		var err error
		if ts, err = w.encodeImages(b, avail); err != nil {
			return err
		}
	} else if w.prev != "" && w.prev != w.st.Device {
		w.hooks.hostWork("receive", len(b.items))
		ts = w.now()
		w.hostSpan(b, avail, ts, w.prev)
	}
	states, tend, err := w.steps(ctx, b, ts)
	if err != nil {
		return err
	}
	if w.st.Decode {
		return w.decodeVideos(b, states, t0, tend)
	}
	for _, it := range b.items {
		it.timings = append(it.timings, StageTiming{Stage: w.st.Index, Device: w.st.Device, Start: t0, End: tend})
	}
	return w.handOn(ctx, b, tend)
}

// hostSpan records host work on b from start to end (nothing when empty).
func (w *stageWorker) hostSpan(b *batch, start, end int64, peer string) {
	if end > start {
		w.span(timeline.KindHost, b, -1, -1, start, end, peer, false)
	}
}

// encodeImages starts the samples' sampler states (their seeded noise) and
// encodes the conditioning images of b: host work from avail until the
// encode call (a host span), then the encode span. The image latent is
// that of the image noised at model.noise_aug, from the sample's own noise
// augmentation stream (models.EncodeConditioning).
func (w *stageWorker) encodeImages(b *batch, avail int64) (end int64, err error) {
	n, c := len(b.items), w.scfg
	frame := c.Channels * c.Height * c.Width
	shape := models.Shape{Batch: n, Frames: c.Frames, Channels: c.Channels, Height: c.Height, Width: c.Width}
	px := 3 * 64 * c.Height * c.Width
	w.images3 = grow(w.images3, n*px)
	for i, it := range b.items {
		img, err := w.images(it.id)
		if err != nil {
			return 0, fmt.Errorf("conditioning image of sample %d: %w", it.id, err)
		}
		if len(img) != px {
			return 0, fmt.Errorf("conditioning image of sample %d has %d values, want %d (3×%d×%d)", it.id, len(img), px, 8*c.Height, 8*c.Width)
		}
		copy(w.images3[i*px:], img)
	}
	for _, it := range b.items {
		it.state = w.smp.Start(w.p.Workload.Seed, it.id, models.Conditioning{}) // its conditioning below
	}
	w.emb = grow(w.emb, n*models.Embedding)
	w.lat = grow(w.lat, n*frame)
	ids := b.ids()
	w.hooks.hostWork("first", n)
	te := w.now()
	w.hostSpan(b, avail, te, "")
	if err := models.EncodeConditioning(w.model, shape, w.images3, w.p.Workload.Seed, ids, w.p.Model.NoiseAug, w.emb, w.lat); err != nil {
		return 0, fmt.Errorf("encode: %w", err)
	}
	for i, it := range b.items {
		it.state.Cond = models.Conditioning{
			Embedding:   append([]float32(nil), w.emb[i*models.Embedding:(i+1)*models.Embedding]...),
			ImageLatent: append([]float32(nil), w.lat[i*frame:(i+1)*frame]...),
		}
	}
	end = w.now()
	w.span(timeline.KindEncode, b, -1, -1, te, end, "", false)
	return end, nil
}

// steps runs the stage's step range on b from ts (the end of the span
// before, or now) and returns its states and the end of its step span; a
// cancellation stops it at a step boundary.
func (w *stageWorker) steps(ctx context.Context, b *batch, ts int64) ([]*models.State, int64, error) {
	states := make([]*models.State, len(b.items))
	for i, it := range b.items {
		if it.state == nil {
			return nil, 0, fmt.Errorf("sample %d arrived without a sampler state", it.id)
		}
		if it.state.Next != w.st.First {
			return nil, 0, fmt.Errorf("sample %d arrived at step %d, the stage starts at step %d", it.id, it.state.Next, w.st.First)
		}
		states[i] = it.state
	}
	warm := !w.warmed
	done := int(w.st.First) - 1
	for s := w.st.First; s <= w.st.Last; s++ {
		if ctx.Err() != nil {
			if done >= int(w.st.First) {
				w.span(timeline.KindStep, b, int(w.st.First), done, ts, w.now(), "", warm)
			}
			return nil, 0, context.Cause(ctx)
		}
		if err := w.smp.Step(states); err != nil {
			return nil, 0, err
		}
		w.warmed = true
		done = int(s)
	}
	tend := w.now()
	w.span(timeline.KindStep, b, int(w.st.First), int(w.st.Last), ts, tend, "", warm)
	return states, tend, nil
}

// decodeVideos decodes the final latents of b, encodes the videos (part of
// the decode span: the profile's decode_ms measures both), records the
// samples as done and hands the videos to the output writer (only the file
// writes run in the background). t0 is the start of the stage's work,
// td the end of its steps, where the decode span starts.
func (w *stageWorker) decodeVideos(b *batch, states []*models.State, t0, td int64) error {
	n, c := len(b.items), w.scfg
	shape := models.Shape{Batch: n, Frames: c.Frames, Channels: c.Channels, Height: c.Height, Width: c.Width}
	ll := c.LatentLen()
	w.lats = grow(w.lats, n*ll)
	for i, st := range states {
		copy(w.lats[i*ll:], st.X)
	}
	frames := make([]float32, n*c.Frames*3*64*c.Height*c.Width)
	if err := w.model.Decode(shape, w.lats, frames); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	var videos []*models.Video
	if w.encode != nil {
		var err error
		if videos, err = w.encode(frames, n); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
	}
	tend := w.now()
	w.span(timeline.KindDecode, b, -1, -1, td, tend, "", false)
	for _, it := range b.items {
		it.timings = append(it.timings, StageTiming{Stage: w.st.Index, Device: w.st.Device, Start: t0, End: tend})
		w.emit.AddSample(timeline.Sample{ID: it.id, Pipeline: w.st.Pipeline, Release: it.release, Done: tend})
	}
	// Idle before the outputs are handed to the writer, so that the
	// coordinator hears of it before the samples' done messages.
	w.idle()
	if w.finish != nil {
		w.finish(b, videos, tend)
	}
	w.hooks.hostWork("last", n)
	w.hostSpan(b, tend, w.now(), "")
	return nil
}

// handOn hands b to the next stage over the link, recording the wait for
// the receiver (blocking, when positive) and the transfer; tend is the end
// of the stage's compute.
func (w *stageWorker) handOn(ctx context.Context, b *batch, tend int64) error {
	readyAt, waited, xfer, err := w.out.send(ctx, b)
	if err != nil {
		return &linkError{fmt.Errorf("hand-off to %s: %w", w.peer, err)}
	}
	start := xfer.start
	if waited && readyAt > tend {
		w.span(timeline.KindWait, b, -1, -1, tend, readyAt, w.peer, false)
	} else {
		// The sender's own time before the transfer (the hand-off's
		// set-up) is part of its send.
		start = min(tend, start)
	}
	w.span(timeline.KindSend, b, -1, -1, start, xfer.end, w.peer, false)
	w.idle()
	return nil
}

// idle reports (tcp) that the stage holds no micro-batch any more: it
// handed its micro-batch to the next stage or decoded it.
func (w *stageWorker) idle() {
	if w.busy != nil {
		w.busy(nil)
	}
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// entryQueue admits a pipeline's samples to its first stage, up to
// micro_batch at a time, in sample order: the pipeline's samples are ids
// first, first+stride, ... (round robin over the pipelines). It holds no
// sample before its stage asks for one: it walks the workload's one
// release-time generator (plan.Releases) and, when the stage is idle,
// hands it the samples whose release time has passed (waiting for the
// next one otherwise). Nothing is stored per sample, so memory does not
// grow with the sample count.
type entryQueue struct {
	mu     sync.Mutex
	rel    *plan.Releases // positioned after the sample at the cursor
	id     int            // the next sample to admit
	t      int64          // its release time, ns from start
	stride int
	total  int
	start  time.Time // the run's start
	closed bool      // admission stopped: no more samples
	notify chan struct{}
	mb     int
}

// newEntryQueue returns the entry of the pipeline whose first sample is
// first, over np pipelines, for a run that started at start.
func newEntryQueue(w plan.Workload, first, np, mb int, start time.Time) *entryQueue {
	q := &entryQueue{rel: w.Releases(), id: first, stride: max(np, 1), total: w.Samples, start: start, mb: mb, notify: make(chan struct{}, 1)}
	for range first {
		q.rel.Next()
	}
	q.t = q.rel.Next()
	return q
}

// advance moves the cursor to the pipeline's next sample.
func (q *entryQueue) advance() {
	q.id += q.stride
	for range q.stride - 1 {
		q.rel.Next()
	}
	q.t = q.rel.Next()
}

func (q *entryQueue) poke() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// close stops admission: samples not yet taken are dropped.
func (q *entryQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.poke()
}

func (q *entryQueue) next(ctx context.Context) (*batch, *interval, error) {
	for {
		q.mu.Lock()
		if q.closed || q.id >= q.total {
			q.mu.Unlock()
			return nil, nil, io.EOF
		}
		wait := time.Until(q.start.Add(time.Duration(q.t)))
		if wait <= 0 {
			now := int64(time.Since(q.start))
			b := &batch{}
			for len(b.items) < q.mb && q.id < q.total && q.t <= now {
				b.items = append(b.items, &item{id: q.id, release: q.t})
				q.advance()
			}
			q.mu.Unlock()
			return b, nil, nil
		}
		q.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-q.notify:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil, nil, context.Cause(ctx)
		}
	}
}
