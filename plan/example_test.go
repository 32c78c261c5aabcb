package plan_test

import (
	"fmt"
	"os"

	"github.com/vdpp/vdpp/plan"
)

func ExampleParse() {
	p, err := plan.Parse([]byte(`
name: demo
model: {family: tiny, frames: 8, latent: {channels: 4, height: 16, width: 16}}
sampler: {steps: 28}
devices: {count: 3, kind: cpu}
workload: {samples: 12}
`), "demo.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Describe(os.Stdout)
	// Output:
	// plan demo (demo.yaml)
	//   model     tiny, 8 frames, latent 4×16×16, fp32, cfg off
	//   sampler   euler-karras, 28 steps, sigma 0.002..700, rho 7
	//   devices   3 × cpu (cpu0..cpu2)
	//   layout    1 pipeline(s) × 3 stage(s), assignment even, micro-batch 1, encode on first, decode on last, handoff blocking
	//   workload  12 samples, arrival batch (all released at once), seed 0; transport inproc
	//   costs     none (no stage times)
	//
	// pipeline 0
	//   stage  device  kind  steps   count  work         next hop
	//   0      cpu0    cpu   0..9    10     encode+unet  default → cpu1
	//   1      cpu1    cpu   10..18  9      unet         default → cpu2
	//   2      cpu2    cpu   19..27  9      unet+decode  -
}

func ExampleParse_errors() {
	_, err := plan.Parse([]byte(`name: bad
model: {family: svd, frames: 14, latent: {channels: 4, height: 40, width: 72}}
sampler: {steps: 0}
devices: {count: 2, kind: a5000}
workload: {samples: 10, arrival: {kind: poisson, rate: -1}, sed: 4}
`), "bad.yaml")
	fmt.Println(err)
	// Output:
	// plan: bad.yaml:3:18: sampler.steps: must be at least 1, got 0
	// plan: bad.yaml:5:56: workload.arrival.rate: poisson arrivals need rate > 0 (samples per second), got -1
	// plan: bad.yaml:5:61: workload.sed: unknown field "sed" (did you mean "seed"?); valid fields: samples, arrival, seed
}
