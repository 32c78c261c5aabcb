package plan

import "github.com/vdpp/vdpp/models"

// StepIndex is the position of a step in the sampler's schedule, 0-based:
// the same type as models.Step, which the sampler runs, so a stage's range
// and a sample's next step are one concept. It is not a sigma or a
// timestep value: those are models.Sigma and models.Timestep, so the two
// cannot be confused.
type StepIndex = models.Step

// Plan is a whole job: the model, the sampler, the devices, how steps are
// laid out on them, the links between them, and the workload. One plan feeds
// both the simulator and the executor.
type Plan struct {
	Name      string    `yaml:"name"`
	Model     Model     `yaml:"model"`
	Sampler   Sampler   `yaml:"sampler"`
	Devices   Devices   `yaml:"devices"`
	Layout    Layout    `yaml:"layout"`
	Links     Links     `yaml:"links"`
	Transport Transport `yaml:"transport"` // inproc | tcp | nccl (exec only); default inproc
	Workload  Workload  `yaml:"workload"`
	Costs     string    `yaml:"costs"` // path to a cost profile (sim, balanced assignment)

	// Filled by Load/Resolve, not read from YAML.
	File      string     `yaml:"-"` // the file the plan came from ("" for bytes)
	Dir       string     `yaml:"-"` // directory relative paths resolve against
	Profile   *Profile   `yaml:"-"` // the loaded cost profile, if Costs is set
	Pipelines []Pipeline `yaml:"-"` // the resolved layout

	pos       map[string]Pos // source position of every field path, for messages
	defaulted bool           // EnsureDefaults ran
	resolved  bool           // Pipelines come from Resolve or UsePipelines
}

// Model says what one UNet call looks like.
type Model struct {
	Family       string    `yaml:"family"` // svd | tiny
	ONNX         ONNXFiles `yaml:"onnx"`   // exec only
	Frames       int       `yaml:"frames"`
	Latent       Latent    `yaml:"latent"`
	Dtype        string    `yaml:"dtype"` // fp16 | fp32
	CFG          *CFG      `yaml:"cfg"`   // nil: guidance off, one pass per step
	FPS          int       `yaml:"fps"`   // conditioning: frames per second (default 7)
	MotionBucket int       `yaml:"motion_bucket"`
	NoiseAug     float64   `yaml:"noise_aug"`
}

// ONNXFiles are the model's graphs, as written in the plan: paths relative
// to the plan file's directory. Use Plan.Path to get a path to open.
type ONNXFiles struct {
	UNet    string `yaml:"unet"`
	Encoder string `yaml:"encoder"`
	Decoder string `yaml:"decoder"`
}

// Latent is the shape of one frame's latent.
type Latent struct {
	Channels int `yaml:"channels"`
	Height   int `yaml:"height"`
	Width    int `yaml:"width"`
}

// CFG is classifier-free guidance, ramped linearly over frames from Min to Max.
type CFG struct {
	Min float64 `yaml:"min"`
	Max float64 `yaml:"max"`
}

// Sampler is the sigma schedule and the number of steps.
type Sampler struct {
	Kind     string  `yaml:"kind"` // euler-karras
	Steps    int     `yaml:"steps"`
	SigmaMin float64 `yaml:"sigma_min"`
	SigmaMax float64 `yaml:"sigma_max"`
	Rho      float64 `yaml:"rho"`
}

// Devices is the list of devices. In YAML it is either a list of Device or
// a short form {count: 7, kind: a5000, memory_gb: 24}.
type Devices []Device

// Names lists the devices' names, in plan order.
func (ds Devices) Names() []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}

// Device is one accelerator (or one CPU worker).
type Device struct {
	Name     string   `yaml:"name"`
	Kind     string   `yaml:"kind"`      // key into the cost profile (a5000, cpu, ...)
	MemoryGB float64  `yaml:"memory_gb"` // 0: unknown, not checked
	NUMA     int      `yaml:"numa"`      // socket / NUMA node
	Speed    float64  `yaml:"speed"`     // relative speed factor, default 1 (2 = twice as fast)
	Provider Provider `yaml:"provider"`  // cpu | cuda (exec); default cpu for kind cpu, else cuda
	Threads  int      `yaml:"threads"`   // cpu: intra-op threads of this device's session (default 1)
	Index    int      `yaml:"index"`     // CUDA device id of a cuda device, and of a cpu device under transport nccl (default: position among such devices on its host)
	// Host is the machine the device is on: a host name as the worker's
	// os.Hostname gives it, or an IP address; "" (the default) is any
	// host. See CheckHost for the rule and RunsOn for the match.
	Host string `yaml:"host,omitempty"`
}

