package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a plan and print its resolved layout",
		ArgsUsage: "[PLAN]",
		Description: "Loads the plan (and its cost profile), reports every problem with its file:line:col, " +
			"and prints the resolved layout: per pipeline each stage's device, step range and expected time " +
			"per micro-batch, and the memory each device needs.",
		Flags: cliutil.WhatIfFlags(envPrefix, true),
		Action: withPlan(func(c *cli.Context, p *plan.Plan) error {
			w := c.App.Writer
			p.Describe(w)
			if p.Profile == nil {
				fmt.Fprintln(w, "\nno cost profile: stage times and memory are not known; give one with --costs FILE to simulate")
				fmt.Fprintln(w, "ok")
				return nil
			}
			mem, err := sim.Memory(p)
			if err != nil {
				return err
			}
			fmt.Fprintln(w)
			writeMemory(w, mem)
			fmt.Fprintln(w, "ok")
			return nil
		}),
	}
}

// writeMemory prints the memory table of a plan: what each device holds
// and needs against what it has.
func writeMemory(w io.Writer, mem []sim.DeviceMemory) {
	fmt.Fprintln(w, "memory (GiB)")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "device\tunet\tencoder\tdecoder\truntime\tactivations\tneed\thave\tfits")
	for _, m := range mem {
		have, fits := "unknown", "yes"
		if m.HaveGB > 0 {
			have = fmt.Sprintf("%.3g", m.HaveGB)
		}
		if !m.Fits {
			fits = fmt.Sprintf("NO (%.3g over)", m.OverGB())
		}
		fmt.Fprintf(tw, "%s\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g\t%s\t%s\n", m.Device, m.UNetGB, m.EncoderGB, m.DecoderGB, m.RuntimeGB, m.ActivationsGB, m.NeedGB, have, fits)
	}
	tw.Flush()
}
