package timeline

import (
	"strings"
	"testing"
)

func TestValidateGood(t *testing.T) {
	if err := pipeline3x4().Validate(); err != nil {
		t.Errorf("pipeline3x4: %v", err)
	}
	if err := ValidateSteps(pipeline3x4(), 9); err != nil {
		t.Errorf("pipeline3x4 steps: %v", err)
	}
	if err := arrivals2().Validate(); err != nil {
		t.Errorf("arrivals2: %v", err)
	}
	if err := ValidateSteps(arrivals2(), 4); err != nil {
		t.Errorf("arrivals2 steps: %v", err)
	}
}

func TestValidateCatches(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Timeline)
		steps  int // 0: Validate only
		want   string
	}{
		{"compute overlap", func(t *Timeline) { t.Spans[1].Start = 3 }, 0, "overlaps span 0 (d0 encode samples [0]) on device d0 stream compute"},
		{"send overlap", func(t *Timeline) { t.Spans[11].Start = 30 }, 0, "stream send"},
		{"step before previous ends", func(t *Timeline) { t.Spans[13].Start, t.Spans[13].End = 50, 58 }, 0, "before the earlier steps"},
		{"step range repeated", func(t *Timeline) { t.Spans[13].FirstStep = 1 }, 0, "repeats steps"},
		{"encode after first step", func(t *Timeline) { t.Spans[9].Start, t.Spans[9].End = 40, 45 }, 0, "after its first step starts"},
		{"decode before last step", func(t *Timeline) { t.Spans[14].Start, t.Spans[14].End = 60, 64 }, 0, "before its last step ends"},
		{"span before release", func(t *Timeline) { t.Samples[2].Release = 41 }, 0, "before the sample's release"},
		{"span after done", func(t *Timeline) { t.Samples[2].Done = 72 }, 0, "after the sample's done time"},
		{"unknown kind", func(t *Timeline) { t.Spans[3].Kind = "nap" }, 0, "unknown kind"},
		{"step never ran", func(t *Timeline) { t.Spans[13].FirstStep = 3 }, 4, "sample 2: step 2 never ran"},
		{"step past end", func(t *Timeline) {}, 3, "past the last step 2"},
		{"no record", func(t *Timeline) { t.Samples = t.Samples[:2] }, 4, "names sample 2, which has no sample record"},
	}
	for _, c := range cases {
		tl := arrivals2()
		c.mutate(tl)
		var err error
		if c.steps == 0 {
			err = tl.Validate()
		} else {
			err = ValidateSteps(tl, c.steps)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "timeline: ") {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A step that runs twice, in two spans.
	tl := pipeline3x4()
	extra := tl.Spans[len(tl.Spans)-1]
	extra.Start, extra.End, extra.FirstStep = 100, 110, 8
	tl.AddSpan(extra)
	tl.Samples[3].Done = 110
	if err := ValidateSteps(tl, 9); err == nil || !strings.Contains(err.Error(), "sample 3: step 8 ran 2 times") {
		t.Errorf("step twice: %v", err)
	}
	if err := ValidateSteps(tl, 0); err == nil {
		t.Error("zero steps accepted")
	}
}

func TestValidateCapsProblems(t *testing.T) {
	tl := pipeline3x4()
	for i := 0; i < maxProblems+1; i++ {
		tl.AddSpan(Span{Device: "d0", Kind: "bad", Start: 200, End: 300})
	}
	err := tl.Validate()
	if err == nil || !strings.Contains(err.Error(), "and 1 more problems") || strings.Count(err.Error(), "\n") != maxProblems {
		t.Errorf("capped problems: %v", err)
	}
}
