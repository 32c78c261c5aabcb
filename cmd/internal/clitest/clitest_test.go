package clitest

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c, err := Parse("x.txt", []byte("# note\nargs: run $DIR/p.yaml --samples 3\nexit: 1\nwant: a: b\nenv: K=V\n-- p.yaml --\nname: p\nsteps: 3\n-- q/r.txt --\nx\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Args, "|") != "run|$DIR/p.yaml|--samples|3" || c.Exit != 1 || len(c.Want) != 1 || c.Want[0] != "a: b" || c.Env[0] != "K=V" {
		t.Errorf("parsed %+v", c)
	}
	if string(c.Files["p.yaml"]) != "name: p\nsteps: 3" || string(c.Files["q/r.txt"]) != "x\n" {
		t.Errorf("files %q", c.Files)
	}
	for _, bad := range []string{"args: x\n", "args: x\nexit: 1\n", "args: x\nexit: one\nwant: y\n", "nokey\nexit: 0\n", "size: 3\nexit: 0\n"} {
		if _, err := Parse("bad.txt", []byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
