package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// WorkerConfig is what a worker process needs: the same plan as the
// coordinator, the device it runs, the coordinator's rendezvous address,
// and how to open models and read conditioning images.
type WorkerConfig struct {
	Plan       *plan.Plan
	Device     string
	Rendezvous string
	Factory    Factory
	// Images and Conditioning as in Options (Images is required,
	// Conditioning defaults likewise).
	Images       func(sample int) ([]float32, error)
	Conditioning func(sample int) string
	// Timeout bounds the rendezvous (default DefaultTimeout).
	Timeout time.Duration
	// Token is the run's token that the hello carries; "" takes it from
	// $VDPP_WORKER_TOKEN (EnvWorkerToken), where the coordinator puts it
	// (or, for external workers, the user). A worker without one is
	// refused by the coordinator.
	Token string
}

// RunWorker runs one stage of a plan in this process, as a worker of the
// coordinator at cfg.Rendezvous (`vdexec worker`). It returns when the
// coordinator's run is over; its spans, sample records and outputs go to
// the coordinator.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	w, err := newWorker(cfg)
	if err != nil {
		return err
	}
	defer w.close()
	// The rendezvous: everything before the start, within the timeout.
	rctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if err := w.join(rctx); err != nil {
		return err
	}
	if err := w.open(); err != nil {
		return w.report(err)
	}
	if err := w.connect(rctx); err != nil {
		return w.report(err)
	}
	if err := w.awaitStart(); err != nil {
		return err
	}
	return w.run()
}

// worker is one worker process's stage: it joins the coordinator, opens
// its model and links, and runs its stage once told to start.
type worker struct {
	p        *plan.Plan
	st       plan.Stage
	opts     Options // Images, Conditioning; OutDir and OnInterrupt from the assignment
	factory  Factory
	addr     string // the coordinator's
	token    string // the run's
	timeout  time.Duration
	deadline time.Time // of the rendezvous
	where    string    // names the worker in errors

	conn  net.Conn // the control connection
	cc    *controlConn
	link  link
	in    inlet  // from the previous stage; nil on the first
	out   outlet // to the next stage; nil on the last
	asg   control
	model models.Model
	sw    *stageWorker
	clk   clock
}

