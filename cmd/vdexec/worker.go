package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/plan"
)

// Flag names of worker.
const (
	flagPlan       = "plan"
	flagDevice     = "device"
	flagRendezvous = "rendezvous"
)

// workerCommand is the hidden entry point of the worker processes that
// `vdexec run` starts for transport tcp, one per stage device.
func workerCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, true),
		ortLibFlag(),
		imagesFlag(),
		&cli.StringFlag{Name: flagPlan, EnvVars: cliutil.Env(envPrefix, "worker-plan"), Usage: "plan `FILE` (empty: the built-in plan), the coordinator's"},
		&cli.StringFlag{Name: flagDevice, EnvVars: cliutil.Env(envPrefix, "worker-device"), Usage: "the device `NAME` this worker runs"},
		&cli.StringFlag{Name: flagRendezvous, EnvVars: cliutil.Env(envPrefix, "worker-rendezvous"), Usage: "the coordinator's `ADDR` (host:port)"},
		&cli.DurationFlag{Name: flagTimeout, Value: exec.DefaultTimeout, EnvVars: cliutil.Env(envPrefix, "worker-timeout"), Usage: "how long to wait for the rendezvous"},
	)
	return &cli.Command{
		Name:   "worker",
		Usage:  "run one stage of a plan as a worker process of `vdexec run` (transport tcp)",
		Hidden: true,
		Description: "Started by `vdexec run` for plans with transport tcp, one process per device; it " +
			"connects to the coordinator at --rendezvous, which checks that both loaded the same plan.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			args, err := cliutil.Positional(c)
			if err != nil {
				if cliutil.IsHelp(err) {
					return nil
				}
				return err
			}
			if len(args) > 0 {
				return cliutil.Usage(fmt.Errorf("worker: unexpected arguments %q: the plan comes with --%s", args, flagPlan))
			}
			dev, addr := c.String(flagDevice), c.String(flagRendezvous)
			if dev == "" || addr == "" {
				return cliutil.Usage(errors.New("worker: --device and --rendezvous are required (this command is started by `vdexec run` for transport tcp)"))
			}
			if err := checkHostPort(addr); err != nil {
				return cliutil.Usage(fmt.Errorf("worker: %s %q: %w", cliutil.Source(c, flagRendezvous), addr, err))
			}
			if err := checkTimeout("worker", c); err != nil {
				return err
			}
			var planArgs []string
			if f := c.String(flagPlan); f != "" {
				planArgs = []string{f}
			}
			p, err := loadPlanArgs(c, planArgs)
			if err != nil {
				return err
			}
			if !runsStage(p, dev) {
				return fmt.Errorf("worker: device %q runs no stage of plan %s (its devices: %s)", dev, p.Name, deviceNames(p))
			}
			imgs, _, err := conditioning(c, p)
			if err != nil {
				return err
			}
			if err := initORT(c); err != nil {
				return err
			}
			// Ctrl-C in a terminal reaches the whole process group: the
			// coordinator decides what happens, so the worker ignores it.
			// SIGTERM still stops it.
			signal.Ignore(os.Interrupt)
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM)
			defer stop()
			cfg := exec.WorkerConfig{
				Plan:       p,
				Device:     dev,
				Rendezvous: addr,
				Factory:    ort.Factory(p, false),
				Timeout:    c.Duration(flagTimeout),
			}
			if imgs != nil {
				cfg.Images, cfg.Conditioning = imgs.Image, imgs.Label
			}
			return exec.RunWorker(ctx, cfg)
		},
	}
}

// runsStage reports whether device dev runs a stage of p.
func runsStage(p *plan.Plan, dev string) bool {
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			if st.Device == dev {
				return true
			}
		}
	}
	return false
}

// deviceNames lists the plan's devices, comma-separated.
func deviceNames(p *plan.Plan) string {
	return strings.Join(p.Devices.Names(), ", ")
}

// checkHostPort checks the syntax of a rendezvous address, HOST:PORT with
// a port from 1 to 65535 (the host may be empty: this machine), before
// the worker loads its plan and ONNX Runtime.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return fmt.Errorf("want HOST:PORT, such as 127.0.0.1:7000 (%v)", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || !isDigits(port) {
		return fmt.Errorf("want HOST:PORT with a port from 1 to 65535, such as 127.0.0.1:7000; %q is not one", port)
	}
	return nil
}

// isDigits reports whether s is decimal digits only.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
