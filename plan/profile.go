package plan

// Profile is a cost profile: what each piece of work costs on a device kind
// for one model shape, and what each link kind costs. Every profile records
// where its numbers came from (Provenance); a prediction made from an
// estimated or published profile says so.
type Profile struct {
	Provenance Provenance             `yaml:"provenance"`
	Model      ProfileModel           `yaml:"model"`
	Devices    map[string]DeviceCosts `yaml:"devices"` // keyed by Device.Kind
	Links      map[string]LinkCosts   `yaml:"links"`   // keyed by link kind
	Transports map[string]LinkCosts   `yaml:"transports"`

	File string `yaml:"-"`
}

// Provenance says where a profile's numbers came from. Source, Date and one
// of Machine (measured) or Reference (publication/estimate) must be set.
type Provenance struct {
	Source    string `yaml:"source"` // measured | publication | estimate
	Date      string `yaml:"date"`   // YYYY-MM-DD
	Machine   string `yaml:"machine"`
	Runtime   string `yaml:"runtime"`   // e.g. "onnxruntime 1.24.3 cpu, go1.26.8"
	Reference string `yaml:"reference"` // publication or method for non-measured numbers
	Notes     string `yaml:"notes"`
}

// ProfileModel is the model shape the profile was measured for.
type ProfileModel struct {
	Family string `yaml:"family"`
	Frames int    `yaml:"frames"`
	Latent Latent `yaml:"latent"`
	Dtype  string `yaml:"dtype"`
	CFG    bool   `yaml:"cfg"`
}

// DeviceCosts are the costs of one device kind. Times are milliseconds.
type DeviceCosts struct {
	// UNetMS is the time of one sampler step (one UNet call, both CFG halves
	// when the plan uses CFG) keyed by micro-batch size.
	UNetMS map[int]float64 `yaml:"unet_ms"`
	// FirstCallMS is the time of a device's first UNet call, which it takes
	// instead of UNetMS (graph compilation, allocator warm-up). Keyed by
	// micro-batch size like UNetMS; a missing size uses the batch-1 value.
	FirstCallMS map[int]float64 `yaml:"first_call_ms"`
	EncodeMS    float64         `yaml:"encode_ms"` // per sample
	DecodeMS    float64         `yaml:"decode_ms"` // per sample
	// HostMSPerStep is per-step host work outside the UNet call (sampler
	// math, copies), per micro-batch.
	HostMSPerStep float64 `yaml:"host_ms_per_step"`
	// Jitter is the relative standard deviation of a step's time (0: none).
	Jitter float64     `yaml:"jitter"`
	Memory MemoryCosts `yaml:"memory_gb"`
}

// MemoryCosts are the device memory needs in GB.
type MemoryCosts struct {
	UNet                 float64 `yaml:"unet"`
	Encoder              float64 `yaml:"encoder"`
	Decoder              float64 `yaml:"decoder"`
	ActivationsPerSample float64 `yaml:"activations_per_sample"`
	Runtime              float64 `yaml:"runtime"` // per-process runtime/context overhead
}

// LinkCosts are the costs of one link kind: a transfer of b bytes takes
// LatencyUS + b/BandwidthGBps, and the first transfer over a link also pays
// SetupMS (lazy connection set-up, as NCCL does on its first send).
type LinkCosts struct {
	LatencyUS     float64 `yaml:"latency_us"`
	BandwidthGBps float64 `yaml:"bandwidth_gbps"` // 1 GB = 1e9 bytes
	SetupMS       float64 `yaml:"setup_ms"`
}
