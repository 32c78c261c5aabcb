package reports

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestScalingData(t *testing.T) {
	series, ticks, err := ScalingData(exampleScaling())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ticks, []int{1, 2, 4, 7}) {
		t.Errorf("ticks %v", ticks)
	}
	// Data parallel was given out of order; it comes back sorted.
	dp := series[1]
	if dp.Name != "data parallel" || dp.Points[0].Devices != 1 || dp.Points[3].Devices != 7 || dp.Points[3].Throughput != 0.756 {
		t.Errorf("sorted series %+v", dp)
	}
	// The input is not changed.
	if exampleScaling()[1].Points[0].Devices != 7 {
		t.Error("input changed")
	}
}

func TestScalingDataErrors(t *testing.T) {
	cases := []struct {
		name   string
		series []ScalingSeries
		want   string
	}{
		{"none", nil, "no series"},
		{"empty name", []ScalingSeries{{Points: []ScalingPoint{{1, 1, 1, false}}}}, "series 0: empty name"},
		{"twice", []ScalingSeries{{"a", []ScalingPoint{{1, 1, 1, false}}}, {"a", []ScalingPoint{{1, 1, 1, false}}}}, `"a": name used twice`},
		{"no points", []ScalingSeries{{"a", nil}}, "no points"},
		{"zero devices", []ScalingSeries{{"a", []ScalingPoint{{0, 1, 1, false}}}}, "device count 0 must be positive"},
		{"same devices", []ScalingSeries{{"a", []ScalingPoint{{2, 1, 1, false}, {2, 1, 1, false}}}}, "two points for 2 devices"},
		{"nan", []ScalingSeries{{"a", []ScalingPoint{{2, math.NaN(), 1, false}}}}, "throughput NaN"},
		{"negative", []ScalingSeries{{"a", []ScalingPoint{{2, 1, -1, false}}}}, "first-sample latency -1"},
	}
	for _, c := range cases {
		_, _, err := ScalingData(c.series)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "reports: scaling: ") {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if err := WriteScaling(&bytes.Buffer{}, "x", c.series); err == nil {
			t.Errorf("%s: WriteScaling accepted bad series", c.name)
		}
	}
}

func TestWriteScalingPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scaling.png")
	if err := WriteScalingPNG(path, "scaling", exampleScaling()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, cols := decodePNG(t, data)
	if img.Bounds().Dx() != 1400 || img.Bounds().Dy() != 560 {
		t.Errorf("size %v, want 1400x560", img.Bounds())
	}
	if len(cols) < 8 {
		t.Errorf("%d distinct colours; the image looks blank", len(cols))
	}
	for i := 0; i < 3; i++ {
		if c := seriesColours[i]; cols[toRGBA(c)] < 30 {
			t.Errorf("series %d colour covers %d pixels", i, cols[toRGBA(c)])
		}
	}
	// A single point, all zeros, still draws.
	if err := WriteScaling(&bytes.Buffer{}, "", []ScalingSeries{{"one", []ScalingPoint{{1, 0, 0, false}}}}); err != nil {
		t.Error(err)
	}
}
