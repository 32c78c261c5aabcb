// Package clitest runs the bad-input cases of vdsim and vdexec. Each case
// is one file in a folder (testdata/bad/*.txt): a header with the command
// line, the exit status it must give and fragments its output must hold,
// then the files it reads, each after a "-- NAME --" line:
//
//	# what the case is, and what went wrong before it was fixed
//	args: run $DIR/plan.yaml --samples 3
//	exit: 1
//	want: plan.yaml:4:11: devices[0].name
//	want: letters, digits
//	notwant: vdsim: vdsim
//	stdout: a fragment that must be on stdout
//	env: VDPP_ORT_LIB=
//	-- plan.yaml --
//	name: x
//	...
//
// $DIR in args, env, fragments and files stands for the case's temporary
// folder, where its files are written; $ROOT for the repository's root
// (configs/, models/ are under it). "want" fragments are looked for in stderr. Every case
// also must not panic, must not print more than MaxStderr bytes, and must
// say something on stderr when it fails.
package clitest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// MaxStderr bounds what a failing command may print: the first errors and
// a count, not a flood.
const MaxStderr = 16 << 10

// Case is one parsed case file.
type Case struct {
	Name    string
	Args    []string
	Exit    int
	Want    []string // on stderr
	NotWant []string // on neither stream
	Stdout  []string // on stdout
	Env     []string // KEY=VALUE
	Files   map[string][]byte
}

// Parse reads a case file.
func Parse(name string, data []byte) (*Case, error) {
	c := &Case{Name: name, Exit: -1, Files: map[string][]byte{}}
	var file string
	var body []string
	flush := func() {
		if file != "" {
			c.Files[file] = []byte(strings.Join(body, "\n"))
		}
	}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --") && len(line) > 6 {
			flush()
			file, body = strings.TrimSpace(line[3:len(line)-3]), nil
			continue
		}
		if file != "" {
			body = append(body, line)
			continue
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		val = strings.TrimSpace(val)
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY: VALUE or -- FILE --, got %q", name, i+1, line)
		}
		switch key {
		case "args":
			c.Args = strings.Fields(val)
		case "exit":
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: exit %q is not a number", name, i+1, val)
			}
			c.Exit = n
		case "want":
			c.Want = append(c.Want, val)
		case "notwant":
			c.NotWant = append(c.NotWant, val)
		case "stdout":
			c.Stdout = append(c.Stdout, val)
		case "env":
			c.Env = append(c.Env, val)
		default:
			return nil, fmt.Errorf("%s:%d: unknown key %q (want args, exit, want, notwant, stdout, env)", name, i+1, key)
		}
	}
	flush()
	if c.Exit < 0 {
		return nil, fmt.Errorf("%s: no exit: line", name)
	}
	if c.Exit != 0 && len(c.Want) == 0 {
		return nil, fmt.Errorf("%s: a failing case needs at least one want: fragment", name)
	}
	return c, nil
}

// Main runs a tool in-process with args (without the program name) and
// returns its exit status.
type Main func(args []string, stdout, stderr io.Writer) int

// Run runs every case file in dir (testdata/bad) as a subtest and returns
// how many there were. Cases run one after another: they may set
// environment variables.
func Run(t *testing.T, dir string, run Main) int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no case files in %s (%v)", dir, err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(filepath.Base(path), data)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(c.Name, ".txt"), func(t *testing.T) { c.run(t, run) })
	}
	return len(paths)
}

// root is the repository root: the nearest folder above the working
// directory with a go.mod.
func root(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the working directory")
		}
	}
}

func (c *Case) run(t *testing.T, run Main) {
	tmp := t.TempDir()
	expand := strings.NewReplacer("$DIR", tmp, "$ROOT", root(t)).Replace
	for name, data := range c.Files {
		data = []byte(expand(string(data)))
		path := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(expand(kv), "=")
		t.Setenv(k, v)
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = expand(a)
	}
	var stdout, stderr bytes.Buffer
	var code int
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%v: panic: %v", args, r)
			}
		}()
		code = run(args, &stdout, &stderr)
	}()
	errOut := stderr.String()
	show := func() string {
		return fmt.Sprintf("args %v\nstderr:\n%s\nstdout:\n%s", args, cut(errOut), cut(stdout.String()))
	}
	if code != c.Exit {
		t.Errorf("exit %d, want %d\n%s", code, c.Exit, show())
	}
	for _, w := range c.Want {
		if !strings.Contains(errOut, expand(w)) {
			t.Errorf("stderr lacks %q\n%s", w, show())
		}
	}
	for _, w := range c.Stdout {
		if !strings.Contains(stdout.String(), expand(w)) {
			t.Errorf("stdout lacks %q\n%s", w, show())
		}
	}
	for _, w := range append([]string{"panic", "goroutine "}, c.NotWant...) {
		if strings.Contains(errOut, w) || strings.Contains(stdout.String(), w) {
			t.Errorf("output holds %q\n%s", w, show())
		}
	}
	if code != 0 && strings.TrimSpace(errOut) == "" {
		t.Errorf("exit %d with nothing on stderr", code)
	}
	if len(errOut) > MaxStderr {
		t.Errorf("stderr is %d bytes, more than %d: bound what is printed", len(errOut), MaxStderr)
	}
}

func cut(s string) string {
	if len(s) > 4000 {
		return s[:4000] + fmt.Sprintf("\n... (%d bytes more)", len(s)-4000)
	}
	return s
}
