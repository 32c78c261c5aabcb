package reports

import (
	"image/color"

	"github.com/vdpp/vdpp/timeline"
)

const ms = int64(1_000_000)

// handPipeline builds a 3-device, 5-sample step pipeline by hand: 28 steps
// split 10/9/9, encode (200 ms) on gpu0, decode (600 ms) on gpu2, 300 ms per
// step, a 500 ms warm-up surcharge on each device's first step span, and
// 50 ms hand-offs (send on the sender, recv on the receiver; the sender
// blocks, shown as a wait). All samples are released at 0, or every
// `interval` ns when interval > 0.
func handPipeline(source string, interval int64, scale float64) *timeline.Timeline {
	devs := []string{"gpu0", "gpu1", "gpu2"}
	ranges := [][2]int{{0, 9}, {10, 18}, {19, 27}}
	tl := &timeline.Timeline{Meta: timeline.Meta{Plan: "hand-3x5", Source: source, Devices: devs}}
	free := make([]int64, 3)
	sc := func(d int64) int64 { return int64(float64(d) * scale) }
	for i := 0; i < 5; i++ {
		rel := int64(i) * interval
		ready := rel
		for st, dev := range devs {
			t := max(ready, free[st])
			if st == 0 {
				tl.AddSpan(timeline.Span{Device: dev, Kind: timeline.KindEncode, Samples: []int{i}, Stage: st,
					FirstStep: -1, LastStep: -1, Start: t, End: t + sc(200*ms)})
				t += sc(200 * ms)
			}
			n := int64(ranges[st][1] - ranges[st][0] + 1)
			d := sc(n * 300 * ms)
			warm := i == 0
			if warm {
				d += sc(500 * ms)
			}
			tl.AddSpan(timeline.Span{Device: dev, Kind: timeline.KindStep, Samples: []int{i}, Stage: st,
				FirstStep: ranges[st][0], LastStep: ranges[st][1], Start: t, End: t + d, Warmup: warm})
			t += d
			if st < 2 {
				x := sc(50 * ms)
				tl.AddSpan(timeline.Span{Device: dev, Kind: timeline.KindSend, Samples: []int{i}, Stage: st,
					FirstStep: -1, LastStep: -1, Start: t, End: t + x, Peer: devs[st+1]})
				tl.AddSpan(timeline.Span{Device: dev, Kind: timeline.KindWait, Samples: []int{i}, Stage: st,
					FirstStep: -1, LastStep: -1, Start: t, End: t + x, Peer: devs[st+1]})
				tl.AddSpan(timeline.Span{Device: devs[st+1], Kind: timeline.KindRecv, Samples: []int{i}, Stage: st + 1,
					FirstStep: -1, LastStep: -1, Start: t, End: t + x, Peer: dev})
				t += x
			} else {
				tl.AddSpan(timeline.Span{Device: dev, Kind: timeline.KindDecode, Samples: []int{i}, Stage: st,
					FirstStep: -1, LastStep: -1, Start: t, End: t + sc(600*ms)})
				t += sc(600 * ms)
				tl.AddSample(timeline.Sample{ID: i, Release: rel, Done: t})
			}
			free[st] = t
			ready = t
		}
	}
	return tl
}

// exampleScaling is a hand-made scaling result: a step pipeline whose
// throughput grows like data parallelism but whose first sample gets slower
// with hand-offs, and a hybrid at 4 devices.
func exampleScaling() []ScalingSeries {
	return []ScalingSeries{
		{Name: "pipeline", Points: []ScalingPoint{{1, 0.108, 9.25, false}, {2, 0.214, 9.4, false}, {4, 0.42, 9.7, false}, {7, 0.71, 10.3, false}}},
		{Name: "data parallel", Points: []ScalingPoint{{7, 0.756, 9.25, false}, {1, 0.108, 9.25, false}, {2, 0.216, 9.25, false}, {4, 0.432, 9.25, false}}},
		{Name: "hybrid 2×2", Points: []ScalingPoint{{4, 0.428, 9.4, false}}},
	}
}

func toRGBA(c color.Color) color.RGBA { return color.RGBAModel.Convert(c).(color.RGBA) }
