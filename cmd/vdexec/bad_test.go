package main

import (
	"io"
	"testing"

	"github.com/vdpp/vdpp/cmd/internal/clitest"
	"github.com/vdpp/vdpp/cmd/internal/cliutil"
)

// TestBadInputs runs every case in testdata/bad: a command line with the
// files it reads, the exit status and the message fragments it must give.
// Each case is a bad input that once exited 0 with nonsense, hung, or said
// too little; see clitest for the file format.
func TestBadInputs(t *testing.T) {
	clitest.Run(t, "testdata/bad", func(args []string, stdout, stderr io.Writer) int {
		return cliutil.Main(newApp(stdout, stderr), append([]string{"vdexec"}, args...), stderr)
	})
}
