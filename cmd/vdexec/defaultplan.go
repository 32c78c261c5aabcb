package main

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/vdpp/vdpp/plan"
)

// locateDefault returns the directory the embedded default plan's relative
// paths (../models/tiny/*.onnx) resolve against: the configs folder of the
// repository that holds the current directory (searched upwards) or the
// executable (bin/vdexec → ../configs). When none has the model files it
// returns "configs", so that messages name the path a user would expect.
func locateDefault() string {
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			roots = append(roots, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		roots = append(roots, filepath.Dir(filepath.Dir(exe)))
	}
	probe, err := probeDefault()
	if err == nil {
		for _, r := range roots {
			dir := filepath.Join(r, "configs")
			if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
				return dir
			}
		}
	}
	return "configs"
}

// defaultProbe is the UNet path of the embedded default plan, relative to
// its folder; loaded once.
var defaultProbe struct {
	once sync.Once
	path string
	err  error
}

// probeDefault returns the relative UNet path of the embedded plan.
func probeDefault() (string, error) {
	defaultProbe.once.Do(func() {
		p, err := plan.LoadFS(defaultPlan.FS, defaultPlan.Name)
		if err != nil {
			defaultProbe.err = err
			return
		}
		defaultProbe.path = p.Model.ONNX.UNet
	})
	return defaultProbe.path, defaultProbe.err
}
