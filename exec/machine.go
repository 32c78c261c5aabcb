package exec

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/vdpp/vdpp/plan"
)

// Machine describes this machine for timelines and profiles: the CPU model
// (from /proc/cpuinfo where there is one) and the number of logical cores.
func Machine() string {
	model := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if model == "" {
		model = runtime.GOARCH + " CPU"
	}
	return fmt.Sprintf("%s, %d cores, %s/%s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}

// defaultImages is the conditioning of a plan without an Images hook.
func defaultImages(p *plan.Plan) (func(int) ([]float32, error), func(int) string, error) {
	if p.Model.Family == "tiny" {
		return tinyImages(p)
	}
	return nil, nil, fmt.Errorf("exec: plan %s: model family %q needs conditioning images (Options.Images); only family tiny has built-in ones", p.Name, p.Model.Family)
}
