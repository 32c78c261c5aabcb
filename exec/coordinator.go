package exec

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"time"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// processPerDevice is the process layout with one worker process per stage
// device on this host, started by Options.WorkerCommand, each calling
// RunWorker. Run is their coordinator: it meets them at a rendezvous on
// loopback TCP, starts them together and collects their spans, records
// and outputs (see doc.go). The workers hand micro-batches to each other
// over the plan's link; the coordinator never touches a micro-batch.
type processPerDevice struct{}

func (processPerDevice) describe() string { return "one process per device" }

func (processPerDevice) workers() bool { return true }

func (processPerDevice) check(p *plan.Plan, _ Factory, opts *Options) error {
	if opts.ExternalWorkers {
		switch {
		case opts.WorkerCommand != nil:
			return fmt.Errorf("exec: plan %s: external workers and a worker command (Options.WorkerCommand) exclude each other: the coordinator starts the workers or waits for them, not both", p.Name)
		case opts.Token == "":
			return fmt.Errorf("exec: plan %s: external workers need the run's token (Options.Token): only workers that hold it may join", p.Name)
		}
		return nil
	}
	if opts.WorkerCommand == nil {
		return fmt.Errorf("exec: plan %s: transport %s needs a worker command (Options.WorkerCommand) to start one process per device", p.Name, p.Transport)
	}
	// The coordinator starts its workers on this host: a device the plan
	// puts on another host needs external workers.
	here, _ := os.Hostname()
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			if d := p.Devices[st.DevIdx]; !runsHere(d, here) {
				return fmt.Errorf("exec: plan %s: device %s runs on host %s (devices[].host), but this run starts its workers on this host (%s): start the workers on their hosts with external workers (vdexec run --external-workers, vdexec launch)", p.Name, d.Name, d.Host, here)
			}
		}
	}
	return nil
}

func (processPerDevice) run(ctx context.Context, p *plan.Plan, _ Factory, opts Options) (*Result, error) {
	c, err := newCoordinator(p, opts)
	if err != nil {
		return nil, err
	}
	defer c.ln.Close()
	defer c.stopGreeting()
	if opts.Listening != nil {
		opts.Listening(c.ln.Addr().String())
	}
	if !opts.ExternalWorkers {
		if err := c.launch(); err != nil {
			return nil, c.abort(err)
		}
	}
	go c.acceptLoop()
	c.timer = time.NewTimer(opts.Timeout) // bounds the rendezvous, later the abandon
	defer c.timer.Stop()
	if err := c.rendezvous(ctx); err != nil {
		err = c.abort(err)
		if ctx.Err() != nil {
			// Interrupted while the workers were starting: no sample ran,
			// and the caller still gets the (empty) timeline it promised.
			return c.emptyResult(true), nil
		}
		return nil, err
	}
	c.start()
	c.collect(ctx)
	return c.result()
}

// EnvWorkerToken is the environment variable through which the
// coordinator hands the worker processes it starts the run's token: 32
// random bytes (hex) that a worker's hello must carry. With external
// workers (Options.ExternalWorkers) the user gives the coordinator and
// every worker the same token, in this variable or a file. Any process
// that reaches the rendezvous can connect; a connection without the
// token is dropped (and logged) without failing the run. The token never
// appears on a command line.
const EnvWorkerToken = "VDPP_WORKER_TOKEN"

// helloTimeout bounds how long a connection to the rendezvous may stay
// silent before its hello (opts.Timeout when that is shorter).
const helloTimeout = 5 * time.Second

// maxHello bounds the size of a hello frame.
const maxHello = 64 << 10

// workerState is the coordinator's view of one worker process.
type workerState struct {
	stage  plan.Stage
	cmd    *osexec.Cmd
	stderr *tailBuffer
	ctl    *controlConn
	hello  control
	busy   []int
	// written are the records and output folders of the samples the
	// worker reported done, kept in case it dies before its result.
	written     []timeline.Sample
	writtenDirs []string
	result      *control
	exitErr     error
	exited      bool
	killed      bool // by the coordinator, after it did not stop in time
}

