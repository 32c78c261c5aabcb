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
	flagPlan            = "plan"
	flagDevice          = "device"
	flagCoordinator     = "coordinator"
	flagRendezvous      = "rendezvous" // the old name of --coordinator
	flagCoordinatorPort = "coordinator-port"
	flagTokenFile       = "token-file"
)

// tokenFileFlag is --token-file of a command (run, worker, rank).
func tokenFileFlag(cmd string) cli.Flag {
	return &cli.StringFlag{Name: flagTokenFile, EnvVars: cliutil.Env(envPrefix, cmd+"-token-file"),
		Usage: "`FILE` whose first line is the run's token (shared by the coordinator and every worker started by someone else); default: $" + exec.EnvWorkerToken}
}

// coordinatorPortFlag is --coordinator-port of a command (worker, rank).
func coordinatorPortFlag(cmd string) cli.Flag {
	return &cli.IntFlag{Name: flagCoordinatorPort, Value: defaultCoordinatorPort, EnvVars: cliutil.Env(envPrefix, cmd+"-coordinator-port"),
		Usage: "the coordinator's port where the launcher gives only its host (" + envLWSLeader + ") or no address at all (rank 0 of vdexec rank without " + envMasterPort + ")"}
}

// workerCommand is the entry point of the worker processes: `vdexec run`
// starts them for transport tcp, one per stage device, or a cluster's
// launcher does, for `vdexec run --external-workers`.
func workerCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, true),
		ortLibFlag(),
		imagesFlag(),
		&cli.StringFlag{Name: flagPlan, EnvVars: cliutil.Env(envPrefix, "worker-plan"), Usage: "plan `FILE` (empty: the built-in plan), the coordinator's"},
		&cli.StringFlag{Name: flagDevice, EnvVars: cliutil.Env(envPrefix, "worker-device"), Usage: "the device `NAME` this worker runs (default: the stage device of the launcher's rank: " + envRank + ", " + envSlurmProcID + " or " + envLWSIndex + ")"},
		&cli.StringFlag{Name: flagCoordinator, Aliases: []string{flagRendezvous}, EnvVars: append(cliutil.Env(envPrefix, "worker-coordinator"), cliutil.Env(envPrefix, "worker-rendezvous")...),
			Usage: "the coordinator's `ADDR` (host:port; default: " + envMasterAddr + " at " + envMasterPort + ", the next port under torchrun, or " + envLWSLeader + " at --" + flagCoordinatorPort + ")"},
		coordinatorPortFlag("worker"),
		tokenFileFlag("worker"),
		&cli.DurationFlag{Name: flagTimeout, Value: exec.DefaultTimeout, EnvVars: cliutil.Env(envPrefix, "worker-timeout"), Usage: "how long to wait for the rendezvous (the coordinator is dialled again until then)"},
		backendFlag(),
	)
	flags = append(flags, ncclLibFlags()...)
	return &cli.Command{
		Name:  "worker",
		Usage: "run one stage of a plan as a worker of a coordinator (transport " + workerTransports() + ")",
		Description: "Started by `vdexec run` for plans with transport " + workerTransports() + ", one process per device; or, for " +
			"`vdexec run --external-workers`, by a cluster's launcher (Slurm, Kubernetes, torchrun): the device " +
			"then comes from the launcher's rank (rank r ≥ 1 runs the r-th stage device in plan order; rank 0 is " +
			"the coordinator) and the coordinator's address from its variables. The worker connects to the " +
			"coordinator, which checks the run's token and that both loaded the same plan (so a worker needs the coordinator's --" + flagBackend + ", " +
			"as the nccl or gloo it chose: `vdexec run` passes it to the workers it starts).",
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
			var planArgs []string
			if f := c.String(flagPlan); f != "" {
				planArgs = []string{f}
			}
			return startWorker(c, "worker", planArgs)
		},
	}
}

// hasRank reports whether a launcher's rank variable is set.
func hasRank(getenv func(string) string) bool {
	for _, s := range rankSources {
		if getenv(s.rank) != "" {
			return true
		}
	}
	return false
}

// workerAddr is the coordinator's address: --coordinator, else the
// launcher's variables.
func workerAddr(c *cli.Context, cmd string) (string, error) {
	if addr := c.String(flagCoordinator); c.IsSet(flagCoordinator) {
		if err := checkHostPort(addr); err != nil {
			return "", cliutil.Usage(fmt.Errorf("%s: %s %q: %w", cmd, cliutil.Source(c, flagCoordinator), addr, err))
		}
		return addr, nil
	}
	port := c.Int(flagCoordinatorPort)
	if port < 1 || port > 65535 {
		return "", cliutil.Usage(fmt.Errorf("%s: %s %d: want a port from 1 to 65535", cmd, cliutil.Source(c, flagCoordinatorPort), port))
	}
	addr, from, ok, err := coordinatorFromEnv(os.Getenv, port)
	switch {
	case err != nil:
		return "", cliutil.Usage(fmt.Errorf("%s: %w", cmd, err))
	case !ok:
		return "", nil
	}
	if err := checkHostPort(addr); err != nil {
		return "", cliutil.Usage(fmt.Errorf("%s: the coordinator from %s %q: %w", cmd, from, addr, err))
	}
	return addr, nil
}

// startWorker runs a worker (`vdexec worker`, or `vdexec rank` at a rank
// ≥ 1) of the plan in planArgs: the coordinator's address, the token and
// the device are checked before the plan and ONNX Runtime load.
func startWorker(c *cli.Context, cmd string, planArgs []string) error {
	if err := setNCCLLibs(c, cmd); err != nil {
		return err
	}
	if _, err := backendWord(c, cmd); err != nil {
		return err
	}
	addr, err := workerAddr(c, cmd)
	if err != nil {
		return err
	}
	devFlag := c.String(flagDevice)
	if addr == "" || (devFlag == "" && !hasRank(os.Getenv)) {
		return cliutil.Usage(fmt.Errorf("%s: --%s and --%s are required: the coordinator's HOST:PORT (alias --%s; or %s and %s from torchrun, or %s from a LeaderWorkerSet) and the device NAME (or a launcher's rank in %s, %s or %s); `vdexec run` starts its workers itself for transport %s",
			cmd, flagDevice, flagCoordinator, flagRendezvous, envMasterAddr, envMasterPort, envLWSLeader, envRank, envSlurmProcID, envLWSIndex, workerTransports()))
	}
	if err := checkTimeout(cmd, c); err != nil {
		return err
	}
	p, err := loadPlanArgs(c, planArgs)
	if err != nil {
		return err
	}
	if _, err := applyBackend(c, p, cmd); err != nil {
		return err
	}
	dev, err := workerDevice(os.Getenv, p, devFlag, "--"+flagDevice)
	if err != nil {
		return cliutil.Usage(fmt.Errorf("%s: %w", cmd, err))
	}
	if !runsStage(p, dev) {
		return fmt.Errorf("%s: device %q runs no stage of plan %s (its devices: %s)", cmd, dev, p.Name, deviceNames(p))
	}
	token, err := userToken(os.Getenv, c.String(flagTokenFile), "--"+flagTokenFile)
	if err != nil {
		return cliutil.Usage(fmt.Errorf("%s: %w", cmd, err))
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
		Token:      token,
	}
	if imgs != nil {
		cfg.Images, cfg.Conditioning = imgs.Image, imgs.Label
	}
	return exec.RunWorker(ctx, cfg)
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
