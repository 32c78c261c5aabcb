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
	// Doc is what the file is: "plan" (also when empty) or "profile" (a
	// cost profile). It starts the message.
	Doc  string
	File string // file name, or the name given to Parse
	Pos  Pos    // zero when the problem has no place in a file
	// Flag is the what-if override that set the field ("--samples 0"),
	// when the value came from a command-line flag and not from the file;
	// the message then names the flag instead of a place in the file.
	Flag string
	Path string // field path; "" for the document as a whole
	Msg  string
}

// Error formats the problem as "plan: FILE:LINE:COL: PATH: MSG" (or
// "profile: ..." for a cost profile, and "plan: --FLAG VALUE: PATH: MSG"
// for a value a what-if flag set).
func (e *Error) Error() string {
	var b strings.Builder
	if e.Doc == "" {
		b.WriteString("plan: ")
	} else {
		b.WriteString(e.Doc + ": ")
	}
	if e.Flag != "" {
		b.WriteString(e.Flag)
		b.WriteString(": ")
	} else if e.File != "" {
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

// MaxErrors is how many problems a *Errors lists at most. Past it the
// checks only count (Errors.More), so that a file with a million bad
// fields costs neither a million messages nor the work of writing them.
const MaxErrors = 40

// Errors is every problem found in a plan (and its cost profile), so that
// a user fixes them all in one pass. Load, Parse, LoadProfile, ParseProfile,
// Validate and Resolve return a *Errors when they find problems. It lists
// at most MaxErrors of them; More counts the rest.
type Errors struct {
	List []*Error
	More int // problems found past MaxErrors, not listed
}

// Error prints one problem per line, then "... and N more problems" when
// there were more than MaxErrors.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List), len(e.List)+1)
	for i, x := range e.List {
		lines[i] = x.Error()
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("... and %d more %s (fix the ones above first)", e.More, plural(e.More, "problem", "problems")))
	}
	return strings.Join(lines, "\n")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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
	doc  string // "" (plan) or "profile", for Error.Doc
	file string
	pos  map[string]Pos
	// over maps the field paths that what-if flags set to the flag
	// ("--samples 0"): problems there name the flag (Plan.Apply).
	over map[string]string
	errs []*Error
	more int // problems past MaxErrors, counted only
	seen map[string]bool
	// undecoded holds the paths whose value could not be decoded (a wrong
	// type, a bad count): what is under them holds zero values that
	// nobody wrote, so later checks say nothing about them.
	undecoded map[string]bool
}

func newChecker(file string, pos map[string]Pos) *checker {
	return &checker{file: file, pos: pos, seen: map[string]bool{}, undecoded: map[string]bool{}}
}

// reported reports whether a problem was reported on path or on a field
// under it ("model" covers model.frames and model.latent.width).
func (c *checker) reported(path string) bool {
	for p := range c.seen {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// inUndecoded reports whether path or one of its ancestors could not be
// decoded.
func (c *checker) inUndecoded(path string) bool {
	if len(c.undecoded) == 0 {
		return false
	}
	for {
		if c.undecoded[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return c.undecoded[""]
		}
		path = path[:i]
	}
}

// shortPath maps the path of a field of one device (devices[3].memory_gb)
// to the field of the short form the list came from (devices.memory_gb),
// when the plan wrote {count: N, ...}: every device then has the same
// value, written once, and a problem with it is reported once, there.
func (c *checker) shortPath(path string) string {
	if c.doc != "" || !strings.HasPrefix(path, "devices[") || !c.has("devices.count") {
		return path
	}
	i := strings.IndexByte(path, ']')
	if i < 0 {
		return path
	}
	return "devices" + path[i+1:]
}

// full reports whether the checker holds MaxErrors problems; a caller
// then counts a further problem (c.more++) instead of describing it.
func (c *checker) full() bool { return len(c.errs) >= MaxErrors }

// push adds a problem, or counts it when the list is full.
func (c *checker) push(e *Error) {
	if c.full() {
		c.more++
		return
	}
	if e.Doc == "" {
		e.Doc = c.doc
	}
	c.errs = append(c.errs, e)
}

// merge adds the problems of err (a *Errors from another checker, such as
// the profile's) or, for any other error, one problem on path.
func (c *checker) merge(path string, err error) {
	list, ok := err.(*Errors)
	if !ok {
		c.add(path, "%s", strings.TrimPrefix(err.Error(), "plan: "))
		return
	}
	for _, e := range list.List {
		c.push(e)
	}
	c.more += list.More
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
	path = c.shortPath(path)
	if c.seen[path] {
		return
	}
	c.seen[path] = true
	if c.inUndecoded(path) {
		return // a follow-on of a value already reported
	}
	if c.full() {
		c.more++
		return
	}
	if flag, ok := c.over[path]; ok {
		c.push(&Error{Flag: flag, Path: path, Msg: fmt.Sprintf(format, args...)})
		return
	}
	c.push(&Error{File: c.file, Pos: c.at(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// err returns the collected problems sorted by file (in order of first
// appearance), line and column, or nil when there are none.
func (c *checker) err() error {
	return errorList(c.errs, c.more)
}

func errorList(list []*Error, more int) error {
	if len(list) == 0 && more == 0 {
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
	return &Errors{List: out, More: more}
}
