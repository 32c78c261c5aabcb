package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/study"
)

// Progress modes (--progress).
const (
	progressAuto   = "auto"   // on stderr when it is a terminal and the work lasts over progressDelay
	progressAlways = "always" // every progressEvery, and a last line when the work ends
	progressNever  = "never"
)

// progressDelay is how long work runs before auto progress shows, and
// progressEvery how often the line is redrawn.
const (
	progressDelay = 2 * time.Second
	progressEvery = time.Second
)

func progressFlag() cli.Flag {
	return &cli.StringFlag{Name: "progress", Value: progressAuto, EnvVars: cliutil.Env(envPrefix, "progress"),
		Usage: "show progress on stderr: auto (when stderr is a terminal and the work lasts over 2 s), always, never"}
}

// notifySignals and stopSignals deliver SIGINT and SIGTERM to c; tests
// replace them to send a signal without one.
var (
	notifySignals = func(c chan<- os.Signal) { signal.Notify(c, os.Interrupt, syscall.SIGTERM) }
	stopSignals   = func(c chan<- os.Signal) { signal.Stop(c) }
)

// errStopped is what the watch returns once a signal came: the study
// stops and returns an error wrapping it.
var errStopped = errors.New("stopped by a signal")

// watcher drives a long study from the command line: it stops it on
// SIGINT or SIGTERM and shows its progress on stderr. The engine reads no
// clock; the watcher does, when the engine calls its watch (every
// sim.CheckEvery events) and on its own ticker.
type watcher struct {
	stderr io.Writer
	mode   string
	tty    bool
	start  time.Time

	ctx    context.Context
	cancel context.CancelFunc
	sigs   chan os.Signal
	quit   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	phase  string // what is simulated now: "the plan", "the data-parallel baseline", "layouts", "candidates"
	last   study.Progress
	sig    os.Signal // the signal that stopped the work, or nil
	shown  bool      // a progress line is on the terminal
	prints int       // progress lines printed
}

// progressMode is --progress, checked.
func progressMode(c *cli.Context) (string, error) {
	switch mode := c.String("progress"); mode {
	case progressAuto, progressAlways, progressNever:
		return mode, nil
	default:
		return "", cliutil.Usage(fmt.Errorf("%s %q: want auto, always or never", cliutil.Source(c, "progress"), mode))
	}
}

// newWatcher starts watching for signals and, per --progress, drawing
// progress. Call close when the work is over.
func newWatcher(c *cli.Context) (*watcher, error) {
	mode, err := progressMode(c)
	if err != nil {
		return nil, err
	}
	w := &watcher{stderr: c.App.ErrWriter, mode: mode, tty: cliutil.IsTerminal(c.App.ErrWriter), start: time.Now(),
		sigs: make(chan os.Signal, 2), quit: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	notifySignals(w.sigs)
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// loop waits for a signal (then cancels the work, and lets a second one
// kill the process as it would without vdsim) and redraws the progress.
func (w *watcher) loop() {
	defer w.wg.Done()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case s := <-w.sigs:
			stopSignals(w.sigs)
			w.mu.Lock()
			w.sig = s
			w.mu.Unlock()
			w.cancel()
			return
		case <-tick.C:
			w.draw(false)
		case <-w.quit:
			return
		}
	}
}

// setPhase names what is simulated next, of total samples.
func (w *watcher) setPhase(phase string, total int) {
	w.mu.Lock()
	w.phase, w.last = phase, study.Progress{Run: 1, Runs: 1, Total: total}
	w.mu.Unlock()
}

// watch is the study.Watch: it records the progress and stops the work
// once a signal came.
func (w *watcher) watch(p study.Progress) error {
	w.mu.Lock()
	w.last = p
	w.mu.Unlock()
	if w.ctx.Err() != nil {
		return errStopped
	}
	return nil
}

// line is the progress in words: "simulating the plan: 1234567 of 3000000
// samples (612345 samples/s)" or "layouts: 3 of 12, 40 of 3000 samples".
func (w *watcher) line() string {
	p := w.last
	el := time.Since(w.start)
	s := fmt.Sprintf("vdsim: simulating %s", w.phase)
	if p.Runs > 1 {
		s += fmt.Sprintf(" %d of %d,", p.Run, p.Runs)
	} else {
		s += ":"
	}
	s += fmt.Sprintf(" %d of %d samples", p.Done, p.Total)
	if p.Runs <= 1 && el > 0 {
		s += fmt.Sprintf(" (%.0f samples/s)", float64(p.Done)/el.Seconds())
	}
	return s + fmt.Sprintf(", %.1f s", el.Seconds())
}

// draw shows the progress line when the mode says so; final is the line
// at the end of the work (always mode only).
func (w *watcher) draw(final bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.phase == "":
		return
	case w.mode == progressAlways:
		fmt.Fprintln(w.stderr, w.line())
		w.prints++
	case final:
		return
	case w.mode == progressAuto && w.tty && time.Since(w.start) >= progressDelay:
		fmt.Fprintf(w.stderr, "\r%s\x1b[K", w.line())
		w.shown = true
		w.prints++
	}
}

// close stops watching: it clears the progress line and stops the
// signal handler. When a signal stopped the work (err wraps
// errStopped), it returns the error that says what was done, with the
// exit status of the signal; else err. outputs says what the command
// wrote ("nothing was printed or written").
func (w *watcher) close(err error, outputs string) error {
	close(w.quit)
	w.wg.Wait()
	stopSignals(w.sigs)
	w.cancel()
	if w.mode == progressAlways && err == nil {
		w.mu.Lock()
		w.last.Run, w.last.Done = w.last.Runs, w.last.Total // all done
		w.mu.Unlock()
		w.draw(true)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shown {
		fmt.Fprint(w.stderr, "\r\x1b[K")
	}
	if !errors.Is(err, errStopped) {
		return err
	}
	name, code := "SIGINT", cliutil.ExitInterrupted
	if w.sig == syscall.SIGTERM {
		name, code = "SIGTERM", cliutil.ExitTerminated
	}
	p := w.last
	at := fmt.Sprintf("while simulating %s", w.phase)
	if p.Runs > 1 {
		at += fmt.Sprintf(" %d of %d", p.Run, p.Runs)
	}
	if p.Runs == 0 { // a search still building its candidates
		return exitError{code: code, msg: fmt.Sprintf("stopped by %s while building the candidates of %s, before simulating any (%.1f s); %s",
			name, w.phase, time.Since(w.start).Seconds(), outputs)}
	}
	return exitError{code: code, msg: fmt.Sprintf("stopped by %s %s, after %d of its %d samples (%.1f s); %s",
		name, at, p.Done, p.Total, time.Since(w.start).Seconds(), outputs)}
}

// exitError is an error with its exit status.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }
func (e exitError) ExitCode() int { return e.code }
