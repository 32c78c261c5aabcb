package cliutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/plan"
)

func TestParseInts(t *testing.T) {
	got, err := ParseInts("1,2, 4 7")
	if err != nil || len(got) != 4 || got[0] != 1 || got[3] != 7 {
		t.Errorf("ParseInts: %v %v", got, err)
	}
	for _, bad := range []string{"", "1,x", "0", "-2", "1.5", "1,,2", "1,", ",1", "2,2", "1, 2 ,1", "0x2"} {
		if _, err := ParseInts(bad); err == nil {
			t.Errorf("ParseInts(%q) accepted", bad)
		}
	}
	if _, err := ParseInts("1,,2"); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("ParseInts(1,,2): %v", err)
	}
	if _, err := ParseInts("4,2,4"); err == nil || !strings.Contains(err.Error(), "4 is given twice") {
		t.Errorf("ParseInts(4,2,4): %v", err)
	}
}

func TestParseShape(t *testing.T) {
	for _, s := range []string{"2 4 14 40 72", "2,4,14,40,72", "2x4x14x40x72"} {
		got, err := ParseShape(s)
		if err != nil || got != [5]int{2, 4, 14, 40, 72} {
			t.Errorf("ParseShape(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"1 4 14", "1 4 14 40 0", "a b c d e"} {
		if _, err := ParseShape(bad); err == nil {
			t.Errorf("ParseShape(%q) accepted", bad)
		}
	}
}

func TestEnv(t *testing.T) {
	if got := Env("VDSIM", "micro-batch")[0]; got != "VDSIM_MICRO_BATCH" {
		t.Errorf("Env = %q", got)
	}
}

// testApp has one command taking what-if flags and a boolean.
func testApp(out *bytes.Buffer, got *[]string, o *struct{ samples, steps int }) *cli.App {
	app := NewApp("t", "test", out, out)
	app.Commands = []*cli.Command{{
		Name:  "run",
		Flags: append(WhatIfFlags("T", true), &cli.BoolFlag{Name: "quiet", EnvVars: Env("T", "quiet")}),
		Action: func(c *cli.Context) error {
			pos, err := Positional(c)
			if err != nil {
				if IsHelp(err) {
					return nil
				}
				return err
			}
			*got = pos
			ov, err := Overrides(c)
			if err != nil {
				return err
			}
			if ov.Samples != nil {
				o.samples = *ov.Samples
			}
			if ov.Steps != nil {
				o.steps = *ov.Steps
			}
			if c.Bool("quiet") {
				*got = append(*got, "quiet")
			}
			return nil
		},
	}}
	if err := Finish(app); err != nil {
		panic(err)
	}
	return app
}

func TestPositional(t *testing.T) {
	cases := []struct {
		args    []string
		pos     string
		samples int
		steps   int
	}{
		{[]string{"p.yaml"}, "p.yaml", 0, 0},
		{[]string{"p.yaml", "--samples", "9"}, "p.yaml", 9, 0},
		{[]string{"--steps", "5", "p.yaml", "--num-samples=3", "--quiet"}, "p.yaml quiet", 3, 5},
		{[]string{"p.yaml", "--total-steps", "7", "--", "--samples"}, "p.yaml --samples", 0, 7},
	}
	for _, c := range cases {
		var out bytes.Buffer
		var pos []string
		var o struct{ samples, steps int }
		if code := Main(testApp(&out, &pos, &o), append([]string{"t", "run"}, c.args...), &out); code != 0 {
			t.Errorf("%v: exit %d: %s", c.args, code, out.String())
			continue
		}
		if strings.Join(pos, " ") != c.pos || o.samples != c.samples || o.steps != c.steps {
			t.Errorf("%v: positional %q samples %d steps %d; want %q %d %d", c.args, pos, o.samples, o.steps, c.pos, c.samples, c.steps)
		}
	}
	for _, bad := range [][]string{{"p.yaml", "--nope"}, {"p.yaml", "--samples"}, {"p.yaml", "--samples", "x"}, {"--samples", "x", "p.yaml"}} {
		var out bytes.Buffer
		var pos []string
		var o struct{ samples, steps int }
		if code := Main(testApp(&out, &pos, &o), append([]string{"t", "run"}, bad...), &out); code == 0 || !strings.HasPrefix(out.String(), "t: ") {
			t.Errorf("%v: exit %d, output %q", bad, code, out.String())
		}
	}
}

func TestMainExitCode(t *testing.T) {
	var out bytes.Buffer
	app := NewApp("t", "test", &out, &out)
	app.Action = func(*cli.Context) error { return cli.Exit("two lines\nsecond", 3) }
	if code := Main(app, []string{"t"}, &out); code != 3 || out.String() != "t: two lines\nt: second\n" {
		t.Errorf("exit %d, output %q", code, out.String())
	}
	app.Action = func(*cli.Context) error { return errors.New("plain") }
	if code := Main(app, []string{"t"}, &out); code != 1 {
		t.Errorf("exit %d", code)
	}
}

func TestFinishWantsEnvVars(t *testing.T) {
	app := NewApp("t", "", &bytes.Buffer{}, &bytes.Buffer{})
	app.Commands = []*cli.Command{{Name: "x", Flags: []cli.Flag{&cli.IntFlag{Name: "n"}}}}
	if err := Finish(app); err == nil || !strings.Contains(err.Error(), "flag n") {
		t.Errorf("Finish: %v", err)
	}
}

// A bad what-if value is a usage error naming the flag and the command,
// before any plan is read.
func TestOverridesNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"p.yaml", "--samples", "0"}, "t: run: --samples 0: samples must be at least 1 (see 't run --help')"},
		{[]string{"--steps", "20000", "p.yaml"}, "t: run: --steps 20000: steps must be at most 10000"},
		{[]string{"p.yaml", "--micro-batch=-3"}, "t: run: --micro-batch -3: micro-batch must be at least 1"},
	} {
		var out bytes.Buffer
		var pos []string
		var o struct{ samples, steps int }
		code := Main(testApp(&out, &pos, &o), append([]string{"t", "run"}, tc.args...), &out)
		if code != ExitUsage || !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "p.yaml") {
			t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, out.String(), ExitUsage, tc.want)
		}
	}
}

// LoadPlan prints the plan's notices; Apply prints those an override adds.
func TestNotices(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../../configs/svd-14f-320x576-1xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prof, err := filepath.Abs("../../../configs/profiles/a5000-svd-14f-320x576.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "costs: profiles/a5000-svd-14f-320x576.yaml", "costs: "+prof, 1)
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var errs bytes.Buffer
	p, err := LoadPlan([]string{path}, nil, "", &errs)
	if err != nil {
		t.Fatal(err)
	}
	if errs.Len() != 0 {
		t.Errorf("micro-batch 1, measured: printed %q", errs.String())
	}
	mb := 2
	if err := Apply(p, plan.Overrides{MicroBatch: &mb}, &errs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(errs.String(), "note: costs: the profile has no unet_ms for micro-batch 2 on a5000") || strings.Count(errs.String(), "note: ") != 2 {
		t.Errorf("--micro-batch 2: printed %q", errs.String())
	}
	if err := os.WriteFile(path, []byte(strings.Replace(text, "micro_batch: 1", "micro_batch: 2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	errs.Reset()
	if _, err := LoadPlan([]string{path}, nil, "", &errs); err != nil {
		t.Fatal(err)
	}
	if strings.Count(errs.String(), "note: costs: ") != 2 {
		t.Errorf("micro_batch: 2 in the plan: printed %q", errs.String())
	}
}
