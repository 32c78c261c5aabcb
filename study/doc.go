// Package study derives answers from simulations: a plan simulated with its
// metrics, the data-parallel baseline on the same devices, a sweep over
// device counts and layouts, hindsight (the plan simulated again with the
// costs a measured run spent) and the comparison of a prediction with a
// measurement. The command-line tools only parse flags, call it and print;
// a layout search belongs here too.
//
// Like the simulator it drives, a study is pure: no clock, no global random
// source, nothing printed or written (CompareFiles only reads the two
// timelines it is given). Where a result carries a date (a hindsight
// profile's provenance), the caller passes it. Same inputs, same results.
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
// Compare a prediction with a measurement of the same plan, with the
// baseline and the hindsight simulation a report shows beside them:
//
//	c, err := study.CompareFiles("predicted/timeline.json", "measured/timeline.json", p, time.Now())
package study