// newWorker checks the configuration and finds the worker's stage.
func newWorker(cfg WorkerConfig) (*worker, error) {
	p := cfg.Plan
	if p == nil {
		return nil, errors.New("exec: worker: nil plan")
	}
	if cfg.Factory == nil {
		return nil, errors.New("exec: worker: no model factory")
	}
	if err := checkPlan(p); err != nil {
		return nil, err
	}
	w := &worker{p: p, factory: cfg.Factory, addr: cfg.Rendezvous, timeout: cfg.Timeout, token: cfg.Token}
	if w.token == "" {
		w.token = os.Getenv(EnvWorkerToken)
	}
	found := false
	for _, pl := range p.Pipelines {
		for _, s := range pl.Stages {
			if s.Device == cfg.Device {
				w.st, found = s, true
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("exec: worker: device %q runs no stage of plan %s", cfg.Device, p.Name)
	}
	w.opts = Options{Images: cfg.Images, Conditioning: cfg.Conditioning}
	if err := conditioningDefaults(p, &w.opts); err != nil {
		return nil, err
	}
	if err := CheckTransport(p.Transport); err != nil {
		return nil, fmt.Errorf("exec: plan %s: %w", p.Name, err)
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	w.deadline = time.Now().Add(w.timeout)
	w.where = fmt.Sprintf("exec: worker %s (stage %d of pipeline %d)", w.st.Device, w.st.Index, w.st.Pipeline)
	return w, nil
}

// close releases what the worker holds.
func (w *worker) close() {
	if w.model != nil {
		closeModels(map[string]models.Model{w.st.Device: w.model})
	}
	if w.in != nil {
		w.in.close()
	}
	if w.out != nil {
		w.out.close()
	}
	if j, ok := w.link.(joiner); ok {
		j.close()
	}
	if w.conn != nil {
		w.conn.Close()
	}
}

// join says hello to the coordinator, with the plan's hash and the address
// of this stage's inlet, and reads the assignment.
func (w *worker) join(ctx context.Context) error {
	c, err := dialRetry(ctx, w.addr)
	if err != nil {
		return fmt.Errorf("%s: rendezvous %s: %w", w.where, w.addr, err)
	}
	w.conn, w.cc = c, newControlConn(c)
	// The stage's inlet listens on the address this host reaches the
	// coordinator from (loopback when the coordinator is on loopback):
	// the other workers reach it there.
	if w.link, err = newLinkAt(w.p, w.token, addrHost(c.LocalAddr())); err != nil {
		return err
	}
	hello := control{Type: "hello", Device: w.st.Device, PlanHash: w.p.Hash(), PID: os.Getpid(), Token: w.token}
	hello.Host, _ = os.Hostname()
	if w.st.Index > 0 {
		if w.in, err = w.link.listen(); err != nil {
			return fmt.Errorf("%s: %w", w.where, err)
		}
		hello.DataAddr = w.in.addr()
	}
	if err := w.cc.send(hello); err != nil {
		return fmt.Errorf("%s: rendezvous: %w", w.where, err)
	}
	c.SetReadDeadline(w.deadline)
	// The assignment is small: a peer that is not a coordinator (an HTTP
	// or SSH server answering with text) cannot make the worker wait for
	// a large frame.
	if err := w.cc.recvMax(&w.asg, maxHello); err != nil {
		var fe frameError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &fe) || errors.As(err, &se) || errors.As(err, &te) {
			return fmt.Errorf("%s: rendezvous: the peer at %s is not a vdexec coordinator: its first reply is not a valid frame (%v)", w.where, w.addr, err)
		}
		return fmt.Errorf("%s: rendezvous: no assignment: %w", w.where, err)
	}
	if w.asg.Error != "" {
		return fmt.Errorf("%s: the coordinator refused this worker: %s", w.where, w.asg.Error)
	}
	return nil
}

// dialRetry dials the coordinator at addr until it answers or ctx ends:
// a cluster's launcher starts every rank at once, so a worker may look
// for its coordinator before the coordinator listens.
func dialRetry(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	wait := 100 * time.Millisecond
	for tries := 1; ; tries++ {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if tries > 1 {
				return nil, fmt.Errorf("%w (tried %d times until the time-out)", err, tries)
			}
			return nil, err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// addrHost is the IP address of a, an end of a TCP connection ("" when
// it is not one).
func addrHost(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap().String()
	}
	return ""
}

// report sends a failure to the coordinator and returns it.
func (w *worker) report(err error) error {
	w.cc.send(control{Type: "result", Error: err.Error()})
	return err
}

// open opens the stage's model and its stage worker.
func (w *worker) open() error {
	scfg, _ := samplerConfig(w.p)
	m, err := w.factory(w.p.Devices[w.st.DevIdx], w.st)
	if err == nil && m == nil {
		err = errors.New("factory returned no model")
	}
	if err != nil {
		return fmt.Errorf("%s: open model: %w", w.where, err)
	}
	w.model = m
	// The clock starts later: the stage reads it through w.clk.
	sw, err := newStageWorker(w.p, w.st, m, scfg, w.opts.Images, func() int64 { return w.clk.now() })
	if err != nil {
		return err
	}
	w.sw = sw
	return nil
}

// connect connects the stage's links: it joins the run's communicator
// where the link has one (nccl; every worker at once), dials the next
// stage's inlet and waits for the previous stage to dial this one's, then
// says it is ready.
func (w *worker) connect(ctx context.Context) error {
	pl := w.p.Pipelines[w.st.Pipeline]
	if j, ok := w.link.(joiner); ok {
		if err := j.join(ctx, w.p, w.st, w.asg); err != nil {
			return fmt.Errorf("%s: %w", w.where, err)
		}
	}
	w.sw.prev = ""
	if w.asg.Downstream != "" {
		out, err := w.link.dial(ctx, w.asg.Downstream)
		if err != nil {
			return fmt.Errorf("%s: connect to the next stage at %s: %w", w.where, w.asg.Downstream, err)
		}
		w.out = out
		w.sw.peer = pl.Stages[w.st.Index+1].Device
	}
	if w.in != nil {
		if err := w.in.accept(ctx); err != nil {
			return fmt.Errorf("%s: wait for the previous stage: %w", w.where, err)
		}
		w.sw.prev = pl.Stages[w.st.Index-1].Device
	}
	if err := w.cc.send(control{Type: "ready"}); err != nil {
		return fmt.Errorf("%s: %w", w.where, err)
	}
	return nil
}

// awaitStart waits for the coordinator's start and sets the run's clock:
// the coordinator's start instant on this process's monotonic clock.
// Processes on one host share the wall clock, so the offset between now
// and the start on the wall clock carries over.
func (w *worker) awaitStart() error {
	var msg control
	if err := w.cc.recv(&msg); err != nil || msg.Type != "start" {
		return fmt.Errorf("%s: no start from the coordinator (%v)", w.where, err)
	}
	n := time.Now()
	w.clk = clock{start: n.Add(-time.Duration(n.UnixNano() - msg.StartUnixNano))}
	w.conn.SetReadDeadline(time.Time{})
	return nil
}

// run runs the stage until the coordinator's run is over and reports its
// spans, sample records and outputs, or its failure.
func (w *worker) run() error {
	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	tl := &timeline.Timeline{}
	w.sw.emit = &collector{tl: tl}
	w.sw.busy = func(ids []int) { w.cc.send(control{Type: "busy", Samples: ids}) }
	var q *entryQueue
	if w.st.Index == 0 {
		q = newEntryQueue(w.p.Workload, w.st.Pipeline, len(w.p.Pipelines), w.p.Layout.MicroBatch, w.clk.start)
		w.sw.in = q
	} else {
		w.sw.in = w.in.open(runCtx, w.clk)
	}
	stop := func() {
		if q != nil {
			q.close()
		}
	}
	go w.listenControl(stop, cancel)
	if w.out != nil {
		w.sw.out = w.out.open(runCtx, w.clk)
	}
	out := w.outputs()
	runErr := w.sw.run(runCtx)
	stop()
	return w.finish(runCtx, tl, out, runErr)
}

// listenControl follows the coordinator's messages during the run: stop
// (finish or abandon), or a lost coordinator (abandon).
func (w *worker) listenControl(stop func(), cancel context.CancelCauseFunc) {
	for {
		var m control
		if err := w.cc.recv(&m); err != nil {
			stop()
			cancel(errors.New("coordinator gone"))
			return
		}
		if m.Type == "stop" {
			stop()
			if m.Mode == InterruptAbandon {
				cancel(errAbandoned)
			}
		}
	}
}

// outputs sets up the decode stage's output writer (nil elsewhere); each
// finished sample is reported to the coordinator, for its progress, with
// its record and folder once they are written.
func (w *worker) outputs() *outputs {
	if !w.st.Decode {
		return nil
	}
	o := w.opts
	o.OutDir = w.asg.OutDir
	out := newOutputs(w.p, o, w.clk.start, w.p.Workload.Samples)
	out.written = func(rec SampleRecord, dir string, err error) {
		m := control{Type: "done"}
		if err == nil {
			m.Records = []timeline.Sample{{ID: rec.Sample, Pipeline: w.st.Pipeline, Release: rec.Release, Done: rec.Done}}
			if dir != "" {
				m.Outputs = []string{dir}
			}
		}
		w.cc.send(m)
	}
	w.sw.encode, w.sw.finish = out.encode, out.finish
	return out
}

// finish reports the stage's spans, records and outputs to the
// coordinator, with its failure if it had one of its own (not one caused
// by a stop).
func (w *worker) finish(runCtx context.Context, tl *timeline.Timeline, out *outputs, runErr error) error {
	result := control{Type: "result", Spans: tl.Spans, Records: tl.Samples}
	if out != nil {
		o := out.wait()
		result.Outputs = o.dirs
		if runErr == nil && o.err != nil {
			runErr = o.err
		}
	}
	if runErr != nil && runCtx.Err() == nil {
		result.Error = runErr.Error()
		var le *linkError
		result.Link = errors.As(runErr, &le)
	} else {
		runErr = nil
	}
	if err := w.cc.send(result); err != nil && runErr == nil {
		runErr = fmt.Errorf("%s: report to the coordinator: %w", w.where, err)
	}
	return runErr
}
