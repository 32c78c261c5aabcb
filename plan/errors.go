package plan

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a YAML file, 1-based. The zero Pos means unknown.
type Pos struct {
	Line, Col int
}

// Error is one problem in a plan or a cost profile: where it is (file,
// line, column), which field (a path such as layout.stages[2].steps), and
// what is wrong and what would be right.
type Error struct {
	File string // file name, or the name given to Parse
	Pos  Pos    // zero when the problem has no place in a file
	Path string // field path; "" for the document as a whole
	Msg  string
}

// Error formats the problem as "plan: FILE:LINE:COL: PATH: MSG".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("plan: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Pos.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Pos.Line)
			if e.Pos.Col > 0 {
				fmt.Fprintf(&b, ":%d", e.Pos.Col)
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a plan (and its cost profile), so that
// a user fixes them all in one pass. Load, Parse, LoadProfile, ParseProfile,
// Validate and Resolve return a *Errors when they find problems.
type Errors struct {
	List []*Error
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, x := range e.List {
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as errors, for errors.As and errors.Is.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, x := range e.List {
		out[i] = x
	}
	return out
}

// checker collects problems with their positions. It reports at most one
// problem per field path, so that a later check of the same field (Resolve
// after Validate, say) does not repeat what is already known.
type checker struct {
	file string
	pos  map[string]Pos
	errs []*Error
	seen map[string]bool
}

func newChecker(file string, pos map[string]Pos) *checker {
	return &checker{file: file, pos: pos, seen: map[string]bool{}}
}

// at returns the position of path, or of its nearest ancestor that has one
// (a missing field is reported at the mapping that should hold it).
func (c *checker) at(path string) Pos {
	for {
		if p, ok := c.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return c.pos[""]
		}
		path = path[:i]
	}
}

// has reports whether path was written in the source.
func (c *checker) has(path string) bool {
	_, ok := c.pos[path]
	return ok
}

func (c *checker) add(path, format string, args ...any) {
	if c.seen[path] {
		return
	}
	c.seen[path] = true
	c.errs = append(c.errs, &Error{File: c.file, Pos: c.at(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// err returns the collected problems sorted by file (in order of first
// appearance), line and column, or nil when there are none.
func (c *checker) err() error {
	return errorList(c.errs)
}

func errorList(list []*Error) error {
	if len(list) == 0 {
		return nil
	}
	order := map[string]int{}
	for _, e := range list {
		if _, ok := order[e.File]; !ok {
			order[e.File] = len(order)
		}
	}
	out := append([]*Error(nil), list...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if order[a.File] != order[b.File] {
			return order[a.File] < order[b.File]
		}
		// Problems without a position go after those with one.
		if (a.Pos.Line == 0) != (b.Pos.Line == 0) {
			return b.Pos.Line == 0
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Pos.Col < b.Pos.Col
	})
	return &Errors{List: out}
}