// Layout says how steps are split over devices.
type Layout struct {
	Replicas   int            `yaml:"replicas"`   // independent pipelines (default 1)
	Assignment Assignment     `yaml:"assignment"` // even | balanced | explicit (default even)
	Stages     []StageSpec    `yaml:"stages"`     // explicit, one pipeline
	Pipelines  []PipelineSpec `yaml:"pipelines"`  // explicit, several pipelines
	EncodeOn   End            `yaml:"encode_on"`  // first | last (default first)
	DecodeOn   End            `yaml:"decode_on"`  // first | last (default last)
	MicroBatch int            `yaml:"micro_batch"`
	Handoff    Handoff        `yaml:"handoff"`  // blocking | buffered (default blocking)
	Dispatch   Dispatch       `yaml:"dispatch"` // round-robin (default)
}

// PipelineSpec is one explicit pipeline.
type PipelineSpec struct {
	Stages []StageSpec `yaml:"stages"`
}

// StageSpec is one explicit stage: a device and an inclusive step range.
type StageSpec struct {
	Device string       `yaml:"device"`
	Steps  [2]StepIndex `yaml:"steps"` // [first, last], inclusive
}

// Links names the kind of each device-to-device link; the cost of each kind
// comes from the cost profile.
type Links struct {
	Default   string         `yaml:"default"` // e.g. pcie4; default "default"
	Overrides []LinkOverride `yaml:"overrides"`
}

// LinkOverride gives the link between two devices its own kind.
type LinkOverride struct {
	Between [2]string `yaml:"between"`
	Kind    string    `yaml:"kind"`
}

// Workload is how many samples arrive, and when.
type Workload struct {
	Samples int     `yaml:"samples"`
	Arrival Arrival `yaml:"arrival"`
	Seed    uint64  `yaml:"seed"`
}

// Arrival is the release process of samples.
type Arrival struct {
	Kind       ArrivalKind `yaml:"kind"`        // batch | poisson | interval (default batch)
	Rate       float64     `yaml:"rate"`        // poisson: samples per second
	IntervalMS float64     `yaml:"interval_ms"` // interval: ms between releases
}

// Pipeline is one resolved pipeline: its stages in order.
type Pipeline struct {
	Index  int
	Stages []Stage
}

// Stage is one resolved stage: a device running an inclusive step range.
type Stage struct {
	Pipeline int
	Index    int
	Device   string // device name
	DevIdx   int    // index into Plan.Devices
	First    StepIndex
	Last     StepIndex // inclusive
	Encode   bool      // this stage runs the image encoder
	Decode   bool      // this stage runs the VAE decoder and writes outputs
}

// Steps returns the number of steps in the stage.
func (s Stage) Steps() int { return int(s.Last-s.First) + 1 }

// DTypeBytes is the size of one element of the model's dtype.
func (m Model) DTypeBytes() int {
	if m.Dtype == "fp32" {
		return 4
	}
	return 2
}

// LatentBytes is the size of one sample's latent as handed between stages:
// frames × channels × height × width × dtype size. (The sampler state that
// travels with it is a few bytes and not counted.)
func (m Model) LatentBytes() int64 {
	return int64(m.Frames) * int64(m.Latent.Channels) * int64(m.Latent.Height) * int64(m.Latent.Width) * int64(m.DTypeBytes())
}

// LinkKind returns the link kind between devices a and b: an override when
// one names the pair (in either order), else the default.
func (l Links) LinkKind(a, b string) string {
	for _, o := range l.Overrides {
		if (o.Between[0] == a && o.Between[1] == b) || (o.Between[0] == b && o.Between[1] == a) {
			return o.Kind
		}
	}
	return l.Default
}
