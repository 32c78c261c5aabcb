package exec

import (
	"io"
	"sync"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// UNetTimer sums, per device, the time spent inside UNet calls, so that a
// run can report the executor's own overhead per step (StepOverhead). It
// is safe for concurrent use.
type UNetTimer struct {
	mu    sync.Mutex
	total map[string]time.Duration
	calls map[string]int
}

// NewUNetTimer returns a timer with nothing recorded.
func NewUNetTimer() *UNetTimer {
	return &UNetTimer{total: map[string]time.Duration{}, calls: map[string]int{}}
}

// Factory wraps f: the models it opens add the time of their UNet calls to
// t, under their device's name. Only models opened in this process are
// timed (in the process-per-device layout the coordinator opens none).
func (t *UNetTimer) Factory(f Factory) Factory {
	return func(d plan.Device, st plan.Stage) (models.Model, error) {
		m, err := f(d, st)
		if err != nil || m == nil {
			return m, err
		}
		return &timedModel{Model: m, add: func(x time.Duration) { t.add(d.Name, x) }}, nil
	}
}

func (t *UNetTimer) add(dev string, d time.Duration) {
	t.mu.Lock()
	t.total[dev] += d
	t.calls[dev]++
	t.mu.Unlock()
}

// Total returns the time spent inside the UNet calls of device dev and
// their number.
func (t *UNetTimer) Total(dev string) (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total[dev], t.calls[dev]
}

// timedModel adds the time of each UNet call of the model it wraps to add.
type timedModel struct {
	models.Model
	add func(time.Duration)
}

func (m *timedModel) UNet(in models.UNetInput, out []float32) error {
	t := time.Now()
	err := m.Model.UNet(in, out)
	m.add(time.Since(t))
	return err
}

// Close closes the wrapped model.
func (m *timedModel) Close() error {
	if c, ok := m.Model.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// DeviceOverhead is the executor's own time per step on one device: step
// spans minus the UNet calls inside them.
type DeviceOverhead struct {
	Device string `json:"device"`
	// StepNS is the total time of the device's step spans.
	StepNS int64 `json:"step_span_ns"`
	// UNetNS is the total time inside UNet calls.
	UNetNS int64 `json:"unet_call_ns"`
	// Calls is the number of UNet calls (sampler steps × micro-batches).
	Calls int `json:"unet_calls"`
	// PerStepNS is (StepNS − UNetNS) / Calls.
	PerStepNS float64 `json:"overhead_per_step_ns"`
	// Fraction is (StepNS − UNetNS) / StepNS.
	Fraction float64 `json:"overhead_fraction"`
}

// StepOverhead measures, per device of tl (in its order), the time of the
// step spans outside the UNet calls that t timed (sampler math, copies,
// bookkeeping); devices without timed calls are left out, so the result is
// nil when t is nil or timed nothing (the UNet calls ran in other
// processes).
func StepOverhead(tl *timeline.Timeline, t *UNetTimer) []DeviceOverhead {
	if t == nil {
		return nil
	}
	step := map[string]int64{}
	for _, s := range tl.Spans {
		if s.Kind == timeline.KindStep {
			step[s.Device] += s.End - s.Start
		}
	}
	var out []DeviceOverhead
	for _, dev := range tl.Meta.Devices {
		u, n := t.Total(dev)
		st := step[dev]
		if n == 0 || st == 0 {
			continue
		}
		o := DeviceOverhead{Device: dev, StepNS: st, UNetNS: int64(u), Calls: n}
		o.PerStepNS = float64(st-int64(u)) / float64(n)
		o.Fraction = float64(st-int64(u)) / float64(st)
		out = append(out, o)
	}
	return out
}

// TotalOverhead sums per-device overheads into one, named "all"; false
// when there is nothing to sum.
func TotalOverhead(list []DeviceOverhead) (DeviceOverhead, bool) {
	var t DeviceOverhead
	for _, o := range list {
		t.StepNS += o.StepNS
		t.UNetNS += o.UNetNS
		t.Calls += o.Calls
	}
	if t.Calls == 0 || t.StepNS == 0 {
		return t, false
	}
	t.Device = "all"
	t.PerStepNS = float64(t.StepNS-t.UNetNS) / float64(t.Calls)
	t.Fraction = float64(t.StepNS-t.UNetNS) / float64(t.StepNS)
	return t, true
}
