package plan

// The plan's vocabulary: each word a plan field takes is a typed string
// with its constants here, so sim, exec and the studies compare against
// the plan's own names instead of writing the strings again. Values lists
// the allowed words in the order messages give them; Valid tells whether a
// value is one of them. A zero value ("") is not valid: EnsureDefaults
// fills it.

// Transport is how latents travel between stages (exec); the simulator
// prices hand-offs by it when the profile measured it.
type Transport string

// Transports.
const (
	TransportInproc Transport = "inproc" // channels inside one process
	TransportTCP    Transport = "tcp"    // one worker process per device, latents over TCP
	TransportNCCL   Transport = "nccl"   // NCCL send/recv between CUDA devices
)

// Values lists the transports.
func (Transport) Values() []Transport {
	return []Transport{TransportInproc, TransportTCP, TransportNCCL}
}

// Valid reports whether t is a known transport.
func (t Transport) Valid() bool { return valid(t) }

// Handoff is how a stage hands a latent to the next one.
type Handoff string

// Hand-off modes.
const (
	// HandoffBlocking: the sender waits until the receiver takes the latent.
	HandoffBlocking Handoff = "blocking"
	// HandoffBuffered: the sender queues the latent and goes on; transfers
	// overlap with compute.
	HandoffBuffered Handoff = "buffered"
)

// Values lists the hand-off modes.
func (Handoff) Values() []Handoff { return []Handoff{HandoffBlocking, HandoffBuffered} }

// Valid reports whether h is a known hand-off mode.
func (h Handoff) Valid() bool { return valid(h) }

// ArrivalKind is the release process of the workload's samples.
type ArrivalKind string

// Arrival kinds.
const (
	ArrivalBatch    ArrivalKind = "batch"    // every sample at time 0
	ArrivalPoisson  ArrivalKind = "poisson"  // exponential gaps at Arrival.Rate per second
	ArrivalInterval ArrivalKind = "interval" // one sample every Arrival.IntervalMS
)

// Values lists the arrival kinds.
func (ArrivalKind) Values() []ArrivalKind {
	return []ArrivalKind{ArrivalBatch, ArrivalPoisson, ArrivalInterval}
}

// Valid reports whether k is a known arrival kind.
func (k ArrivalKind) Valid() bool { return valid(k) }

// Assignment is how steps are split over a pipeline's stages.
type Assignment string

// Assignments.
const (
	AssignEven     Assignment = "even"     // equal step counts, earlier stages take the remainder
	AssignBalanced Assignment = "balanced" // minimise the slowest stage (needs a profile)
	AssignExplicit Assignment = "explicit" // layout.stages or layout.pipelines name the ranges
)

// Values lists the assignments.
func (Assignment) Values() []Assignment {
	return []Assignment{AssignEven, AssignBalanced, AssignExplicit}
}

// Valid reports whether a is a known assignment.
func (a Assignment) Valid() bool { return valid(a) }

// End is the end of a pipeline where encode or decode runs.
type End string

// Ends.
const (
	EndFirst End = "first"
	EndLast  End = "last"
)

// Values lists the ends.
func (End) Values() []End { return []End{EndFirst, EndLast} }

// Valid reports whether e is a known end.
func (e End) Valid() bool { return valid(e) }

// Provider is the execution provider a device's sessions use (exec).
type Provider string

// Providers.
const (
	ProviderCPU  Provider = "cpu"
	ProviderCUDA Provider = "cuda"
)

// Values lists the providers.
func (Provider) Values() []Provider { return []Provider{ProviderCPU, ProviderCUDA} }

// Valid reports whether v is a known provider.
func (v Provider) Valid() bool { return valid(v) }

// Dispatch is how released samples are spread over pipelines.
type Dispatch string

// Dispatch policies.
const (
	DispatchRoundRobin Dispatch = "round-robin" // sample i goes to pipeline i mod replicas
)

// Values lists the dispatch policies.
func (Dispatch) Values() []Dispatch { return []Dispatch{DispatchRoundRobin} }

// Valid reports whether d is a known dispatch policy.
func (d Dispatch) Valid() bool { return valid(d) }

// word is a typed plan word with its allowed values.
type word[T any] interface {
	~string
	Values() []T
}

func valid[T word[T]](v T) bool {
	for _, a := range v.Values() {
		if a == v {
			return true
		}
	}
	return false
}

// oneOfWord checks a typed word, naming the allowed values in messages.
func oneOfWord[T word[T]](c *checker, path string, v T) bool {
	vals := v.Values()
	allowed := make([]string, len(vals))
	for i, a := range vals {
		allowed[i] = string(a)
	}
	return oneOf(c, path, string(v), allowed...)
}
