package plan

import (
	"fmt"
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return parse(data, path, filepath.Dir(path), nil)
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
	parseYAML(data, p, c)
	if len(c.errs) > 0 && len(p.pos) == 0 {
		return nil, c.err() // not YAML, or empty: nothing more to say
	}
	if p.Name == "" && name != "" {
		p.Name = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	}
	p.EnsureDefaults()
	p.validate(c)
	if p.Costs != "" {
		prof, err := loadProfile(p)
		if err != nil {
			if list, ok := err.(*Errors); ok {
				c.errs = append(c.errs, list.List...)
			} else {
				c.add("costs", "%v", strings.TrimPrefix(err.Error(), "plan: "))
			}
		} else {
			p.Profile = prof
			p.checkProfile(c)
		}
	}
	p.resolve(c)
	if p.Profile != nil && len(p.Pipelines) > 0 {
		p.checkLinks(c)
		p.checkMemory(c)
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: cost profile: %w", err)
	}
	return ParseProfile(data, path)
}

// ParseProfile is LoadProfile for a profile held in memory; name stands
// for the file in messages.
func ParseProfile(data []byte, name string) (*Profile, error) {
	prof := &Profile{File: name}
	c := newChecker(name, map[string]Pos{})
	parseYAML(data, prof, c)
	if len(c.errs) > 0 && len(c.pos) == 0 {
		return nil, c.err()
	}
	prof.validate(c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return prof, nil
}
