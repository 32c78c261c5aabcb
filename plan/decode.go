package plan

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits that keep a malformed or hostile file from asking for huge work.
const (
	maxDevices = 1024
	maxSteps   = 10000
	// MaxFileBytes is the largest plan or cost profile file read, checked
	// before parsing: the largest real plan is a few KiB.
	MaxFileBytes = 1 << 20
	// maxNodes bounds the values a document decodes to, aliases expanded
	// (an alias of an alias of a list can ask for millions).
	maxNodes = 100000
	// maxList bounds the items of one list.
	maxList = 4096
)

// decoder fills Go values from a YAML node tree by their yaml tags, strictly:
// unknown fields, duplicate keys and wrong types are problems, reported
// with their position and field path, and decoding goes on past them so
// that every problem is found in one pass. It records the position of
// every field it sees, for later checks to point at.
type decoder struct {
	c     *checker
	out   any  // what is decoded into (*Plan, *Profile), for examples
	nodes int  // values decoded so far
	stop  bool // past maxNodes: decode nothing more
}

// parseYAML parses data into a document's root node and decodes it into
// out (a pointer). Positions land in c.pos. what names the kind of file
// ("plan", "cost profile") in messages. The file must be one YAML document
// holding a mapping, at most MaxFileBytes long.
func parseYAML(data []byte, out any, c *checker, what string) {
	if len(data) > MaxFileBytes {
		c.push(&Error{File: c.file, Msg: tooBig(what, int64(len(data)))})
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			c.push(&Error{File: c.file, Msg: "empty document"})
			return
		}
		line, col, msg := yamlErrPos(data, err)
		c.push(&Error{File: c.file, Pos: Pos{line, col}, Msg: "not valid YAML: " + msg})
		return
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		c.push(&Error{File: c.file, Msg: "empty document"})
		return
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		c.push(&Error{File: c.file, Pos: Pos{root.Line, root.Column}, Msg: fmt.Sprintf("not a %s: want a YAML mapping of fields (field: value), got %s", what, describeShape(root))})
		return
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		line, col, msg := yamlErrPos(data, err)
		c.push(&Error{File: c.file, Pos: Pos{line, col}, Msg: "not valid YAML after the first document: " + msg})
	case len(next.Content) > 0 && !isNull(next.Content[0]):
		c.push(&Error{File: c.file, Pos: Pos{next.Line, next.Column}, Msg: fmt.Sprintf("a second YAML document starts here (after ---); a %s is one document: remove the second one or put it in its own file", what)})
	}
	d := &decoder{c: c, out: out}
	d.decode(root, reflect.ValueOf(out).Elem(), "")
}

// tooBig is the message for a file over MaxFileBytes.
func tooBig(what string, size int64) string {
	return fmt.Sprintf("file is %d bytes; a %s is at most %d bytes (1 MiB)", size, what, MaxFileBytes)
}

// yamlErrPos finds the line of a YAML syntax error and works out a
// column, which the library does not give. The library's "line N" is
// 1-based for the scanner's errors and 0-based for the parser's ("did not
// find expected ...", "found duplicate ..."), where it is the line the
// construct being parsed starts on; it leaves the line out when it would
// be 0, which for the scanner is line 1 and for the parser says nothing
// useful (no position is given then). The column is the offending
// character for "found character that cannot start any token" (a tab, @
// or `) and for a tab, the colon for "mapping values are not allowed"
// (the second "key:" on the line, else the first), else the first
// character of the line that is not a blank. It returns the message
// without the library's "yaml: line N: " prefix.
func yamlErrPos(data []byte, err error) (line, col int, msg string) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	n := -1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if v, err := strconv.Atoi(rest[:j]); err == nil && strings.HasPrefix(rest[j:], ": ") {
			n, msg = v, rest[j+2:]
		}
	}
	parser := strings.HasPrefix(msg, "did not find expected") || strings.HasPrefix(msg, "found duplicate") ||
		strings.HasPrefix(msg, "found incompatible") || strings.HasPrefix(msg, "found undefined")
	switch {
	case parser && n < 0:
		return 0, 0, msg
	case parser:
		line = n + 1
	case n < 0:
		line = 1
	default:
		line = n
	}
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return line, 0, msg
	}
	text := string(lines[line-1])
	col = strings.IndexFunc(text, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' }) + 1
	switch {
	case strings.Contains(msg, "tab character"):
		// The library names the line before the tab at times: look at
		// the line it names and the next one.
		for l := line; l <= line+1 && l <= len(lines); l++ {
			if i := bytes.IndexByte(lines[l-1], '\t'); i >= 0 {
				return l, i + 1, msg
			}
		}
	case strings.Contains(msg, "cannot start any token"):
		if i := strings.IndexAny(text, "\t@`"); i >= 0 {
			col = i + 1
		}
	case strings.Contains(msg, "mapping values are not allowed"):
		var colons []int
		for i := 0; i < len(text); i++ {
			if text[i] == ':' && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\t') {
				colons = append(colons, i)
			}
		}
		if len(colons) >= 2 {
			col = colons[1] + 1
		} else if len(colons) == 1 {
			col = colons[0] + 1
		}
	}
	if col < 1 {
		col = 0
	}
	return line, col, msg
}