// event is what the coordinator hears from or about a worker.
type event struct {
	dev  string
	msg  *control
	err  error // control connection broken
	exit bool  // process exited (err: its status)
}

// coordinator runs the workers of one run: launch, rendezvous, start,
// collect.
type coordinator struct {
	p          *plan.Plan
	opts       Options
	hash       string
	token      string // the run's token, hex (EnvWorkerToken)
	ln         net.Listener
	workers    map[string]*workerState
	order      []string // devices in plan order
	events     chan event
	hellos     chan greeting
	stopAccept chan struct{} // closed (stopGreeting) when the run ends or aborts
	stopOnce   sync.Once
	procs      sync.WaitGroup
	timer      *time.Timer

	// The run, once started.
	startAt                        time.Time
	res                            *Result
	armed                          bool // the abandon deadline is set
	done                           int
	failures, deaths, kills, links []error
	finished, readerDone           map[string]bool
}

func newCoordinator(p *plan.Plan, opts Options) (*coordinator, error) {
	addr := opts.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("exec: tcp rendezvous: %w", err)
	}
	token := opts.Token
	if token == "" {
		tok := make([]byte, 32)
		if _, err := rand.Read(tok); err != nil {
			ln.Close()
			return nil, fmt.Errorf("exec: tcp rendezvous: token: %w", err)
		}
		token = hex.EncodeToString(tok)
	}
	c := &coordinator{
		p: p, opts: opts, hash: p.Hash(), token: token, ln: ln, workers: map[string]*workerState{},
		hellos: make(chan greeting), stopAccept: make(chan struct{}),
		finished: map[string]bool{}, readerDone: map[string]bool{},
	}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			c.workers[st.Device] = &workerState{stage: st}
			c.order = append(c.order, st.Device)
		}
	}
	c.events = make(chan event, 64*len(c.order)+64)
	return c, nil
}

// launch starts one worker process per device, each with the run's token
// in its environment; a goroutine per process reports its exit.
func (c *coordinator) launch() error {
	addr := c.ln.Addr().String()
	for _, dev := range c.order {
		w := c.workers[dev]
		cmd, err := c.opts.WorkerCommand(dev, addr)
		if err != nil {
			return fmt.Errorf("exec: worker command for device %s: %w", dev, err)
		}
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, EnvWorkerToken+"="+c.token) // the last one counts
		w.stderr = &tailBuffer{}
		if cmd.Stderr == nil {
			cmd.Stderr = w.stderr
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("exec: start worker for device %s: %w", dev, err)
		}
		w.cmd = cmd
		c.procs.Add(1)
		go func() {
			defer c.procs.Done()
			err := cmd.Wait()
			c.events <- event{dev: dev, exit: true, err: err}
		}()
	}
	return nil
}

// kill kills every worker process that has not exited; an external
// worker, which the coordinator cannot kill, loses its control
// connection, which makes it abandon its stage.
func (c *coordinator) kill() {
	for _, w := range c.workers {
		switch {
		case w.cmd != nil && w.cmd.Process != nil && !w.exited:
			w.cmd.Process.Kill()
		case c.opts.ExternalWorkers && w.ctl != nil:
			w.ctl.conn.Close()
		}
	}
}

// abort ends a run that failed before it started: it kills the workers,
// closes their control connections, waits for the processes and returns
// err.
func (c *coordinator) abort(err error) error {
	c.stopGreeting() // the workers' connections now close: nothing to log
	c.kill()
	for _, w := range c.workers {
		if w.ctl != nil {
			w.ctl.conn.Close()
		}
	}
	c.procs.Wait()
	return err
}

// acceptLoop greets each connection to the rendezvous on its own
// goroutine, so that a silent one holds up nobody.
func (c *coordinator) acceptLoop() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.greet(conn)
	}
}

