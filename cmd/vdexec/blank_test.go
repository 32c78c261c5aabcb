package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
)

// TestBlankPaths: an output path of white space only (-o " ", --out "  ")
// was taken as a name, and profile wrote a file " " in the working
// folder. It is a usage error naming the flag, before any work. (Case
// files cannot hold such arguments: their args split at spaces.)
func TestBlankPaths(t *testing.T) {
	abs, err := filepath.Abs(planFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		env  string // VAR=VALUE, or ""
		args []string
		want string
	}{
		{"", []string{"profile", abs, "-o", " ", "--samples", "2", "--steps", "2", "--reps", "1", "--warmup", "0"}, `profile: --out is blank (white space only: " ")`},
		{"", []string{"run", abs, "--out", "  "}, `run: --out is blank (white space only: "  ")`},
		{"VDEXEC_OUT=\t", []string{"run", abs}, `run: VDEXEC_OUT is blank (white space only: "\t"; it sets --out)`},
	} {
		t.Run(strings.Join(tc.args[:1], " ")+tc.env, func(t *testing.T) {
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(k, v)
			}
			args := append([]string{"vdexec"}, tc.args...)
			var out, errw bytes.Buffer
			code := cliutil.Main(newApp(&out, &errw), args, &errw)
			if code != cliutil.ExitUsage || !strings.Contains(errw.String(), tc.want) {
				t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errw.String(), cliutil.ExitUsage, tc.want)
			}
			if strings.Contains(errw.String(), "profiling") || strings.Contains(errw.String(), "running") {
				t.Errorf("%q: started work before refusing:\n%s", tc.args, errw.String())
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 0 {
				t.Errorf("%q: wrote %s in the working folder", tc.args, ents[0].Name())
			}
		})
	}
}
