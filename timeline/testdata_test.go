package timeline

// Hand-built timelines shared by the tests. Times are small integers of
// nanoseconds so the expected answers can be worked out by hand.

// pipeline3x4 is a 3-stage step pipeline (stage times 10, 20, 10 ns) on
// devices d0, d1, d2 with 4 samples released together at 0, no encode or
// decode. Hand schedule:
//
//	d0: s0 [0,10]  s1 [10,20] s2 [20,30] s3 [30,40]
//	d1: s0 [10,30] s1 [30,50] s2 [50,70] s3 [70,90]
//	d2: s0 [30,40] s1 [50,60] s2 [70,80] s3 [90,100]
func pipeline3x4() *Timeline {
	t := &Timeline{Meta: Meta{Plan: "p3x4", Source: "sim", Devices: []string{"d0", "d1", "d2"}}}
	d0 := [][2]int64{{0, 10}, {10, 20}, {20, 30}, {30, 40}}
	d1 := [][2]int64{{10, 30}, {30, 50}, {50, 70}, {70, 90}}
	d2 := [][2]int64{{30, 40}, {50, 60}, {70, 80}, {90, 100}}
	for i := 0; i < 4; i++ {
		for st, iv := range [][][2]int64{d0, d1, d2} {
			t.AddSpan(Span{Device: []string{"d0", "d1", "d2"}[st], Kind: KindStep, Samples: []int{i},
				Stage: st, FirstStep: 3 * st, LastStep: 3*st + 2, Start: iv[i][0], End: iv[i][1]})
		}
		t.AddSample(Sample{ID: i, Release: 0, Done: d2[i][1]})
	}
	return t
}

// arrivals2 is a 2-stage pipeline over 4 steps with arrivals (releases 0, 5,
// 40), a micro-batch of samples 0 and 1, encode on d0, decode on d1,
// send/recv hand-offs, a wait and warm-up spans.
//
//	d0: enc s0 [0,4] enc s1 [5,9] step0-1 s0+1 [9,29]* wait [29,31] enc s2 [40,44] step0-1 s2 [44,54]
//	    send s0+1 [29,31] send s2 [54,56]
//	d1: step2-3 s0+1 [31,51]* dec s0 [51,55] dec s1 [55,59] step2-3 s2 [59,69] dec s2 [69,73]
//	    recv s0+1 [29,31] recv s2 [54,56]
//
// (* = warm-up)
func arrivals2() *Timeline {
	t := &Timeline{Meta: Meta{Plan: "arr2", Source: "exec", Devices: []string{"d0", "d1"}}}
	step := func(dev string, stage, a, b int, start, end int64, warm bool, ids ...int) Span {
		return Span{Device: dev, Kind: KindStep, Samples: ids, Stage: stage, FirstStep: a, LastStep: b, Start: start, End: end, Warmup: warm}
	}
	other := func(dev string, k Kind, stage int, start, end int64, peer string, ids ...int) Span {
		return Span{Device: dev, Kind: k, Samples: ids, Stage: stage, FirstStep: -1, LastStep: -1, Start: start, End: end, Peer: peer}
	}
	for _, s := range []Span{
		other("d0", KindEncode, 0, 0, 4, "", 0),
		other("d0", KindEncode, 0, 5, 9, "", 1),
		step("d0", 0, 0, 1, 9, 29, true, 0, 1),
		other("d0", KindSend, 0, 29, 31, "d1", 0, 1),
		other("d0", KindWait, 0, 29, 31, "d1", 0, 1),
		other("d1", KindRecv, 1, 29, 31, "d0", 0, 1),
		step("d1", 1, 2, 3, 31, 51, true, 0, 1),
		other("d1", KindDecode, 1, 51, 55, "", 0),
		other("d1", KindDecode, 1, 55, 59, "", 1),
		other("d0", KindEncode, 0, 40, 44, "", 2),
		step("d0", 0, 0, 1, 44, 54, false, 2),
		other("d0", KindSend, 0, 54, 56, "d1", 2),
		other("d1", KindRecv, 1, 54, 56, "d0", 2),
		step("d1", 1, 2, 3, 59, 69, false, 2),
		other("d1", KindDecode, 1, 69, 73, "", 2),
	} {
		t.AddSpan(s)
	}
	t.AddSample(Sample{ID: 0, Release: 0, Done: 55})
	t.AddSample(Sample{ID: 1, Release: 5, Done: 59})
	t.AddSample(Sample{ID: 2, Release: 40, Done: 73})
	return t
}
