// Command vdsim predicts what a diffusion-step pipeline plan will do before
// anyone books GPUs: first-sample latency, steady-state throughput, bubbles,
// memory, and how the layout compares with plain data parallelism, from a
// discrete-event simulation over a cost profile.
//
//	vdsim validate [PLAN]            check a plan and print its resolved layout
//	vdsim run [PLAN] [--out DIR]     simulate it (and data parallel on the same devices)
//	vdsim sweep [PLAN] --devices 1,2,4,7
//	vdsim search [PLAN] --goal throughput|latency|rate|devices [--out DIR]
//	vdsim compare PREDICTED.json MEASURED.json [--plan PLAN] [--out DIR]
//	vdsim calibrate [PLAN] RUNS... [--out profile.yaml]   fit a profile to measured runs
//
// Without PLAN, validate, run, sweep and search use the built-in reference plan (SVD,
// 14 frames at 320×576 on 7 RTX A5000, with published costs). Every flag
// can also be set by an environment variable (VDSIM_SAMPLES, ...), and
// flags may come before or after the plan file.
package main

import (
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/configs"
	"github.com/vdpp/vdpp/plan"
)

const envPrefix = "VDSIM"

// defaultPlan is the embedded plan used when no plan file is given.
var defaultPlan = &cliutil.DefaultPlan{
	FS:   configs.FS,
	Name: configs.Default,
	Note: "vdsim: no plan file given; using the built-in reference plan configs/" + configs.Default +
		" (SVD 14 frames 320×576, 28 steps, 7 × RTX A5000, published costs)",
}

// newApp builds the vdsim app writing to stdout and stderr; tests run it
// in-process with their own writers.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := cliutil.NewApp("vdsim", "predict what a diffusion-step pipeline plan will do (discrete-event simulation)", stdout, stderr)
	app.Description = "Flags may come before or after the plan file. Without a plan file, validate, run, sweep and search use the built-in reference plan " +
		configs.Default + ". Every flag has an environment variable (shown in [brackets])."
	app.Commands = []*cli.Command{
		validateCommand(),
		runCommand(),
		sweepCommand(),
		searchCommand(),
		compareCommand(),
		calibrateCommand(),
	}
	if err := cliutil.Finish(app); err != nil {
		panic(err) // a programming error in the flag definitions, caught by the tests
	}
	return app
}

func main() {
	os.Exit(cliutil.Main(newApp(os.Stdout, os.Stderr), os.Args, os.Stderr))
}

// withPlan makes the action of a command that takes one plan: it loads
// the plan (with --costs and the what-if flags applied) and calls act, or
// returns quietly when the user asked for help.
func withPlan(act func(c *cli.Context, p *plan.Plan) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, err := loadPlan(c)
		if err != nil {
			if cliutil.IsHelp(err) {
				return nil
			}
			return err
		}
		return act(c, p)
	}
}

// loadPlan reads the positional arguments (parsing flags written after
// them) and loads the plan with --costs and the what-if overrides applied.
func loadPlan(c *cli.Context) (p *plan.Plan, err error) {
	args, err := cliutil.Positional(c)
	if err != nil {
		return nil, err
	}
	o, err := cliutil.Overrides(c)
	if err != nil {
		return nil, err
	}
	p, err = cliutil.LoadPlan(args, defaultPlan, c.String(cliutil.FlagCosts), c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	if err := cliutil.Apply(p, o, c.App.ErrWriter); err != nil {
		return nil, err
	}
	return p, nil
}
