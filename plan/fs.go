package plan

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// LoadFS is Load for a plan stored in a file system, such as the plans a
// CLI embeds with go:embed so that it runs without a plan file. name is
// the plan's path in fsys (slash-separated); its cost profile resolves
// against the plan's directory in fsys, and is read from fsys too. The
// plan's File and the profile's File are their paths in fsys, and Dir is
// empty: other relative paths in the plan (onnx) resolve against the
// current directory, as for Parse.
func LoadFS(fsys fs.FS, name string) (*Plan, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	// The same steps as parse, with the profile read from fsys.
	p := &Plan{File: name, pos: map[string]Pos{}}
	c := newChecker(name, p.pos)
	parseYAML(data, p, c)
	if len(c.errs) > 0 && len(p.pos) == 0 {
		return nil, c.err()
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(path.Base(name), path.Ext(name))
	}
	p.EnsureDefaults()
	p.validate(c)
	if p.Costs != "" {
		prof, err := loadProfileFS(fsys, path.Join(path.Dir(name), p.Costs))
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

func loadProfileFS(fsys fs.FS, name string) (*Profile, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("plan: cost profile: %w", err)
	}
	return ParseProfile(data, name)
}

// SetProfile replaces the plan's cost profile with prof (read from the
// file named costs, as a --costs flag gives it), checks it against the
// plan and resolves the layout again (a balanced layout depends on the
// costs). On error the plan is left as it was.
func (p *Plan) SetProfile(costs string, prof *Profile) error {
	if prof == nil {
		return fmt.Errorf("plan: set profile: nil profile")
	}
	q := p.Clone()
	q.Costs, q.Profile = costs, prof
	if err := q.recheck(); err != nil {
		return err
	}
	*p = *q
	return nil
}
