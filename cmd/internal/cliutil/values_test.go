package cliutil

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// valueApp has one command with a flag of each kind; its action records
// what it read.
func valueApp(out *bytes.Buffer, got *map[string]string) *cli.App {
	app := NewApp("t", "test", out, out)
	app.Commands = []*cli.Command{{
		Name: "run",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Aliases: []string{"num"}, EnvVars: Env("T", "n")},
			&cli.Uint64Flag{Name: "seed", EnvVars: Env("T", "seed")},
			&cli.BoolFlag{Name: "quiet", EnvVars: Env("T", "quiet")},
			&cli.DurationFlag{Name: "slo", EnvVars: Env("T", "slo")},
			&cli.Float64Flag{Name: "rate", EnvVars: Env("T", "rate")},
			&cli.StringFlag{Name: "out", EnvVars: Env("T", "out"), Usage: "write to `DIR`"},
			&cli.StringFlag{Name: "ort-lib", EnvVars: Env("T", "ort-lib")},
		},
		Action: func(c *cli.Context) error {
			pos, err := Positional(c)
			if err != nil {
				return err
			}
			*got = map[string]string{"pos": strings.Join(pos, " "), "n": strconv.Itoa(c.Int("n"))}
			return nil
		},
	}}
	if err := Finish(app); err != nil {
		panic(err)
	}
	return app
}

func runValues(t *testing.T, env map[string]string, args ...string) (int, string, map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out bytes.Buffer
	var got map[string]string
	code := Main(valueApp(&out, &got), append([]string{"t", "run"}, args...), &out)
	return code, out.String(), got
}

// Whole numbers are decimal wherever they are written: 010 is 10 (not
// octal 8), 0x10 is refused.
func TestDecimalOnly(t *testing.T) {
	for _, args := range [][]string{{"p", "--n", "010"}, {"--n", "010", "p"}, {"--num=010", "p"}, {"p", "-n=+10"}} {
		code, out, got := runValues(t, nil, args...)
		if code != 0 || got["n"] != "10" || got["pos"] != "p" {
			t.Errorf("%v: exit %d, read %v, output %q", args, code, got, out)
		}
	}
	t.Run("env", func(t *testing.T) {
		code, out, got := runValues(t, map[string]string{"T_N": "010"}, "p")
		if code != 0 || got["n"] != "10" {
			t.Errorf("T_N=010: exit %d, read %v, output %q", code, got, out)
		}
	})
}

// A value a flag does not take is a usage error naming the flag (or its
// variable), before or after the positional arguments.
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"p", "--n", "0x10"}, `t: run: invalid value "0x10" for --n: want a whole number written in decimal digits`},
		{nil, []string{"--n", "abc", "p"}, `t: run: invalid value "abc" for --n:`},
		{nil, []string{"--num=1e3", "p"}, `invalid value "1e3" for --num:`},
		{nil, []string{"p", "--n", "99999999999999999999"}, `for --n: too large`},
		{nil, []string{"p", "--seed", "-1"}, `invalid value "-1" for --seed: want a whole number ≥ 0`},
		{nil, []string{"p", "--quiet=maybe"}, `invalid value "maybe" for --quiet: want true or false`},
		{nil, []string{"p", "--slo", "abc"}, `invalid value "abc" for --slo: want a duration`},
		{nil, []string{"p", "--rate", "NaN"}, `invalid value "NaN" for --rate: want a finite number`},
		{map[string]string{"T_N": "abc"}, []string{"p"}, `invalid value "abc" for T_N (--n):`},
		{map[string]string{"T_SEED": "0x10"}, []string{"p"}, `invalid value "0x10" for T_SEED (--seed):`},
		{nil, []string{"p", "--out="}, "t: run: --out is empty: give a folder, or leave the flag out (see 't run --help')"},
		{nil, []string{"--out", "", "p"}, "t: run: --out is empty"},
		{map[string]string{"T_OUT": ""}, []string{"p"}, "t: run: T_OUT is empty (it sets --out): give a folder, or unset it"},
		// White space only was taken as a name (--out " " made a folder " ").
		{nil, []string{"p", "--out", " "}, `t: run: --out is blank (white space only: " "): give a folder, or leave the flag out`},
		{nil, []string{"--out=\t ", "p"}, `--out is blank (white space only: "\t ")`},
		{map[string]string{"T_OUT": "  "}, []string{"p"}, `t: run: T_OUT is blank (white space only: "  "; it sets --out): give a folder, or unset it`},
		{map[string]string{"T_ORT_LIB": " "}, []string{"p"}, `T_ORT_LIB is blank (white space only: " "; it sets --ort-lib)`},
		{nil, []string{"p", "--ort-lib", " "}, `--ort-lib is blank`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, _ := runValues(t, tc.env, tc.args...)
			if code != ExitUsage || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Errorf("%v %v: exit %d, output %q; want exit %d and %q", tc.env, tc.args, code, out, ExitUsage, tc.want)
			}
		})
	}
	// Empty is meaningful for --ort-lib (look for the library).
	for _, args := range [][]string{{"p", "--ort-lib="}, {"p"}} {
		if code, out, _ := runValues(t, map[string]string{"T_ORT_LIB": ""}, args...); code != 0 {
			t.Errorf("%v with T_ORT_LIB empty: exit %d, %q", args, code, out)
		}
	}
}

func TestSource(t *testing.T) {
	app := NewApp("t", "test", &bytes.Buffer{}, &bytes.Buffer{})
	var got []string
	app.Commands = []*cli.Command{{
		Name:  "run",
		Flags: WhatIfFlags("T", false),
		Action: func(c *cli.Context) error {
			if _, err := Positional(c); err != nil {
				return err
			}
			got = append(got, Source(c, FlagLatentShape))
			return nil
		},
	}}
	if err := Finish(app); err != nil {
		t.Fatal(err)
	}
	t.Setenv("T_LATENT_SHAPE", "1 4 14 40 72")
	for _, args := range [][]string{{"t", "run"}, {"t", "run", "--latent-shape", "1 4 14 40 72"}, {"t", "run", "p", "--latent-shape=2 4 14 40 72"}} {
		if code := Main(app, args, &bytes.Buffer{}); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
	}
	want := []string{"T_LATENT_SHAPE (--latent-shape)", "--latent-shape", "--latent-shape"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Source = %q, want %q", got, want)
	}
}
