package timeline

// HostWork is the host work one device spent outside the model calls, read
// off its host spans (KindHost): the per-sample preparation on a
// pipeline's first stage, the receive of each hand-off into a later stage,
// and the per-sample output handling on the last stage.
type HostWork struct {
	Device string
	// FirstNS is the time of first-stage host work over FirstSamples samples.
	FirstNS      int64
	FirstSamples int
	// ReceiveNS is the time of receive host work over Receives hand-offs.
	ReceiveNS int64
	Receives  int
	// LastNS is the time of last-stage host work over LastSamples samples.
	LastNS      int64
	LastSamples int
}

// stageSample is one sample at one stage of one pipeline on one device.
type stageSample struct {
	dev         string
	pipe, stage int
	id          int
}

func stageSampleOf(s *Span) stageSample {
	return stageSample{s.Device, s.Pipeline, s.Stage, s.Samples[0]}
}

// HostWork sums the host spans of t per device, in the order of
// Meta.Devices (devices without host spans are left out). A host span with
// a peer is a receive (the peer sent the micro-batch); one without is the
// first stage's preparation when it ends by the start of the stage's
// model work on its samples, else the last stage's output handling.
func (t *Timeline) HostWork() []HostWork {
	work := map[stageSample]int64{} // start of the stage's first busy span on a sample
	for i := range t.Spans {
		s := &t.Spans[i]
		if !Busy(s.Kind) || len(s.Samples) == 0 {
			continue
		}
		k := stageSampleOf(s)
		if v, ok := work[k]; !ok || s.Start < v {
			work[k] = s.Start
		}
	}
	by := map[string]*HostWork{}
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.Kind != KindHost || len(s.Samples) == 0 {
			continue
		}
		h := by[s.Device]
		if h == nil {
			h = &HostWork{Device: s.Device}
			by[s.Device] = h
		}
		d, n := s.End-s.Start, len(s.Samples)
		start, ok := work[stageSampleOf(s)]
		switch {
		case s.Peer != "":
			h.ReceiveNS += d
			h.Receives++
		case ok && s.End <= start:
			h.FirstNS += d
			h.FirstSamples += n
		default:
			h.LastNS += d
			h.LastSamples += n
		}
	}
	var out []HostWork
	for _, d := range t.Meta.Devices {
		if h := by[d]; h != nil {
			out = append(out, *h)
		}
	}
	return out
}
