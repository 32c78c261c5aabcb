package sim

import (
	"fmt"
	"strings"

	"github.com/vdpp/vdpp/plan"
)

// DeviceMemory is one device's memory budget for a plan: what it holds and
// how much memory that needs, in GiB (2³⁰ bytes, the unit of memory_gb),
// against what the device has.
type DeviceMemory struct {
	Device        string  `json:"device"`
	Kind          string  `json:"kind"`
	Stages        int     `json:"stages"`         // stages placed on the device
	UNetGB        float64 `json:"unet_gb"`        // UNet weights (0 when it holds no stage)
	EncoderGB     float64 `json:"encoder_gb"`     // image encoder, when it encodes
	DecoderGB     float64 `json:"decoder_gb"`     // VAE decoder, when it decodes
	RuntimeGB     float64 `json:"runtime_gb"`     // runtime/context overhead
	ActivationsGB float64 `json:"activations_gb"` // activations for one micro-batch
	NeedGB        float64 `json:"need_gb"`        // the sum of the above
	HaveGB        float64 `json:"have_gb"`        // Device.MemoryGB; 0 = unknown, not checked
	Fits          bool    `json:"fits"`           // NeedGB <= HaveGB, or HaveGB unknown
}

// OverGB is by how much the device's needs exceed its memory (0 when it fits).
func (m DeviceMemory) OverGB() float64 {
	if m.Fits {
		return 0
	}
	return m.NeedGB - m.HaveGB
}

// MemoryError reports a plan that does not fit in device memory. It lists
// every device that does not fit; Run returns it instead of simulating.
type MemoryError struct {
	Plan     string
	Overflow []DeviceMemory
}

// Error lists each device that does not fit and by how many GiB.
func (e *MemoryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sim: plan %q does not fit in device memory:", e.Plan)
	for i, m := range e.Overflow {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s (%s) needs %.2f GiB of %.2f GiB, %.2f GiB over", m.Device, m.Kind, m.NeedGB, m.HaveGB, m.OverGB())
	}
	return b.String()
}

// Memory returns the memory table of a resolved plan (plan.Ready), one row per device in
// plan order: UNet weights plus runtime plus activations_per_sample ×
// micro-batch on every device that holds a stage, plus the encoder where a
// stage encodes and the decoder where one decodes. It does not fail when a
// device does not fit (see DeviceMemory.Fits); it fails when the plan has
// no profile, a stage names no device, or a used device kind has no costs.
func Memory(p *plan.Plan) ([]DeviceMemory, error) {
	if err := p.Ready(); err != nil {
		return nil, fmt.Errorf("sim: memory: %w", err)
	}
	return memoryTable(p)
}

// memoryTable is Memory of a plan already checked by plan.Ready.
func memoryTable(p *plan.Plan) ([]DeviceMemory, error) {
	if p.Profile == nil {
		return nil, fmt.Errorf("sim: plan %q: no cost profile (set costs)", p.Name)
	}
	mb := p.Layout.MicroBatch
	rows := make([]DeviceMemory, len(p.Devices))
	enc := make([]bool, len(p.Devices))
	dec := make([]bool, len(p.Devices))
	for i, d := range p.Devices {
		rows[i] = DeviceMemory{Device: d.Name, Kind: d.Kind, HaveGB: d.MemoryGB}
	}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			rows[st.DevIdx].Stages++
			enc[st.DevIdx] = enc[st.DevIdx] || st.Encode
			dec[st.DevIdx] = dec[st.DevIdx] || st.Decode
		}
	}
	for i := range rows {
		r := &rows[i]
		if r.Stages > 0 {
			c, ok := p.Profile.Devices[r.Kind]
			if !ok {
				return nil, fmt.Errorf("sim: plan %q: device %s: no costs for device kind %q in the profile", p.Name, r.Device, r.Kind)
			}
			m := c.Memory
			r.UNetGB = m.UNet
			r.RuntimeGB = m.Runtime
			r.ActivationsGB = m.ActivationsPerSample * float64(mb)
			if enc[i] {
				r.EncoderGB = m.Encoder
			}
			if dec[i] {
				r.DecoderGB = m.Decoder
			}
			r.NeedGB = m.NeedGB(mb, enc[i], dec[i])
		}
		r.Fits = r.HaveGB <= 0 || r.NeedGB <= r.HaveGB
	}
	return rows, nil
}

// checkMemory returns the table, and a *MemoryError when a device does not fit.
// The plan has been checked by plan.Ready (Run does it first).
func checkMemory(p *plan.Plan) ([]DeviceMemory, error) {
	rows, err := memoryTable(p)
	if err != nil {
		return nil, err
	}
	var over []DeviceMemory
	for _, r := range rows {
		if !r.Fits {
			over = append(over, r)
		}
	}
	if len(over) > 0 {
		return rows, &MemoryError{Plan: p.Name, Overflow: over}
	}
	return rows, nil
}
