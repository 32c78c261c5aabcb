package plan

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads a plan from a YAML file, fills defaults, validates it, loads
// its cost profile when Costs is set, checks the profile against the plan
// and resolves the layout. Relative paths in the plan (costs, onnx) resolve
// against the file's directory. All problems found are returned together
// as a *Errors.
func Load(path string) (*Plan, error) {
	data, err := readFile(path, "plan")
	if err != nil {
		return nil, err
	}
	return parse(data, path, filepath.Dir(path), nil)
}

// readFile reads a plan or profile file (what says which), refusing one
// over MaxFileBytes before reading it: its size when the file system
// knows it, else what was read past the limit.
func readFile(path, what string) ([]byte, error) {
	// Opening a named pipe waits for a writer, maybe for ever: refuse one
	// before opening it. /dev/stdin and /dev/fd/N (a shell's <(...)) are
	// pipes too, but ones the user has just set up to be read.
	if st, err := os.Stat(path); err == nil && st.Mode()&fs.ModeNamedPipe != 0 && !streamPath(path) {
		return nil, &Errors{List: []*Error{{Doc: docWord(what), File: path,
			Msg: fmt.Sprintf("is a named pipe (FIFO), which would block until something writes to it; give the %s as a regular file (or as <(command) or /dev/stdin to read a stream)", what)}}}
	} else if err == nil && st.IsDir() {
		return nil, &Errors{List: []*Error{{Doc: docWord(what), File: path,
			Msg: fmt.Sprintf("is a folder; give the %s's YAML file", what)}}}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(what, err)
	}
	defer f.Close()
	return readLimited(f, path, what)
}

// streamPath reports whether path names a stream the process was handed:
// /dev/stdin, or a descriptor under /dev/fd or /proc/self/fd.
func streamPath(path string) bool {
	clean := filepath.Clean(path)
	return clean == "/dev/stdin" || strings.HasPrefix(clean, "/dev/fd/") || strings.HasPrefix(clean, "/proc/self/fd/")
}

// readLimited reads f up to MaxFileBytes; see readFile.
func readLimited(f fs.File, name, what string) ([]byte, error) {
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileBytes {
		return nil, &Errors{List: []*Error{{Doc: docWord(what), File: name, Msg: tooBig(what, st.Size())}}}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", docWord(what), name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, &Errors{List: []*Error{{Doc: docWord(what), File: name, Msg: fmt.Sprintf("file is more than %d bytes (1 MiB), the most a %s may be", MaxFileBytes, what)}}}
	}
	return data, nil
}

// openError is the error of a plan or profile file that cannot be read:
// `plan: open "FILE": ...` or `cost profile: open "FILE": ...`, the name
// quoted (it may hold spaces, or be nothing but spaces).
func openError(what string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %s %q: %w", what, pe.Op, pe.Path, pe.Err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// docWord is the word that starts a message about a file of kind what.
func docWord(what string) string {
	if what == "plan" {
		return "plan"
	}
	return "profile"
}

// Parse is Load for a plan held in memory (the CLIs embed a default plan).
// name stands for the file in messages; relative paths resolve against the
// current directory.
func Parse(data []byte, name string) (*Plan, error) {
	return parse(data, name, "", nil)
}

// parse does the work of Load, Parse and LoadFS. loadProfile reads the
// profile a plan names; nil reads it from the OS file system at p.Path.
func parse(data []byte, name, dir string, loadProfile func(p *Plan) (*Profile, error)) (*Plan, error) {
	if loadProfile == nil {
		loadProfile = func(p *Plan) (*Profile, error) { return LoadProfile(p.Path(p.Costs)) }
	}
	p := &Plan{File: name, Dir: dir, pos: map[string]Pos{}}
	c := newChecker(name, p.pos)
	parseYAML(data, p, c, "plan")
	if len(c.errs) > 0 && len(p.pos) == 0 {
		return nil, c.err() // not YAML, or empty: nothing more to say
	}
	if _, written := p.pos["name"]; !written && name != "" {
		p.Name = nameFromFile(name)
	}
	p.EnsureDefaults()
	p.validate(c)
	if p.Costs != "" {
		prof, err := loadProfile(p)
		if err != nil {
			c.merge("costs", err)
		} else {
			p.Profile = prof
			p.checkProfile(c)
		}
	}
	p.resolve(c)
	if p.Profile != nil && len(p.Pipelines) > 0 {
		p.checkLinks(c)
		p.checkMemory(c)
		p.checkTimes(c)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// Path resolves a path written in the plan (costs, onnx files) against the
// plan file's directory. Absolute paths and plans parsed from bytes return
// the path unchanged.
func (p *Plan) Path(rel string) string {
	if rel == "" || filepath.IsAbs(rel) || p.Dir == "" {
		return rel
	}
	return filepath.Join(p.Dir, rel)
}

// LoadProfile reads a cost profile from a YAML file and validates it:
// unknown fields, wrong types, missing provenance and impossible costs are
// errors with file:line:col and field path, all reported together.
func LoadProfile(path string) (*Profile, error) {
	data, err := readFile(path, "cost profile")
	if err != nil {
		return nil, err
	}
	return ParseProfile(data, path)
}

// ParseProfile is LoadProfile for a profile held in memory; name stands
// for the file in messages.
func ParseProfile(data []byte, name string) (*Profile, error) {
	prof := &Profile{File: name}
	c := newChecker(name, map[string]Pos{})
	c.doc = "profile"
	parseYAML(data, prof, c, "cost profile")
	if len(c.errs) > 0 && len(c.pos) == 0 {
		return nil, c.err()
	}
	prof.validate(c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return prof, nil
}
