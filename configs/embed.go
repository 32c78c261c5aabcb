// Package configs holds the example plans and cost profiles, embedded so
// that the CLIs run without a plan file (see Default). The files themselves
// are the documentation: each plan and profile says what it is and where
// its numbers came from.
package configs

import "embed"

// FS holds every plan (*.yaml) and cost profile (profiles/*.yaml) of this
// folder, with their paths relative to it. Load them with plan.LoadFS.
//
//go:embed *.yaml profiles/*.yaml
var FS embed.FS

// Default is the plan vdsim uses when none is given: SVD, 14 frames at
// 320×576, 28 steps as a step pipeline over 7 RTX A5000, with its
// (published) cost profile, so it runs on any machine.
const Default = "svd-14f-320x576-7xa5000.yaml"