// greeting is a hello that carried the run's token.
type greeting struct {
	cc *controlConn
	h  control
}

// greet reads a connection's hello, within helloTimeout and maxHello
// bytes, and hands it to the rendezvous if it carries the run's token
// (compared in constant time). Anything else (garbage, silence, another
// message, a wrong or missing token) is a stranger: it is dropped and
// logged, and the run goes on.
func (c *coordinator) greet(conn net.Conn) {
	cc := newControlConn(conn)
	wait := min(helloTimeout, c.opts.Timeout)
	conn.SetReadDeadline(time.Now().Add(wait))
	read := make(chan struct{})
	go func() { // the run's end cuts a pending hello short
		select {
		case <-c.stopAccept:
			conn.SetReadDeadline(time.Now())
		case <-read:
		}
	}()
	var h control
	err := cc.recvMax(&h, maxHello)
	close(read)
	conn.SetReadDeadline(time.Time{})
	select {
	case <-c.stopAccept:
		conn.Close()
		return
	default:
	}
	why := ""
	switch {
	case errors.Is(err, io.EOF):
		why = "it closed without a hello"
	case err != nil:
		why = fmt.Sprintf("no valid hello within %v (%v)", wait, err)
	case h.Type != "hello":
		why = "its first message is not a hello"
	case subtle.ConstantTimeCompare([]byte(h.Token), []byte(c.token)) != 1:
		why = "its hello lacks this run's token"
		// A worker with the wrong token learns why it is refused (never
		// what the token is).
		cc.send(control{Type: "assign", Error: "wrong token: this run's workers need the token the coordinator was given (" + EnvWorkerToken + " or a token file)"})
	}
	if why != "" {
		conn.Close()
		holders := "only the workers this run starts hold its token"
		if c.opts.ExternalWorkers {
			holders = "only workers given the run's token may join"
		}
		c.logf("exec: tcp rendezvous: dropped a connection from %s: %s; %s (%s)", conn.RemoteAddr(), why, holders, EnvWorkerToken)
		return
	}
	select {
	case c.hellos <- greeting{cc, h}:
	case <-c.stopAccept:
		conn.Close()
	}
}

// stopGreeting ends the greetings: pending hellos are cut short, unlogged.
func (c *coordinator) stopGreeting() {
	c.stopOnce.Do(func() { close(c.stopAccept) })
}

// logf logs one line with Options.Log, or on stderr without it.
func (c *coordinator) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.opts.Log != nil {
		c.opts.Log(msg)
		return
	}
	fmt.Fprintln(os.Stderr, msg)
}

// reader turns a worker's control messages into events.
func (c *coordinator) reader(dev string, cc *controlConn) {
	for {
		var m control
		if err := cc.recv(&m); err != nil {
			c.events <- event{dev: dev, err: err}
			return
		}
		c.events <- event{dev: dev, msg: &m}
	}
}

