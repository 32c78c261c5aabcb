// Package study derives answers from simulations: a plan simulated with its
// metrics, the data-parallel baseline on the same devices, a sweep over
// device counts and layouts, hindsight (the plan simulated again with the
// costs a measured run spent) and the comparison of a prediction with a
// measurement. The command-line tools only parse flags, call it and print;
// a layout search belongs here too.
//
// Like the simulator it drives, a study is pure: no clock, no global random
// source, nothing printed or written (CompareFiles only reads the two
// timelines it is given, and ReadCalRuns its runs). Where a result
// carries a date (a hindsight or calibrated profile's provenance), the
// caller passes it. Same inputs, same results.
//
// Simulate a plan and compare it with data parallel on the same devices:
//
//	p, err := plan.Load("configs/svd-14f-320x576-7xa5000.yaml")
//	if err != nil {
//		return err
//	}
//	run, err := study.Simulate(p, false) // true keeps the full timeline
//	if err != nil {
//		return err
//	}
//	dp, why := study.Baseline(p, false)
//	if dp == nil {
//		fmt.Println("no data-parallel baseline:", why)
//		return nil
//	}
//	for _, c := range timeline.Columns() {
//		fmt.Println(c.Label, c.Text(&run.Metrics), c.Text(&dp.Metrics))
//	}
//
// Sweep device counts and layouts:
//
//	res, err := study.Sweep(p, []int{1, 2, 4, 8}, []study.LayoutKind{study.LayoutPipeline, study.LayoutDataParallel})
//
// Calibrate fits a cost profile to measured end-to-end runs (vdexec
// metrics.json files, or CSV rows from another tool's benchmark: see
// ReadCalRuns): step cost, warm-up, per-sample overhead, per-hop cost and
// set-up (CalParam), by bounded least squares over simulations of each
// run, so that the fitted profile predicts with the very model it was
// fitted with. It prints nothing: it returns every run's fitted metrics
// and signed relative residual, and each parameter's value, standard
// error, and whether the runs could identify it. A parameter they cannot
// (one no run depends on, or one whose effect others match: runs of one
// device count cannot separate per-hop from per-sample cost) is kept at
// its starting value, and Why says so. Tested by recovery: runs simulated
// from a known profile on 1–4 devices with 1% noise give back every
// parameter within 20% of its true value or half a step's cost, and the
// fitted profile predicts 5- and 6-device layouts' first-sample latency
// and throughput within 3%.
//
//	runs, notes, err := study.ReadCalRuns("bench.csv", p.Sampler.Steps)
//	cal, err := study.Calibrate(p, runs, study.CalibrateOptions{Date: time.Now(), Inputs: []string{"bench.csv"}})
//
// Compare a prediction with a measurement of the same plan, with the
// baseline and the hindsight simulation a report shows beside them:
//
//	c, err := study.CompareFiles("predicted/timeline.json", "measured/timeline.json", p, time.Now())
package study
