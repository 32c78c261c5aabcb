package exec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
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
	// Images and Conditioning as in Options (defaults likewise).
	Images       func(sample int) ([]float32, error)
	Conditioning func(sample int) string
	// Timeout bounds the rendezvous (default DefaultTimeout).
	Timeout time.Duration
}

// control is a control message; Type says which fields are set.
type control struct {
	Type string `json:"type"` // hello assign ready start stop busy done result

	// hello (worker → coordinator)
	Device   string `json:"device,omitempty"`
	PlanHash string `json:"plan_hash,omitempty"`
	DataAddr string `json:"data_addr,omitempty"`
	PID      int    `json:"pid,omitempty"`

	// assign (coordinator → worker)
	Downstream  string `json:"downstream,omitempty"`
	OutDir      string `json:"out_dir,omitempty"`
	OnInterrupt string `json:"on_interrupt,omitempty"`
	Error       string `json:"error,omitempty"` // assign: refused; result: the failure

	// start (coordinator → worker): the run's start on the host's
	// wall clock, in ns since the Unix epoch
	StartUnixNano int64 `json:"start_unix_nano,omitempty"`

	// stop (coordinator → worker): Mode
	Mode string `json:"mode,omitempty"`

	// busy (worker → coordinator): the micro-batch the worker took; a
	// busy without samples says it handed its micro-batch on (or decoded
	// it) and holds none. done: a sample's outputs are complete.
	Samples []int `json:"samples,omitempty"`

	// result (worker → coordinator)
	Spans   []timeline.Span   `json:"spans,omitempty"`
	Records []timeline.Sample `json:"records,omitempty"`
	Outputs []string          `json:"outputs,omitempty"`
	Link    bool              `json:"link,omitempty"` // the failure is a broken hand-off
}

// workerState is the coordinator's view of one worker process.
type workerState struct {
	stage   plan.Stage
	cmd     *osexec.Cmd
	stderr  *tailBuffer
	ctl     *controlConn
	hello   control
	busy    []int
	result  *control
	exitErr error
	exited  bool
	killed  bool // by the coordinator, after it did not stop in time
}

// tailBuffer keeps the last 4 KiB written to it (a worker's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

type event struct {
	dev  string
	msg  *control
	err  error // control connection broken
	exit bool  // process exited (err: its status)
}