// died is the error of a worker process that exited when it should not
// have: its stage, exit status, samples and the tail of its stderr.
func (c *coordinator) died(w *workerState, when string) error {
	what := "exited"
	if c.opts.ExternalWorkers {
		what = "closed its connection" // its process is someone else's
	}
	msg := fmt.Sprintf("exec: worker for device %s (stage %d of pipeline %d) %s %s", w.stage.Device, w.stage.Index, w.stage.Pipeline, what, when)
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

// waiting lists the devices whose workers do not satisfy done yet.
func (c *coordinator) waiting(done func(*workerState) bool) []string {
	var out []string
	for _, d := range c.order {
		if !done(c.workers[d]) {
			out = append(out, d)
		}
	}
	return out
}

// rendezvous waits, within opts.Timeout, until every worker has said
// hello with the plan's hash, got its assignment (the address of its next
// stage's inlet), opened its model and links, and said it is ready.
func (c *coordinator) rendezvous(ctx context.Context) error {
	phase := "hello"
	for {
		var missing []string
		if phase == "hello" {
			missing = c.waiting(func(w *workerState) bool { return w.ctl != nil })
			if len(missing) == 0 {
				if err := c.assign(); err != nil {
					return err
				}
				phase = "ready"
				continue
			}
		} else if missing = c.waiting(func(w *workerState) bool { return w.hello.Type == "ready" }); len(missing) == 0 {
			return nil
		}
		select {
		case g := <-c.hellos:
			if err := c.join(g); err != nil {
				return err
			}
		case ev := <-c.events:
			if err := c.rendezvousEvent(ev); err != nil {
				return err
			}
		case <-c.timer.C:
			return fmt.Errorf("exec: tcp rendezvous: timed out after %v waiting for the workers of devices %v (%s); %s", c.opts.Timeout, missing, phase, c.startHint())
		case <-ctx.Done():
			return fmt.Errorf("exec: tcp rendezvous: %w", context.Cause(ctx))
		}
	}
}

// join takes the hello of a worker that holds the run's token, and
// refuses unknown or duplicate devices and other plans: these are this
// run's own workers, so a refusal fails the run.
func (c *coordinator) join(g greeting) error {
	cc, h, conn := g.cc, g.h, g.cc.conn
	w, ok := c.workers[h.Device]
	refused := true
	defer func() {
		if refused {
			conn.Close()
		}
	}()
	switch {
	case !ok:
		cc.send(control{Type: "assign", Error: "unexpected device"})
		return fmt.Errorf("exec: tcp rendezvous: unexpected stage: a worker for device %q joined, but plan %s has no stage on it (stages run on %v)", h.Device, c.p.Name, c.order)
	case w.ctl != nil:
		cc.send(control{Type: "assign", Error: "duplicate device"})
		return fmt.Errorf("exec: tcp rendezvous: two workers joined for device %s", h.Device)
	case h.PlanHash != c.hash:
		cc.send(control{Type: "assign", Error: "plan mismatch"})
		return fmt.Errorf("exec: tcp rendezvous: plan mismatch: the worker for device %s runs a plan with hash %s, the coordinator %s (start workers with the same plan file)", h.Device, h.PlanHash, c.hash)
	}
	if d := c.p.Devices[w.stage.DevIdx]; !d.RunsOn(h.Host) && !d.RunsOn(addrHost(conn.RemoteAddr())) {
		cc.send(control{Type: "assign", Error: "wrong host: device " + d.Name + " runs on host " + d.Host})
		return fmt.Errorf("exec: tcp rendezvous: the worker for device %s joined from host %q (%s), but the plan puts %s on host %s (devices[].host): start it there, or change the plan", h.Device, h.Host, addrHost(conn.RemoteAddr()), d.Name, d.Host)
	}
	refused = false
	w.ctl, w.hello = cc, h
	go c.reader(h.Device, cc)
	return nil
}

// runsHere reports whether device d may run on this machine, named here:
// by its name, or by one of its addresses where the plan gives one.
func runsHere(d plan.Device, here string) bool {
	if d.RunsOn(here) {
		return true
	}
	if !plan.IsAddress(d.Host) {
		return false
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && d.RunsOn(n.IP.String()) {
			return true
		}
	}
	return false
}

// assign tells every worker where its next stage listens, where outputs
// go and what an interruption means; for a transport with a communicator
// (nccl), also the communicator's id and the worker's rank in it: its
// place in c.order, the plan's stages pipeline by pipeline.
func (c *coordinator) assign() error {
	var commID []byte
	if spec, err := transportFor(c.p.Transport); err != nil {
		return fmt.Errorf("exec: tcp rendezvous: %w", err)
	} else if spec.commID != nil {
		if commID, err = spec.commID(); err != nil {
			return err
		}
	}
	rank := map[string]int{}
	for i, dev := range c.order {
		rank[dev] = i
	}
	for _, dev := range c.order {
		w := c.workers[dev]
		a := control{Type: "assign", OutDir: c.opts.OutDir, OnInterrupt: c.opts.OnInterrupt}
		stages := c.p.Pipelines[w.stage.Pipeline].Stages
		if st := w.stage; st.Index+1 < len(stages) {
			a.Downstream = c.workers[stages[st.Index+1].Device].hello.DataAddr
		}
		if commID != nil {
			a.CommID, a.CommSize, a.Rank, a.PrevRank, a.NextRank = commID, len(c.order), rank[dev], -1, -1
			if st := w.stage; st.Index > 0 {
				a.PrevRank = rank[stages[st.Index-1].Device]
			}
			if st := w.stage; st.Index+1 < len(stages) {
				a.NextRank = rank[stages[st.Index+1].Device]
			}
		}
		if err := w.ctl.send(a); err != nil {
			return fmt.Errorf("exec: tcp rendezvous: assign device %s: %w", dev, err)
		}
	}
	return nil
}

// rendezvousEvent handles an event before the start: a ready worker, or
// one that failed or exited.
func (c *coordinator) rendezvousEvent(ev event) error {
	w := c.workers[ev.dev]
	switch {
	case ev.exit:
		w.exited, w.exitErr = true, ev.err
		return c.died(w, "during the rendezvous")
	case ev.err != nil && c.opts.ExternalWorkers:
		// No process to wait for: a lost connection is the worker's end.
		w.exited = true
		return c.died(w, "during the rendezvous")
	case ev.msg != nil && ev.msg.Type == "ready":
		w.hello.Type = "ready"
	case ev.msg != nil && ev.msg.Type == "result" && ev.msg.Error != "":
		return fmt.Errorf("exec: worker for device %s: %s", ev.dev, ev.msg.Error)
	}
	return nil
}

// startHint says, in a rendezvous time-out, who was to start the
// missing workers.
func (c *coordinator) startHint() string {
	if !c.opts.ExternalWorkers {
		return "check the worker command"
	}
	return fmt.Sprintf("external workers: start `vdexec worker` for each of them (ranks 1 to %d, in plan order %v) with --coordinator %s and this run's token", len(c.order), c.order, c.ln.Addr())
}

// emptyResult is the result of a run before any sample ran, with its
// timeline's metadata.
func (c *coordinator) emptyResult(interrupted bool) *Result {
	return &Result{
		Timeline:    &timeline.Timeline{Meta: newMeta(c.p, c.opts.Versions), Spans: []timeline.Span{}, Samples: []timeline.Sample{}},
		Total:       c.p.Workload.Samples,
		Interrupted: interrupted,
	}
}

// start broadcasts the run's start instant on the host's wall clock.
func (c *coordinator) start() {
	c.res = c.emptyResult(false)
	c.startAt = time.Now()
	for _, dev := range c.order {
		c.workers[dev].ctl.send(control{Type: "start", StartUnixNano: c.startAt.UnixNano()})
	}
	c.timer.Stop()
}

// stopAll tells every worker to stop. Abandon stops every worker at its
// next step boundary: one that has not exited within opts.Timeout of the
// first abandon is stuck and is killed. Finish lets the admitted samples
// run as long as they take.
func (c *coordinator) stopAll(mode string) {
	for _, w := range c.workers {
		w.ctl.send(control{Type: "stop", Mode: mode})
	}
	if mode == InterruptAbandon && !c.armed {
		c.armed = true
		c.timer.Reset(c.opts.Timeout)
	}
}

// collect follows the run until every worker has exited and its control
// connection is closed: progress, failures, interruption, stuck workers.
func (c *coordinator) collect(ctx context.Context) {
	ctxDone := ctx.Done()
	for len(c.finished) < len(c.order) {
		select {
		case ev := <-c.events:
			c.runEvent(ev)
		case <-ctxDone:
			ctxDone = nil
			c.res.Interrupted = true
			c.stopAll(c.opts.OnInterrupt)
		case <-c.timer.C:
			c.killStuck()
		}
	}
	c.procs.Wait()
}

// runEvent handles an event of a started run.
func (c *coordinator) runEvent(ev event) {
	w := c.workers[ev.dev]
	switch {
	case ev.exit:
		w.exited, w.exitErr = true, ev.err
	case ev.err != nil:
		c.readerDone[ev.dev] = true
		if c.opts.ExternalWorkers {
			w.exited = true // no process to wait for
		}
	case ev.msg.Type == "busy":
		w.busy = ev.msg.Samples // empty once the worker is idle again
	case ev.msg.Type == "done":
		w.written = append(w.written, ev.msg.Records...)
		w.writtenDirs = append(w.writtenDirs, ev.msg.Outputs...)
		c.done++
		if c.opts.Progress != nil {
			el := time.Since(c.startAt)
			c.opts.Progress(ProgressEvent{Done: c.done, Total: c.res.Total, Elapsed: el, Throughput: float64(c.done) / el.Seconds()})
		}
	case ev.msg.Type == "result":
		w.result = ev.msg
		if m := ev.msg.Error; m != "" {
			e := fmt.Errorf("exec: worker for device %s: %s", ev.dev, m)
			if ev.msg.Link {
				// A hand-off that broke after every worker was told to
				// abandon broke because its peer abandoned: the cause is
				// already known (an interruption, or the failure that
				// made the coordinator abandon).
				if !c.armed {
					c.links = append(c.links, e)
				}
			} else {
				c.failures = append(c.failures, e)
			}
			c.stopAll(InterruptAbandon)
		}
	}
	if w.exited && c.readerDone[ev.dev] && !c.finished[ev.dev] {
		c.finished[ev.dev] = true
		if w.result == nil && !w.killed {
			c.deaths = append(c.deaths, c.died(w, "before reporting"))
			c.stopAll(InterruptAbandon)
		}
	}
}

// killStuck kills the workers that did not stop within opts.Timeout of
// being told to abandon, naming each and what it held.
func (c *coordinator) killStuck() {
	var stuck []string
	for _, dev := range c.order {
		if w := c.workers[dev]; !c.finished[dev] && !w.exited {
			w.killed = true
			held := "idle"
			if len(w.busy) > 0 {
				held = fmt.Sprintf("samples %v", w.busy)
			}
			stuck = append(stuck, fmt.Sprintf("%s (stage %d of pipeline %d, %s)", dev, w.stage.Index, w.stage.Pipeline, held))
		}
	}
	c.kill()
	c.kills = append(c.kills, fmt.Errorf("exec: tcp: workers did not stop within %v of being told to abandon; killed: %s", c.opts.Timeout, strings.Join(stuck, ", ")))
}

// result merges the workers' reports into the run's result, and returns
// the first error: a failure, then a death, then a kill, then a broken
// link (usually the consequence of one of the others). A worker that died
// or was killed before its report leaves the samples it reported done
// (their records and folders, so that the result agrees with what is on
// disk), not its spans.
func (c *coordinator) result() (*Result, error) {
	res, tl := c.res, c.res.Timeline
	for _, dev := range c.order {
		w := c.workers[dev]
		r := w.result
		if r == nil {
			r = &control{Records: w.written, Outputs: w.writtenDirs}
		}
		for _, s := range r.Spans {
			tl.AddSpan(s)
			if c.opts.Recorder != nil {
				c.opts.Recorder.AddSpan(s)
			}
		}
		for _, s := range r.Records {
			tl.AddSample(s)
			if c.opts.Recorder != nil {
				c.opts.Recorder.AddSample(s)
			}
		}
		res.Outputs = append(res.Outputs, r.Outputs...)
	}
	sortTimeline(tl)
	res.Done = len(tl.Samples)
	// As in-process: a cancellation after every sample finished
	// interrupted nothing.
	res.Interrupted = res.Interrupted && res.Done < res.Total
	for _, list := range [][]error{c.failures, c.deaths, c.kills, c.links} {
		if len(list) > 0 {
			return res, list[0]
		}
	}
	return res, nil
}
