package cliutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/plan"
)

// Flag names of the what-if overrides.
const (
	FlagSamples     = "samples"
	FlagSteps       = "steps"
	FlagDevices     = "devices"
	FlagMicroBatch  = "micro-batch"
	FlagReplicas    = "replicas"
	FlagSeed        = "seed"
	FlagLatentShape = "latent-shape"
	FlagCosts       = "costs"
)

// Env returns the environment variable of a flag: PREFIX_NAME with the
// name in upper case and dashes as underscores (VDSIM_MICRO_BATCH).
func Env(prefix, name string) []string {
	b := []byte(prefix + "_" + name)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return []string{string(b)}
}

// WhatIfFlags are the flags that change a loaded plan for a quick what-if
// (see Overrides), with the reference tool's names as aliases
// (--num-samples, --total-steps, --latent-shape). withLayout adds
// --devices and --replicas (a sweep sets those itself). Environment
// variables are PREFIX_SAMPLES and so on.
func WhatIfFlags(prefix string, withLayout bool) []cli.Flag {
	fs := []cli.Flag{
		&cli.IntFlag{Name: FlagSamples, Aliases: []string{"num-samples"}, EnvVars: Env(prefix, FlagSamples), Usage: "number of samples (overrides workload.samples)"},
		&cli.IntFlag{Name: FlagSteps, Aliases: []string{"total-steps"}, EnvVars: Env(prefix, FlagSteps), Usage: "sampler steps (overrides sampler.steps)"},
		&cli.IntFlag{Name: FlagMicroBatch, EnvVars: Env(prefix, FlagMicroBatch), Usage: "samples per micro-batch (overrides layout.micro_batch)"},
		&cli.Uint64Flag{Name: FlagSeed, EnvVars: Env(prefix, FlagSeed), Usage: "workload seed (arrivals, jitter)"},
		&cli.StringFlag{Name: FlagLatentShape, EnvVars: Env(prefix, FlagLatentShape), Usage: "latent shape `\"B C F H W\"`: micro-batch, channels, frames, latent height, latent width (the cost profile must match)"},
		&cli.StringFlag{Name: FlagCosts, EnvVars: Env(prefix, FlagCosts), Usage: "cost profile `FILE` to use instead of the plan's costs"},
	}
	if withLayout {
		fs = append(fs,
			&cli.IntFlag{Name: FlagDevices, EnvVars: Env(prefix, FlagDevices), Usage: "number of devices: keep the first N, or add copies of the first (devices must be alike)"},
			&cli.IntFlag{Name: FlagReplicas, EnvVars: Env(prefix, FlagReplicas), Usage: "independent pipelines sharing the devices (devices/replicas stages each)"},
		)
	}
	return fs
}

// Overrides reads the what-if flags that are set (on the command line or
// in the environment) into plan.Overrides. It also checks that a cost
// profile given with --costs exists, naming where the name came from
// ("VDSIM_COSTS (--costs): cost profile "/nope": no such file or
// directory"); LoadPlan reads it.
func Overrides(c *cli.Context) (plan.Overrides, error) {
	var o plan.Overrides
	intFlag := func(name string) *int {
		if !c.IsSet(name) {
			return nil
		}
		v := c.Int(name)
		return &v
	}
	o.Samples = intFlag(FlagSamples)
	o.Steps = intFlag(FlagSteps)
	o.MicroBatch = intFlag(FlagMicroBatch)
	if _, ok := lookup(c.Command.Flags, FlagDevices).(*cli.IntFlag); ok {
		o.Devices = intFlag(FlagDevices)
		o.Replicas = intFlag(FlagReplicas)
	}
	if c.IsSet(FlagSeed) {
		v := c.Uint64(FlagSeed)
		o.Seed = &v
	}
	if c.IsSet(FlagLatentShape) {
		sh, err := ParseShape(c.String(FlagLatentShape))
		if err != nil {
			return o, Usage(flagError(c, fmt.Errorf("%s: %w", Source(c, FlagLatentShape), err)))
		}
		if o.MicroBatch != nil && *o.MicroBatch != sh[0] {
			return o, Usage(flagError(c, fmt.Errorf("%s %d disagrees with B = %d of %s; give one of them",
				Source(c, FlagMicroBatch), *o.MicroBatch, sh[0], Source(c, FlagLatentShape))))
		}
		o.LatentShape = &sh
	}
	if err := o.Check(); err != nil {
		return o, Usage(flagError(c, err))
	}
	if c.IsSet(FlagCosts) {
		// LoadPlan reads the profile; a file that is not there is named
		// here, with where its name came from (VDSIM_COSTS or --costs).
		if err := checkProfileFile(c.String(FlagCosts)); err != nil {
			return o, fmt.Errorf("%s: %w", Source(c, FlagCosts), err)
		}
	}
	return o, nil
}

// checkProfileFile checks that the cost profile path names a file that
// exists and is not a folder: `cost profile "PATH": no such file or
// directory`. Reading and checking it is LoadPlan's.
func checkProfileFile(path string) error {
	if path == "" {
		return nil // checkEmpty has refused an empty --costs
	}
	fi, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cost profile %q: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("cost profile %q is a folder; give the profile's YAML file", path)
	}
	return nil
}

// flagError turns the plan's problems with flag values ("plan: --samples
// 0: must be at least 1") into one usage error naming the command:
// "run: --samples 0: must be at least 1 (see 'vdsim run --help')".
func flagError(c *cli.Context, err error) error {
	cmd := "command"
	if c.Command != nil {
		cmd = c.Command.Name
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = cmd + ": " + strings.TrimPrefix(l, "plan: ")
	}
	return fmt.Errorf("%s (see '%s %s --help')", strings.Join(lines, "\n"), appName(c), cmd)
}