// runTCP is the coordinator of a multi-process run: one worker process
// per stage's device, hand-offs over loopback TCP.
func runTCP(ctx context.Context, p *plan.Plan, opts Options) (*Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("exec: tcp rendezvous: %w", err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	hash := p.Hash()

	workers := map[string]*workerState{}
	var order []string
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			workers[st.Device] = &workerState{stage: st}
			order = append(order, st.Device)
		}
	}
	events := make(chan event, 64*len(order)+64)
	kill := func() {
		for _, w := range workers {
			if w.cmd != nil && w.cmd.Process != nil && !w.exited {
				w.cmd.Process.Kill()
			}
		}
	}
	var procs sync.WaitGroup
	fail := func(err error) (*Result, error) {
		kill()
		for _, w := range workers {
			if w.ctl != nil {
				w.ctl.conn.Close()
			}
		}
		procs.Wait()
		return nil, err
	}
	for _, dev := range order {
		w := workers[dev]
		cmd, err := opts.WorkerCommand(dev, addr)
		if err != nil {
			return fail(fmt.Errorf("exec: worker command for device %s: %w", dev, err))
		}
		w.stderr = &tailBuffer{}
		if cmd.Stderr == nil {
			cmd.Stderr = w.stderr
		}
		if err := cmd.Start(); err != nil {
			return fail(fmt.Errorf("exec: start worker for device %s: %w", dev, err))
		}
		w.cmd = cmd
		procs.Add(1)
		go func() {
			defer procs.Done()
			err := cmd.Wait()
			events <- event{dev: dev, exit: true, err: err}
		}()
	}
	conns := make(chan net.Conn)
	stopAccept := make(chan struct{})
	defer close(stopAccept)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			case <-stopAccept:
				c.Close()
				return
			}
		}
	}()
	reader := func(dev string, cc *controlConn) {
		for {
			var m control
			if err := cc.recv(&m); err != nil {
				events <- event{dev: dev, err: err}
				return
			}
			events <- event{dev: dev, msg: &m}
		}
	}
	died := func(w *workerState, when string) error {
		msg := fmt.Sprintf("exec: worker for device %s (stage %d of pipeline %d) exited %s", w.stage.Device, w.stage.Index, w.stage.Pipeline, when)
		if w.exitErr != nil {
			msg += " (" + w.exitErr.Error() + ")"
		}
		if len(w.busy) > 0 {
			msg += fmt.Sprintf(" while running samples %v", w.busy)
		}
		if s := w.stderr.String(); s != "" {
			msg += "; its stderr: " + s
		}
		return errors.New(msg)
	}

	// Rendezvous: every worker says hello with the plan's hash, gets its
	// assignment, opens its model and links, and says it is ready.
	timer := time.NewTimer(opts.Timeout)
	defer timer.Stop()
	waiting := func(pred func(*workerState) bool) []string {
		var out []string
		for _, d := range order {
			if !pred(workers[d]) {
				out = append(out, d)
			}
		}
		return out
	}
	phase := "hello"
	for {
		var missing []string
		if phase == "hello" {
			missing = waiting(func(w *workerState) bool { return w.ctl != nil })
			if len(missing) == 0 {
				for _, dev := range order {
					w := workers[dev]
					a := control{Type: "assign", OutDir: opts.OutDir, OnInterrupt: opts.OnInterrupt}
					if st := w.stage; st.Index+1 < len(p.Pipelines[st.Pipeline].Stages) {
						a.Downstream = workers[p.Pipelines[st.Pipeline].Stages[st.Index+1].Device].hello.DataAddr
					}
					if err := w.ctl.send(a); err != nil {
						return fail(fmt.Errorf("exec: tcp rendezvous: assign device %s: %w", dev, err))
					}
				}
				phase = "ready"
				continue
			}
		} else {
			missing = waiting(func(w *workerState) bool { return w.hello.Type == "ready" })
			if len(missing) == 0 {
				break
			}
		}
		select {
		case c := <-conns:
			cc := newControlConn(c)
			c.SetReadDeadline(time.Now().Add(opts.Timeout))
			var h control
			err := cc.recv(&h)
			c.SetReadDeadline(time.Time{})
			if err != nil || h.Type != "hello" {
				c.Close()
				return fail(fmt.Errorf("exec: tcp rendezvous: a process connected without a valid hello (%v)", err))
			}
			w, ok := workers[h.Device]
			switch {
			case !ok:
				cc.send(control{Type: "assign", Error: "unexpected device"})
				return fail(fmt.Errorf("exec: tcp rendezvous: unexpected stage: a worker for device %q joined, but plan %s has no stage on it (stages run on %v)", h.Device, p.Name, order))
			case w.ctl != nil:
				cc.send(control{Type: "assign", Error: "duplicate device"})
				return fail(fmt.Errorf("exec: tcp rendezvous: two workers joined for device %s", h.Device))
			case h.PlanHash != hash:
				cc.send(control{Type: "assign", Error: "plan mismatch"})
				return fail(fmt.Errorf("exec: tcp rendezvous: plan mismatch: the worker for device %s runs a plan with hash %s, the coordinator %s (start workers with the same plan file)", h.Device, h.PlanHash, hash))
			}
			w.ctl, w.hello = cc, h
			go reader(h.Device, cc)
		case ev := <-events:
			w := workers[ev.dev]
			switch {
			case ev.exit:
				w.exited, w.exitErr = true, ev.err
				return fail(died(w, "during the rendezvous"))
			case ev.msg != nil && ev.msg.Type == "ready":
				w.hello.Type = "ready"
			case ev.msg != nil && ev.msg.Type == "result" && ev.msg.Error != "":
				return fail(fmt.Errorf("exec: worker for device %s: %s", ev.dev, ev.msg.Error))
			}
		case <-timer.C:
			return fail(fmt.Errorf("exec: tcp rendezvous: timed out after %v waiting for the workers of devices %v (%s); check the worker command", opts.Timeout, missing, phase))
		case <-ctx.Done():
			return fail(fmt.Errorf("exec: tcp rendezvous: %w", context.Cause(ctx)))
		}
	}

	// Run: start everyone, then collect progress and results.
	tl := &timeline.Timeline{Meta: newMeta(p, opts.Versions), Spans: []timeline.Span{}, Samples: []timeline.Sample{}}
	res := &Result{Timeline: tl, Total: p.Workload.Samples}
	start := time.Now()
	for _, dev := range order {
		workers[dev].ctl.send(control{Type: "start", StartUnixNano: start.UnixNano()})
	}
	// Abandon stops every worker at its next step boundary: one that has
	// not exited within opts.Timeout of the first abandon is stuck and is
	// killed. Finish lets the admitted samples run as long as they take.
	armed := false
	stopAll := func(mode string) {
		for _, w := range workers {
			w.ctl.send(control{Type: "stop", Mode: mode})
		}
		if mode == InterruptAbandon && !armed {
			armed = true
			timer.Reset(opts.Timeout)
		}
	}
	timer.Stop()
	var failures, deaths, kills, links []error
	finished := map[string]bool{}
	readerDone := map[string]bool{}
	ctxDone := ctx.Done()
	done := 0
	for len(finished) < len(order) {
		select {
		case ev := <-events:
			w := workers[ev.dev]
			switch {
			case ev.exit:
				w.exited, w.exitErr = true, ev.err
			case ev.err != nil:
				readerDone[ev.dev] = true
			case ev.msg.Type == "busy":
				w.busy = ev.msg.Samples // empty once the worker is idle again
			case ev.msg.Type == "done":
				done++
				if opts.Progress != nil {
					el := time.Since(start)
					opts.Progress(ProgressEvent{Done: done, Total: res.Total, Elapsed: el, Throughput: float64(done) / el.Seconds()})
				}
			case ev.msg.Type == "result":
				w.result = ev.msg
				if m := ev.msg.Error; m != "" {
					e := fmt.Errorf("exec: worker for device %s: %s", ev.dev, m)
					if ev.msg.Link {
						links = append(links, e)
					} else {
						failures = append(failures, e)
					}
					stopAll(InterruptAbandon)
				}
			}
			if w.exited && readerDone[ev.dev] && !finished[ev.dev] {
				finished[ev.dev] = true
				if w.result == nil && !w.killed {
					deaths = append(deaths, died(w, "before reporting"))
					stopAll(InterruptAbandon)
				}
			}
		case <-ctxDone:
			ctxDone = nil
			res.Interrupted = true
			stopAll(opts.OnInterrupt)
		case <-timer.C:
			var stuck []string
			for _, dev := range order {
				if w := workers[dev]; !finished[dev] && !w.exited {
					w.killed = true
					held := "idle"
					if len(w.busy) > 0 {
						held = fmt.Sprintf("samples %v", w.busy)
					}
					stuck = append(stuck, fmt.Sprintf("%s (stage %d of pipeline %d, %s)", dev, w.stage.Index, w.stage.Pipeline, held))
				}
			}
			kill()
			kills = append(kills, fmt.Errorf("exec: tcp: workers did not stop within %v of being told to abandon; killed: %s", opts.Timeout, strings.Join(stuck, ", ")))
		}
	}
	procs.Wait()
	for _, dev := range order {
		r := workers[dev].result
		if r == nil {
			continue
		}
		for _, s := range r.Spans {
			tl.AddSpan(s)
			if opts.Recorder != nil {
				opts.Recorder.AddSpan(s)
			}
		}
		for _, s := range r.Records {
			tl.AddSample(s)
			if opts.Recorder != nil {
				opts.Recorder.AddSample(s)
			}
		}
		res.Outputs = append(res.Outputs, r.Outputs...)
	}
	sortTimeline(tl)
	res.Done = len(tl.Samples)
	// As in-process: a cancellation after every sample finished
	// interrupted nothing.
	res.Interrupted = res.Interrupted && res.Done < res.Total
	for _, list := range [][]error{failures, deaths, kills, links} {
		if len(list) > 0 {
			return res, list[0]
		}
	}
	return res, nil
}

