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

// HostAfter tells, for each host span of t by index, whether it comes
// after its stage's model work on its samples (the last stage's output
// handling: some busy span of the stage on its first sample ended by its
// start) rather than before it (the first stage's preparation, also when
// the model work never started, or a receive: a host span with a peer).
func (t *Timeline) HostAfter() map[int]bool {
	done := map[stageSample]int64{} // end of the stage's earliest-ending busy span on a sample
	for i := range t.Spans {
		s := &t.Spans[i]
		if !Busy(s.Kind) || len(s.Samples) == 0 {
			continue
		}
		k := stageSampleOf(s)
		if v, ok := done[k]; !ok || s.End < v {
			done[k] = s.End
		}
	}
	after := map[int]bool{}
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.Kind != KindHost || len(s.Samples) == 0 {
			continue
		}
		end, ok := done[stageSampleOf(s)]
		after[i] = s.Peer == "" && ok && end <= s.Start
	}
	return after
}

// HostWork sums the host spans of t per device, in the order of
// Meta.Devices (devices without host spans are left out): receives (a host
// span with a peer, the sender), the first stage's preparation (before the
// stage's model work) and the last stage's output handling (after it; see
// HostAfter).
func (t *Timeline) HostWork() []HostWork {
	by := map[string]*HostWork{}
	for i, after := range t.HostAfter() {
		s := &t.Spans[i]
		h := by[s.Device]
		if h == nil {
			h = &HostWork{Device: s.Device}
			by[s.Device] = h
		}
		d, n := s.End-s.Start, len(s.Samples)
		switch {
		case s.Peer != "":
			h.ReceiveNS += d
			h.Receives++
		case after:
			h.LastNS += d
			h.LastSamples += n
		default:
			h.FirstNS += d
			h.FirstSamples += n
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