var devicesType = reflect.TypeOf(Devices(nil))

func (d *decoder) bad(n *yaml.Node, path, format string, args ...any) {
	d.c.seen[path] = true
	d.c.undecoded[path] = true
	if d.c.full() {
		d.c.more++ // past MaxErrors: count, do not format
		return
	}
	d.c.push(&Error{File: d.c.file, Pos: Pos{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.stop {
		return
	}
	if d.nodes++; d.nodes > maxNodes {
		d.stop = true
		d.bad(n, path, "the document holds more than %d values (aliases counted as what they repeat); a plan or profile needs far fewer", maxNodes)
		return
	}
	if n.Kind == yaml.AliasNode {
		// A problem with what an alias stands for is reported where the
		// alias is written, not at its anchor (which may be fine where it
		// is): decode a copy of the anchored node placed at the alias.
		alias := n
		for hops := 0; n.Kind == yaml.AliasNode; hops++ {
			if n.Alias == nil || hops > 16 {
				d.bad(alias, path, "alias *%s cannot be resolved", alias.Value)
				return
			}
			n = n.Alias
		}
		at := *n
		at.Line, at.Column = alias.Line, alias.Column
		n = &at
	}
	d.c.pos[path] = Pos{n.Line, n.Column}
	if v.Type() == devicesType && n.Kind == yaml.MappingNode {
		d.deviceShortForm(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		// "cfg: false" reads as no cfg, like leaving it out.
		if isNull(n) || (n.Kind == yaml.ScalarNode && n.Tag == "!!bool" && strings.EqualFold(n.Value, "false")) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			v.SetZero()
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.bad(n, path, "want a list, got %s", describeNode(n))
			return
		}
		if len(n.Content) > maxList {
			d.bad(n, path, "a list of %d items; at most %d", len(n.Content), maxList)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Array:
		if n.Kind != yaml.SequenceNode || len(n.Content) != v.Len() {
			d.bad(n, path, "want a list of %d items, e.g. %s, got %s", v.Len(), d.pairExample(v), describeNode(n))
			return
		}
		for i, item := range n.Content {
			d.decode(item, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// pairExample is an example of a pair v could hold: a step range
// ([0, 13]), or two device names for a pair of names (a link's between),
// the plan's first and last devices when they are already decoded.
func (d *decoder) pairExample(v reflect.Value) string {
	if v.Type().Elem().Kind() != reflect.String {
		return "[0, 13]"
	}
	if p, ok := d.out.(*Plan); ok && len(p.Devices) >= 2 {
		a, b := p.Devices[0].Name, p.Devices[len(p.Devices)-1].Name
		if nameProblem(a, MaxNameLen, false) == "" && nameProblem(b, MaxNameLen, false) == "" {
			return "[" + a + ", " + b + "]"
		}
	}
	return "[gpu0, gpu1]"
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			return // an empty section: everything takes its default
		}
		d.bad(n, path, "want a mapping (field: value), got %s", describeNode(n))
		return
	}
	fields := map[string]int{}
	var names []string
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !t.Field(i).IsExported() {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.bad(k, path, "a field name must be a plain word, got %s", describeNode(k))
			continue
		}
		sub := join(path, pathKey(k.Value))
		if k.Value == "<<" {
			d.bad(k, sub, "merge keys (<<) are not supported; write the fields out")
			continue
		}
		fi, ok := fields[k.Value]
		if !ok {
			if d.c.full() {
				d.c.more++
				continue
			}
			d.bad(k, sub, "unknown field %s%s; valid fields: %s", fragment(k.Value), suggest(k.Value, names), strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			d.bad(k, sub, "field %q is given twice; keep one", k.Value)
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(fi), sub)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.bad(n, path, "want a mapping (key: value), got %s", describeNode(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	kt, et := v.Type().Key(), v.Type().Elem()
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.bad(k, path, "a key must be a plain value, got %s", describeNode(k))
			continue
		}
		var key reflect.Value
		var sub string
		switch kt.Kind() {
		case reflect.String:
			key = reflect.ValueOf(k.Value).Convert(kt)
			sub = join(path, pathKey(k.Value))
		case reflect.Int:
			x, err := strconv.Atoi(k.Value)
			if err != nil || x < 1 || x > maxMicroBatch {
				d.bad(k, path, "key %s must be a whole number from 1 to %d (a micro-batch size)", fragment(k.Value), maxMicroBatch)
				continue
			}
			key = reflect.ValueOf(x).Convert(kt)
			sub = fmt.Sprintf("%s[%d]", path, x)
		default:
			d.bad(k, path, "cannot decode keys of type %s", kt)
			continue
		}
		if seen[sub] {
			d.bad(k, sub, "key %s is given twice; keep one", fragment(k.Value))
			continue
		}
		seen[sub] = true
		if path == "transports" && d.c.doc == "profile" && !Transport(k.Value).Valid() {
			// Reported at the key, and left out of the map: hop costs
			// look a transport up by the plan's transport, so any other
			// key would never be used.
			d.bad(k, sub, "%s", unknownTransport(k.Value))
			continue
		}
		e := reflect.New(et).Elem()
		d.decode(val, e, sub)
		v.SetMapIndex(key, e)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.bad(n, path, "want %s, got %s", kindWord(v.Kind()), describeNode(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.bad(n, path, "want true or false, got %s", describeNode(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		var x int64
		if leadingZero(n, path, d) {
			return
		}
		if n.Tag != "!!int" || n.Decode(&x) != nil || v.OverflowInt(x) {
			d.bad(n, path, "want a whole number, got %s", describeNode(n))
			return
		}
		v.SetInt(x)
	case reflect.Uint64:
		var x uint64
		if leadingZero(n, path, d) {
			return
		}
		if n.Tag != "!!int" || n.Decode(&x) != nil {
			d.bad(n, path, "want a whole number ≥ 0, got %s", describeNode(n))
			return
		}
		v.SetUint(x)
	case reflect.Float64:
		var x float64
		if leadingZero(n, path, d) {
			return
		}
		if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&x) != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			d.bad(n, path, "want a finite number, got %s", describeNode(n))
			return
		}
		v.SetFloat(x)
	default:
		d.bad(n, path, "cannot decode into %s", v.Type())
	}
}

// leadingZero reports (and returns true for) a whole number written with
// a leading zero: YAML reads 010 as octal 8 and 0010 too, which nobody
// writing a step count or a frame count means. 0x10 and 0o10 say their
// base and are left alone; 09, which is not octal, is read as 9 but is
// refused the same way, so that a number never depends on its digits.
func leadingZero(n *yaml.Node, path string, d *decoder) bool {
	s := n.Value
	sign := ""
	if s != "" && (s[0] == '-' || s[0] == '+') {
		sign, s = s[:1], s[1:]
	}
	if len(s) < 2 || s[0] != '0' || (n.Tag != "!!int" && n.Tag != "!!float") {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	dec := strings.TrimLeft(s, "0")
	if dec == "" {
		dec = "0"
	}
	if sign == "-" && dec != "0" {
		dec = "-" + dec
	}
	if x, err := strconv.ParseInt(sign+s, 8, 64); err == nil && n.Tag == "!!int" && strconv.FormatInt(x, 10) != dec {
		d.bad(n, path, "got %s: write %s; a leading zero would be read as octal %d", fragment(n.Value), dec, x)
	} else {
		d.bad(n, path, "got %s: write %s without the leading zero (YAML reads 010 as octal 8)", fragment(n.Value), dec)
	}
	return true
}

// deviceShort is the short form of the device list.
type deviceShort struct {
	Count    int      `yaml:"count"`
	Kind     string   `yaml:"kind"`
	MemoryGB float64  `yaml:"memory_gb"`
	NUMA     int      `yaml:"numa"`
	Speed    float64  `yaml:"speed"`
	Provider Provider `yaml:"provider"`
	Threads  int      `yaml:"threads"`
	Host     string   `yaml:"host"`
}

// deviceShortForm expands {count: N, kind: K, ...} into N devices named
// gpu0..gpuN-1 (cpu0..cpuN-1 for kind cpu). Each device's fields point at
// the short form's lines.
func (d *decoder) deviceShortForm(n *yaml.Node, v reflect.Value, path string) {
	var s deviceShort
	d.decodeStruct(n, reflect.ValueOf(&s).Elem(), path)
	if s.Count < 1 || s.Count > maxDevices {
		if !d.c.seen[join(path, "count")] {
			d.c.add(join(path, "count"), "want a device count from 1 to %d, got %d", maxDevices, s.Count)
		}
		// The list is what the count said: no "devices: missing" after.
		d.c.seen[path], d.c.undecoded[path] = true, true
		return
	}
	prefix := "gpu"
	if s.Kind == "cpu" {
		prefix = "cpu"
	}
	devs := make(Devices, s.Count)
	for i := range devs {
		devs[i] = Device{Name: fmt.Sprintf("%s%d", prefix, i), Kind: s.Kind, MemoryGB: s.MemoryGB, NUMA: s.NUMA, Speed: s.Speed, Provider: s.Provider, Threads: s.Threads, Host: s.Host}
		item := fmt.Sprintf("%s[%d]", path, i)
		d.c.pos[item] = Pos{n.Line, n.Column}
		for _, f := range []string{"kind", "memory_gb", "numa", "speed", "provider", "threads", "host"} {
			if p, ok := d.c.pos[join(path, f)]; ok {
				d.c.pos[join(item, f)] = p
			}
		}
	}
	v.Set(reflect.ValueOf(devs))
}

// pathKey is a key as a field path shows it: the key itself when it is a
// valid name, else a short quoted fragment in brackets (["a5000\nx"]), so
// that a path never carries a newline or a long stretch of the file.
func pathKey(k string) string {
	if nameProblem(k, MaxNameLen, false) == "" {
		return k
	}
	return "[" + fragment(k) + "]"
}

func join(path, field string) string {
	if strings.HasPrefix(field, "[") {
		return path + field
	}
	if path == "" {
		return field
	}
	return path + "." + field
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindWord(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Uint64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	}
	return "a value"
}

// describeNode says what a node is, for "want X, got Y" messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return fmt.Sprintf("a list of %d items", len(n.Content))
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return "the string " + fragment(n.Value)
		case "!!int":
			return "the whole number " + fragment(n.Value)
		case "!!float":
			return "the number " + fragment(n.Value)
		case "!!bool":
			return fragment(n.Value)
		}
		return fragment(n.Value)
	}
	return "an unknown node"
}

// describeShape says what a node is without quoting it: for a document
// that is not a plan at all (a passwd file, a binary), whose text is not
// echoed back.
func describeShape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return fmt.Sprintf("a list of %d items", len(n.Content))
	case yaml.ScalarNode:
		return fmt.Sprintf("a single value of %d characters", utf8.RuneCountInString(n.Value))
	}
	return describeNode(n)
}

// maxFragment is how many characters of a user's text a message quotes.
const maxFragment = 32

// fragment quotes s for a message: at most maxFragment characters, cut
// with "…", control and non-printing characters escaped (%q), so that a
// message never carries a long stretch, a newline or a terminal escape
// from the user's file.
func fragment(s string) string {
	if utf8.RuneCountInString(s) > maxFragment {
		r := []rune(s)
		return strconv.Quote(string(r[:maxFragment])) + "…"
	}
	return strconv.Quote(s)
}

// suggest returns ` (did you mean "x"?)` for the closest field name within
// a small edit distance, or "".
func suggest(got string, names []string) string {
	best, bestD := "", 3
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if dd := editDistance(got, n); dd < bestD {
			best, bestD = n, dd
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