// RunWorker runs one stage of a plan in this process, as a worker of the
// coordinator at cfg.Rendezvous (`vdexec worker`). It returns when the
// coordinator's run is over; its spans, sample records and outputs go to
// the coordinator.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	p := cfg.Plan
	if p == nil {
		return errors.New("exec: worker: nil plan")
	}
	if cfg.Factory == nil {
		return errors.New("exec: worker: no model factory")
	}
	if err := checkPlan(p); err != nil {
		return err
	}
	var st plan.Stage
	found := false
	for _, pl := range p.Pipelines {
		for _, s := range pl.Stages {
			if s.Device == cfg.Device {
				st, found = s, true
			}
		}
	}
	if !found {
		return fmt.Errorf("exec: worker: device %q runs no stage of plan %s", cfg.Device, p.Name)
	}
	opts := Options{Images: cfg.Images, Conditioning: cfg.Conditioning}
	if err := conditioningDefaults(p, &opts); err != nil {
		return err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	where := fmt.Sprintf("exec: worker %s (stage %d of pipeline %d)", st.Device, st.Index, st.Pipeline)

	c, err := net.DialTimeout("tcp", cfg.Rendezvous, timeout)
	if err != nil {
		return fmt.Errorf("%s: rendezvous %s: %w", where, cfg.Rendezvous, err)
	}
	cc := newControlConn(c)
	defer c.Close()
	var dl net.Listener
	hello := control{Type: "hello", Device: cfg.Device, PlanHash: p.Hash(), PID: os.Getpid()}
	if st.Index > 0 {
		dl, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		defer dl.Close()
		hello.DataAddr = dl.Addr().String()
	}
	if err := cc.send(hello); err != nil {
		return fmt.Errorf("%s: rendezvous: %w", where, err)
	}
	c.SetReadDeadline(deadline)
	var asg control
	if err := cc.recv(&asg); err != nil {
		return fmt.Errorf("%s: rendezvous: no assignment: %w", where, err)
	}
	if asg.Error != "" {
		return fmt.Errorf("%s: the coordinator refused this worker: %s", where, asg.Error)
	}
	report := func(err error) error {
		cc.send(control{Type: "result", Error: err.Error()})
		return err
	}
	scfg, _ := samplerConfig(p)
	m, err := cfg.Factory(p.Devices[st.DevIdx], st)
	if err == nil && m == nil {
		err = errors.New("factory returned no model")
	}
	if err != nil {
		return report(fmt.Errorf("%s: open model: %w", where, err))
	}
	defer closeModels(map[string]models.Model{st.Device: m})

	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var startAt time.Time
	now := func() int64 { return int64(time.Since(startAt)) }
	w, err := newStageWorker(p, st, m, scfg, opts.Images, now)
	if err != nil {
		return report(err)
	}
	w.prev = ""
	blocking := p.Layout.Handoff == plan.HandoffBlocking
	var down, up net.Conn
	if asg.Downstream != "" {
		if down, err = net.DialTimeout("tcp", asg.Downstream, timeout); err != nil {
			return report(fmt.Errorf("%s: connect to the next stage at %s: %w", where, asg.Downstream, err))
		}
		w.peer = p.Pipelines[st.Pipeline].Stages[st.Index+1].Device
	}
	if dl != nil {
		dl.(*net.TCPListener).SetDeadline(deadline)
		if up, err = dl.Accept(); err != nil {
			return report(fmt.Errorf("%s: wait for the previous stage: %w", where, err))
		}
		w.prev = p.Pipelines[st.Pipeline].Stages[st.Index-1].Device
	}
	if err := cc.send(control{Type: "ready"}); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	var msg control
	if err := cc.recv(&msg); err != nil || msg.Type != "start" {
		return fmt.Errorf("%s: no start from the coordinator (%v)", where, err)
	}
	// The coordinator's start instant on this process's monotonic clock:
	// processes on one host share the wall clock, so the offset between
	// now and the start on the wall clock carries over.
	n := time.Now()
	startAt = n.Add(-time.Duration(n.UnixNano() - msg.StartUnixNano))
	c.SetReadDeadline(time.Time{})

	tl := &timeline.Timeline{}
	w.emit = &collector{tl: tl}
	w.busy = func(ids []int) { cc.send(control{Type: "busy", Samples: ids}) }
	var q *entryQueue
	if st.Index == 0 {
		q = newEntryQueue(p.Layout.MicroBatch)
	}
	stopRelease := make(chan struct{})
	var stopOnce sync.Once
	go func() {
		for {
			var m control
			if err := cc.recv(&m); err != nil {
				stopOnce.Do(func() { close(stopRelease) })
				if q != nil {
					q.close()
				}
				cancel(errors.New("coordinator gone"))
				return
			}
			if m.Type == "stop" {
				stopOnce.Do(func() { close(stopRelease) })
				if q != nil {
					q.close()
				}
				if m.Mode == InterruptAbandon {
					cancel(errAbandoned)
				}
			}
		}
	}()
	var out *outputs
	var wg sync.WaitGroup
	if st.Index == 0 {
		rel := p.Workload.ReleaseTimes()
		w.in = q
		wg.Add(1)
		go func() {
			defer wg.Done()
			release(runCtx, rel, len(p.Pipelines), map[int]*entryQueue{st.Pipeline: q}, startAt, stopRelease)
		}()
	} else {
		w.in = newTCPReceiver(runCtx, up, blocking, startAt, now)
	}
	if down != nil {
		w.out = newTCPSender(runCtx, down, blocking, now)
	}
	if st.Decode {
		o := opts
		o.OutDir = asg.OutDir
		o.Progress = func(ProgressEvent) { cc.send(control{Type: "done"}) }
		out = newOutputs(p, o, startAt, p.Workload.Samples)
		w.encode, w.finish = out.encode, out.finish
	}
	runErr := w.run(runCtx)
	stopOnce.Do(func() { close(stopRelease) })
	if q != nil {
		q.close()
	}
	wg.Wait()
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
	if err := cc.send(result); err != nil && runErr == nil {
		runErr = fmt.Errorf("%s: report to the coordinator: %w", where, err)
	}
	return runErr
}
