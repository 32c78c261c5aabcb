package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/models/family"
	"github.com/vdpp/vdpp/plan"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a plan and everything a run of it needs, without running it",
		ArgsUsage: "[PLAN]",
		Description: "Loads the plan, reports every problem with its file:line:col, prints the resolved layout " +
			"(per pipeline: stage, device, step range), then checks what the executor needs before any work: " +
			"the model files exist and their inputs and outputs have the plan's model.dtype, the ONNX Runtime library loads, each stage's session opens on its device " +
			"(provider available, CUDA device present) and the model's inputs and outputs match the plan's shapes.",
		Flags: append(cliutil.WhatIfFlags(envPrefix, true), ortLibFlag(), imagesFlag()),
		Action: func(c *cli.Context) error {
			p, err := loadPlan(c)
			if err != nil {
				if cliutil.IsHelp(err) {
					return nil
				}
				return err
			}
			w := c.App.Writer
			p.Describe(w)
			fmt.Fprintln(w)
			if err := preflight(c, p, w); err != nil {
				return err
			}
			fmt.Fprintln(w, "ok")
			return nil
		},
	}
}

// checkRunnable checks what the executor needs of a plan that does not
// depend on the machine: conditioning images (built-in for family tiny,
// from --images otherwise; haveImages says whether --images was given) and
// a transport this build has.
func checkRunnable(p *plan.Plan, haveImages bool) error {
	var errs []error
	if !family.HasImages(p.Model.Family) && !haveImages {
		errs = append(errs, fmt.Errorf("%s: model.family %s: vdexec has built-in conditioning images only for the tiny model (family tiny); "+
			"give this plan's images with --%s FILE,... (PNG or JPEG), simulate it with vdsim, or run a tiny-model plan such as configs/%s",
			p.File, p.Model.Family, flagImages, defaultPlanName))
	}
	if err := exec.CheckTransport(p.Transport); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", p.File, err))
	}
	return errors.Join(errs...)
}

// checkModelFiles checks that the model files the plan's stages open are
// named and exist (exec.CheckModelFiles), with advice for this plan: run
// from the repository root for the built-in plan, else fix the path (and
// where the family's files come from).
func checkModelFiles(p *plan.Plan) error {
	hint := exec.HintFixPath
	if h := family.FilesHint(p.Model.Family); h != "" {
		hint += "; " + h
	}
	if p.File == defaultPlan.Name {
		hint = "run vdexec from the repository root, or pass the plan file itself: vdexec run configs/" + defaultPlanName
	}
	return exec.CheckModelFiles(p, exec.FileCheck{Required: true, Hint: hint})
}

// preflight checks, before any work, everything a run of p needs on this
// machine: the plan is runnable, the conditioning images (--images) load,
// the model files exist, the ONNX Runtime library loads, and every stage's
// session opens on its device with the plan's shapes (the sessions are
// closed again). It prints one line per check to w.
func preflight(c *cli.Context, p *plan.Plan, w io.Writer) error {
	if err := checkRunnable(p, c.IsSet(flagImages)); err != nil {
		return err
	}
	_, files, err := conditioning(c, p)
	if err != nil {
		return err
	}
	if files != nil {
		fmt.Fprintf(w, "conditioning images: %s, decoded and resized to %d×%d (h×w)\n", strings.Join(files, ", "), 8*p.Model.Latent.Height, 8*p.Model.Latent.Width)
	}
	if err := checkModelFiles(p); err != nil {
		return err
	}
	fmt.Fprintf(w, "model files: %s\n", strings.Join(modelFileList(p), ", "))
	if err := exec.CheckModelTypes(p); err != nil {
		return err
	}
	fmt.Fprintf(w, "model element types: every input and output is model.dtype %s\n", p.Model.Dtype)
	if err := initORT(c); err != nil {
		return err
	}
	fmt.Fprintf(w, "ONNX Runtime %s loaded from %s\n", ort.Version(), ort.Library())
	f := ort.Factory(p, false)
	var errs []error
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			d := p.Devices[st.DevIdx]
			m, err := f(d, st)
			if err != nil {
				errs = append(errs, fmt.Errorf("pipeline %d stage %d: %w", st.Pipeline, st.Index, err))
				continue
			}
			if c, ok := m.(io.Closer); ok {
				c.Close()
			}
			fmt.Fprintf(w, "pipeline %d stage %d on %s (%s): %s opened, inputs and outputs match %s\n",
				st.Pipeline, st.Index, d.Name, ort.DescribeDevice(d), strings.Join(parts(st), "+"), shapeString(p))
		}
	}
	return errors.Join(errs...)
}

// parts names the graphs a stage opens.
func parts(st plan.Stage) []string {
	out := []string{"unet"}
	if st.Encode {
		out = append(out, "encoder")
	}
	if st.Decode {
		out = append(out, "decoder")
	}
	return out
}

// modelFileList lists the plan's model files as they will be opened.
func modelFileList(p *plan.Plan) []string {
	var out []string
	for _, f := range exec.ModelFiles(p) {
		if f.Path != "" {
			out = append(out, f.Path)
		}
	}
	return out
}

// shapeString is the plan's latent shape per call, B×F×C×h×w.
func shapeString(p *plan.Plan) string {
	return fmt.Sprintf("latent %d×%d×%d×%d×%d (micro-batch × frames × channels × h × w)", p.Layout.MicroBatch, p.Model.Frames,
		p.Model.Latent.Channels, p.Model.Latent.Height, p.Model.Latent.Width)
}
