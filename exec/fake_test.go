package exec

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// fakeModel is a deterministic models.Model whose calls sleep known
// durations (so synctest can check the executor's timing) and compute a
// cheap function of their inputs, element by element, so that results do
// not depend on how samples are batched or on which stage runs a step.
type fakeModel struct {
	unet, firstCall, encode, decode time.Duration // per call; encode/decode per sample
	// the extra time of the first encode and decode call (their warm-up)
	encodeWarm, decodeWarm time.Duration
	// speed divides every sleep, as a device's speed does in the simulator
	// (0: 1), rounded to whole nanoseconds as plan.WorkNS rounds
	speed             float64
	failAt            int // fail the failAt-th UNet call (1-based); 0: never
	calls, encs, decs int // one stage, one goroutine: no lock needed
}

// sleep sleeps d at the model's speed.
func (m *fakeModel) sleep(d time.Duration) {
	if m.speed > 0 {
		d = time.Duration(math.Round(float64(d) / m.speed))
	}
	if d > 0 {
		time.Sleep(d)
	}
}

var errFake = errors.New("fake model: injected failure")

func (m *fakeModel) UNet(in models.UNetInput, out []float32) error {
	m.calls++
	n := m.calls
	if m.failAt > 0 && n == m.failAt {
		return errFake
	}
	d := m.unet
	if n == 1 && m.firstCall > 0 {
		d = m.firstCall
	}
	m.sleep(d)
	s := in.Shape
	frame := s.Channels * s.Height * s.Width
	for b := 0; b < s.Batch; b++ {
		ts := in.Timestep[b]
		e := in.EncoderHiddenStates[b*models.Embedding]
		for f := 0; f < s.Frames; f++ {
			src := in.Sample[(b*s.Frames+f)*2*frame:]
			dst := out[(b*s.Frames+f)*frame:]
			for k := 0; k < frame; k++ {
				dst[k] = float32(0.5*math.Sin(float64(src[k]))) + 0.1*src[frame+k] + 0.01*ts + 0.001*e
			}
		}
	}
	return nil
}

func (m *fakeModel) Encode(s models.Shape, images, emb, lat []float32) error {
	m.encs++
	d := time.Duration(s.Batch) * m.encode
	if m.encs == 1 {
		d += m.encodeWarm
	}
	m.sleep(d)
	px := 3 * 64 * s.Height * s.Width
	frame := s.Channels * s.Height * s.Width
	for b := 0; b < s.Batch; b++ {
		img := images[b*px : (b+1)*px]
		for k := 0; k < models.Embedding; k++ {
			emb[b*models.Embedding+k] = img[k%px] * 0.5
		}
		for k := 0; k < frame; k++ {
			lat[b*frame+k] = img[(k*7)%px]
		}
	}
	return nil
}

func (m *fakeModel) Decode(s models.Shape, latents, frames []float32) error {
	m.decs++
	d := time.Duration(s.Batch) * m.decode
	if m.decs == 1 {
		d += m.decodeWarm
	}
	m.sleep(d)
	h, w := 8*s.Height, 8*s.Width
	for b := 0; b < s.Batch; b++ {
		for f := 0; f < s.Frames; f++ {
			lat := latents[(b*s.Frames+f)*s.Channels*s.Height*s.Width:]
			out := frames[(b*s.Frames+f)*3*h*w:]
			for c := 0; c < 3; c++ {
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						v := lat[(c*s.Height+y/8)*s.Width+x/8]
						out[(c*h+y)*w+x] = float32(math.Tanh(float64(v)))
					}
				}
			}
		}
	}
	return nil
}

// fakeImages is a deterministic conditioning image per sample.
func fakeImages(p *plan.Plan) func(int) ([]float32, error) {
	n := 3 * 64 * p.Model.Latent.Height * p.Model.Latent.Width
	return func(i int) ([]float32, error) {
		img := make([]float32, n)
		for k := range img {
			img[k] = float32(math.Sin(float64(k*(i%3+1)) * 0.37))
		}
		return img, nil
	}
}

// testPlan builds a resolved plan in code: devices cpu0.., one pipeline
// per entry of splits, each a list of inclusive [first, last] step ranges.
func testPlan(name string, steps, samples, mb int, splits ...[][2]int) *plan.Plan {
	p := &plan.Plan{
		Name: name,
		Model: plan.Model{
			Family: "tiny", Frames: 2, Latent: plan.Latent{Channels: 4, Height: 2, Width: 2}, Dtype: "fp32",
			CFG: &plan.CFG{Min: 1, Max: 2.5},
		},
		Sampler:  plan.Sampler{Steps: steps},
		Layout:   plan.Layout{MicroBatch: mb, Replicas: len(splits)},
		Workload: plan.Workload{Samples: samples, Seed: 42},
	}
	var pipes []plan.Pipeline
	for pi, sp := range splits {
		pl := plan.Pipeline{Index: pi}
		for si, r := range sp {
			d := plan.Device{Name: fmt.Sprintf("cpu%d", len(p.Devices)), Kind: "cpu"}
			pl.Stages = append(pl.Stages, plan.Stage{
				Pipeline: pi, Index: si, Device: d.Name, DevIdx: len(p.Devices),
				First: plan.StepIndex(r[0]), Last: plan.StepIndex(r[1]),
			})
			p.Devices = append(p.Devices, d)
		}
		pipes = append(pipes, pl)
	}
	p.EnsureDefaults()
	if err := p.UsePipelines(pipes); err != nil {
		panic(fmt.Sprintf("testPlan %s: %v", name, err))
	}
	return p
}

// fakeFactory opens a fresh fakeModel per stage with the given costs.
func fakeFactory(proto fakeModel) Factory {
	return func(d plan.Device, st plan.Stage) (models.Model, error) {
		m := &fakeModel{unet: proto.unet, firstCall: proto.firstCall, encode: proto.encode, decode: proto.decode,
			encodeWarm: proto.encodeWarm, decodeWarm: proto.decodeWarm, speed: d.Speed}
		return m, nil
	}
}
