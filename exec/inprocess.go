package exec

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// oneProcess is the process layout that runs every stage as a goroutine
// of this process, one model session each. Its hand-offs go over the
// plan's link (channels for transport inproc; any link works here).
type oneProcess struct{}

func (oneProcess) describe() string { return "one process" }

func (oneProcess) workers() bool { return false }

func (oneProcess) check(p *plan.Plan, f Factory, _ *Options) error {
	if f == nil {
		return fmt.Errorf("exec: plan %s: no model factory", p.Name)
	}
	return nil
}

func (oneProcess) run(ctx context.Context, p *plan.Plan, f Factory, opts Options) (*Result, error) {
	l, err := newLink(p, "")
	if err != nil {
		return nil, err
	}
	if cl, ok := l.(*chanLink); ok && opts.hooks != nil {
		cl.h.xfer = opts.hooks.xfer
	}
	return runLocal(ctx, p, f, l, opts)
}

// runLocal runs every stage of p in this process, its hand-offs over l.
func runLocal(ctx context.Context, p *plan.Plan, f Factory, l link, opts Options) (*Result, error) {
	mods, err := openModels(p, f)
	if err != nil {
		return nil, err
	}
	defer closeModels(mods)
	r := newLocalRun(p, opts)
	defer r.cancel(nil)
	defer r.release()
	if err := r.build(l, mods); err != nil {
		if r.out != nil {
			r.out.wait() // end the output writer the build started
		}
		return nil, err
	}
	r.watch(ctx)
	r.runStages()
	return r.finish()
}

// localRun is one run of the one-process layout.
type localRun struct {
	p       *plan.Plan
	opts    Options
	res     *Result
	col     *collector
	out     *outputs
	clk     clock
	ctx     context.Context // the run's: cancelled on abandon or a failure
	cancel  context.CancelCauseFunc
	queues  map[int]*entryQueue // each pipeline's entry
	workers []*stageWorker
	ends    []interface{ close() error } // the links' ends, released at the end

	imu                    sync.Mutex
	interrupted, abandoned bool
	watchDone              chan struct{}

	emu      sync.Mutex
	firstErr error
}

func newLocalRun(p *plan.Plan, opts Options) *localRun {
	tl := &timeline.Timeline{Meta: newMeta(p, opts.Versions), Spans: []timeline.Span{}, Samples: []timeline.Sample{}}
	r := &localRun{
		p: p, opts: opts, res: &Result{Timeline: tl, Total: p.Workload.Samples},
		col: &collector{tl: tl, ext: opts.Recorder}, queues: map[int]*entryQueue{},
		watchDone: make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancelCause(context.Background())
	return r
}

// release releases the ends of the run's links.
func (r *localRun) release() {
	for _, e := range r.ends {
		e.close()
	}
}

// build connects the hand-offs over l, starts the run's clock and makes
// one stage worker per stage, fed by its pipeline's entry queue or its
// inlet.
func (r *localRun) build(l link, mods map[string]models.Model) error {
	type ends struct {
		in  inlet
		out outlet
	}
	hops := map[[2]int]ends{} // (pipeline, stage) → the hand-off to stage+1
	for _, pl := range r.p.Pipelines {
		for si := range len(pl.Stages) - 1 {
			in, out, err := connect(r.ctx, l)
			if err != nil {
				return fmt.Errorf("exec: pipeline %d: connect stage %d to stage %d: %w", pl.Index, si, si+1, err)
			}
			r.ends = append(r.ends, in, out)
			hops[[2]int{pl.Index, si}] = ends{in, out}
		}
	}
	scfg, _ := samplerConfig(r.p)
	r.clk = clock{start: time.Now()}
	r.out = newOutputs(r.p, r.opts, r.clk.start, r.p.Workload.Samples)
	for _, pl := range r.p.Pipelines {
		q := newEntryQueue(r.p.Workload, pl.Index, len(r.p.Pipelines), r.p.Layout.MicroBatch, r.clk.start)
		r.queues[pl.Index] = q
		var in source = q
		for si, st := range pl.Stages {
			w, err := newStageWorker(r.p, st, mods[st.Device], scfg, r.opts.Images, r.clk.now)
			if err != nil {
				return err
			}
			w.in, w.emit, w.hooks = in, r.col, r.opts.hooks
			if st.Decode {
				w.encode, w.finish = r.out.encode, r.out.finish
			}
			if si+1 < len(pl.Stages) {
				h := hops[[2]int{pl.Index, si}]
				w.out, w.peer = h.out.open(r.ctx, r.clk), pl.Stages[si+1].Device
				in = h.in.open(r.ctx, r.clk)
			}
			r.workers = append(r.workers, w)
		}
	}
	return nil
}

// watch makes a cancellation of ctx stop admitting samples, and with
// InterruptAbandon also stop the stages.
func (r *localRun) watch(ctx context.Context) {
	go func() {
		select {
		case <-ctx.Done():
			r.imu.Lock()
			r.interrupted = true
			r.abandoned = r.opts.OnInterrupt == InterruptAbandon
			r.imu.Unlock()
			closeAll(r.queues)
			if r.opts.OnInterrupt == InterruptAbandon {
				r.cancel(errAbandoned)
			}
		case <-r.watchDone:
		}
	}()
}

// runStages runs every stage on its own goroutine until all are done
// (the first stages admit their samples as they become due); the first
// failure stops the others.
func (r *localRun) runStages() {
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.run(r.ctx)
			if err == nil || r.ctx.Err() != nil {
				return // done, abandoned, or stopped by another stage's failure
			}
			r.emu.Lock()
			if r.firstErr == nil {
				r.firstErr = err
				r.cancel(err)
			}
			r.emu.Unlock()
		}()
	}
	wg.Wait()
}

// finish waits for the outputs and returns the run's result.
func (r *localRun) finish() (*Result, error) {
	close(r.watchDone)
	closeAll(r.queues)
	outs := r.out.wait()
	res := r.res
	res.Outputs = outs.dirs
	res.Done = len(res.Timeline.Samples)
	// A cancellation that came after every sample had finished (before
	// the watcher stopped) interrupted nothing.
	r.imu.Lock()
	res.Interrupted = (r.interrupted || r.abandoned) && res.Done < res.Total
	r.imu.Unlock()
	sortTimeline(res.Timeline)
	if r.firstErr != nil {
		return res, r.firstErr
	}
	if outs.err != nil {
		return res, outs.err
	}
	return res, nil
}

func closeAll(qs map[int]*entryQueue) {
	for _, q := range qs {
		q.close()
	}
}
