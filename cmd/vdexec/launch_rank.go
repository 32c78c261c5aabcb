package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
)

// rankCommand is the one command line that every rank of a cluster job
// runs (`vdexec launch` writes jobs that use it): rank 0 is the
// coordinator (`vdexec run --external-workers`), rank r ≥ 1 the worker of
// the r-th stage device.
func rankCommand() *cli.Command {
	var flags []cli.Flag
	for _, f := range runCommand().Flags {
		switch f.Names()[0] {
		case flagExternal: // a rank 0 always waits for external workers
		case flagTokenFile:
			flags = append(flags, tokenFileFlag("rank")) // $VDEXEC_RANK_TOKEN_FILE, as the jobs say
		default:
			flags = append(flags, f)
		}
	}
	flags = append(flags, coordinatorPortFlag("rank"))
	return &cli.Command{
		Name:      "rank",
		Usage:     "run one rank of a cluster job: the coordinator at rank 0, a stage's worker at the others",
		ArgsUsage: "[PLAN]",
		Description: "The rank comes from the launcher: " + envRank + " (torchrun), " + envLWSIndex + " (Kubernetes LeaderWorkerSet) or " +
			envSlurmProcID + " (Slurm srun), the first one set in that order. Rank 0 runs `vdexec run " +
			"--external-workers` with the same flags, listening on --listen (default: every interface, port " + envMasterPort +
			" (the next port under torchrun, whose own store holds " + envMasterPort + ") or --" + flagCoordinatorPort + "); rank r ≥ 1 runs `vdexec worker` for the r-th stage device in plan order, " +
			"dialling " + envMasterAddr + " at that port, or " + envLWSLeader + " and --" + flagCoordinatorPort +
			". Every rank needs the same token ($VDPP_WORKER_TOKEN or --" + flagTokenFile + "), and the same plan file, " +
			"model files and --out folder path (a shared file system: the decode stage's worker writes the sample folders, the coordinator the timeline).",
		Flags: flags,
		Action: func(c *cli.Context) error {
			args, err := cliutil.Positional(c)
			if err != nil {
				if cliutil.IsHelp(err) {
					return nil
				}
				return err
			}
			p, err := loadPlanArgs(c, args)
			if err != nil {
				return err
			}
			r, ok, err := rankFromEnv(os.Getenv, p)
			switch {
			case err != nil:
				return cliutil.Usage(fmt.Errorf("rank: %w", err))
			case !ok:
				return cliutil.Usage(fmt.Errorf("rank: no rank: run under a launcher that sets %s (torchrun), %s (srun) or %s (LeaderWorkerSet); `vdexec launch` writes such a job. By hand: `vdexec run --%s` and one `vdexec worker` per stage device", envRank, envSlurmProcID, envLWSIndex, flagExternal))
			}
			if r.rank > 0 {
				return startWorker(c, "rank", args)
			}
			listen := c.String(flagListen)
			if !c.IsSet(flagListen) {
				port, _, ok, err := masterPort(os.Getenv)
				if err != nil {
					return cliutil.Usage(fmt.Errorf("rank: %w", err))
				}
				if !ok {
					port = c.Int(flagCoordinatorPort)
				}
				listen = ":" + strconv.Itoa(port)
			}
			if err := checkListen(listen); err != nil {
				return cliutil.Usage(fmt.Errorf("rank: the coordinator's listen address %q: %w", listen, err))
			}
			return runPlanArgs(c, args, "rank", listen)
		},
	}
}
