package plan

import (
	"fmt"
	"io/fs"
	"path"
)

// LoadFS is Load for a plan stored in a file system, such as the plans a
// CLI embeds with go:embed so that it runs without a plan file. name is
// the plan's path in fsys (slash-separated); its cost profile resolves
// against the plan's directory in fsys, and is read from fsys too. The
// plan's File and the profile's File are their paths in fsys, and Dir is
// empty: other relative paths in the plan (onnx) resolve against the
// current directory, as for Parse.
func LoadFS(fsys fs.FS, name string) (*Plan, error) {
	data, err := readFS(fsys, name, "plan")
	if err != nil {
		return nil, err
	}
	return parse(data, name, "", func(p *Plan) (*Profile, error) {
		return loadProfileFS(fsys, path.Join(path.Dir(name), p.Costs))
	})
}

func loadProfileFS(fsys fs.FS, name string) (*Profile, error) {
	data, err := readFS(fsys, name, "cost profile")
	if err != nil {
		return nil, err
	}
	return ParseProfile(data, name)
}

// readFS is readFile for a file in fsys.
func readFS(fsys fs.FS, name, what string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, openError(what, err)
	}
	defer f.Close()
	return readLimited(f, name, what)
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
