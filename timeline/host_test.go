package timeline

import "testing"

// HostWork tells the three kinds of host span apart: a receive names its
// sender, the first stage's preparation ends before the stage's model
// work, the last stage's output handling comes after it, in a 1-stage
// pipeline too.
func TestHostWorkRoles(t *testing.T) {
	tl := &Timeline{Meta: Meta{Devices: []string{"a", "b", "c"}}}
	add := func(dev string, k Kind, stage, id int, start, end int64, peer string) {
		tl.Spans = append(tl.Spans, Span{Device: dev, Kind: k, Stage: stage, Samples: []int{id}, FirstStep: -1, LastStep: -1, Start: start, End: end, Peer: peer})
	}
	for id := range 2 {
		o := int64(id) * 1000
		// a: stage 0 of a 2-stage pipeline; b: stage 1
		add("a", KindHost, 0, id, o, o+3, "")
		add("a", KindEncode, 0, id, o+3, o+10, "")
		add("a", KindStep, 0, id, o+10, o+100, "")
		add("b", KindHost, 1, id, o+120, o+125, "a")
		add("b", KindStep, 1, id, o+125, o+200, "")
		add("b", KindDecode, 1, id, o+200, o+250, "")
		add("b", KindHost, 1, id, o+250, o+257, "")
		// c: a 1-stage pipeline, both ends
		add("c", KindHost, 0, id, o, o+2, "")
		add("c", KindStep, 0, id, o+2, o+50, "")
		add("c", KindHost, 0, id, o+50, o+61, "")
	}
	got := tl.HostWork()
	want := []HostWork{
		{Device: "a", FirstNS: 6, FirstSamples: 2},
		{Device: "b", ReceiveNS: 10, Receives: 2, LastNS: 14, LastSamples: 2},
		{Device: "c", FirstNS: 4, FirstSamples: 2, LastNS: 22, LastSamples: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("HostWork = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("device %s: %+v, want %+v", want[i].Device, got[i], want[i])
		}
	}
}

// A preparation whose model work never started (an interrupted run) is
// still a preparation, not output handling.
func TestHostAfterWithoutModelWork(t *testing.T) {
	tl := &Timeline{Meta: Meta{Devices: []string{"a"}}, Spans: []Span{
		{Device: "a", Kind: KindHost, Samples: []int{0}, FirstStep: -1, LastStep: -1, Start: 0, End: 5},
	}}
	if after := tl.HostAfter(); after[0] {
		t.Errorf("HostAfter = %v: a lone preparation counted as output handling", after)
	}
}
