package plan

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits that keep a malformed or hostile file from asking for huge work.
const (
	maxDevices = 1024
	maxSteps   = 10000
)

// decoder fills Go values from a YAML node tree by their yaml tags, strictly:
// unknown fields, duplicate keys and wrong types are problems, reported
// with their position and field path, and decoding goes on past them so
// that every problem is found in one pass. It records the position of
// every field it sees, for later checks to point at.
type decoder struct {
	c *checker
}

// parseYAML parses data into a document's root node and decodes it into
// out (a pointer). Positions land in c.pos.
func parseYAML(data []byte, out any, c *checker) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		c.errs = append(c.errs, &Error{File: c.file, Pos: Pos{Line: yamlErrLine(err)}, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		return
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		c.errs = append(c.errs, &Error{File: c.file, Msg: "empty document"})
		return
	}
	d := &decoder{c: c}
	d.decode(doc.Content[0], reflect.ValueOf(out).Elem(), "")
}

// yamlErrLine finds "line N" in a yaml syntax error, or returns 0.
func yamlErrLine(err error) int {
	s := err.Error()
	i := strings.Index(s, "line ")
	if i < 0 {
		return 0
	}
	s = s[i+5:]
	j := 0
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(s[:j])
	return n
}

var devicesType = reflect.TypeOf(Devices(nil))

func (d *decoder) bad(n *yaml.Node, path, format string, args ...any) {
	d.c.errs = append(d.c.errs, &Error{File: d.c.file, Pos: Pos{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf(format, args...)})
	d.c.seen[path] = true
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > 16 {
			d.bad(n, path, "alias *%s cannot be resolved", n.Value)
			return
		}
		n = n.Alias
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
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Array:
		if n.Kind != yaml.SequenceNode || len(n.Content) != v.Len() {
			d.bad(n, path, "want a list of %d items, e.g. [0, 4], got %s", v.Len(), describeNode(n))
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
		sub := join(path, k.Value)
		if k.Value == "<<" {
			d.bad(k, sub, "merge keys (<<) are not supported; write the fields out")
			continue
		}
		fi, ok := fields[k.Value]
		if !ok {
			d.bad(k, sub, "unknown field %q%s; valid fields: %s", k.Value, suggest(k.Value, names), strings.Join(names, ", "))
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
			sub = join(path, k.Value)
		case reflect.Int:
			x, err := strconv.Atoi(k.Value)
			if err != nil || x < 1 {
				d.bad(k, path, "key %q must be a positive whole number (a micro-batch size)", k.Value)
				continue
			}
			key = reflect.ValueOf(x).Convert(kt)
			sub = fmt.Sprintf("%s[%d]", path, x)
		default:
			d.bad(k, path, "cannot decode keys of type %s", kt)
			continue
		}
		if seen[sub] {
			d.bad(k, sub, "key %q is given twice; keep one", k.Value)
			continue
		}
		seen[sub] = true
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
		if n.Tag != "!!int" || n.Decode(&x) != nil || v.OverflowInt(x) {
			d.bad(n, path, "want a whole number, got %s", describeNode(n))
			return
		}
		v.SetInt(x)
	case reflect.Uint64:
		var x uint64
		if n.Tag != "!!int" || n.Decode(&x) != nil {
			d.bad(n, path, "want a whole number ≥ 0, got %s", describeNode(n))
			return
		}
		v.SetUint(x)
	case reflect.Float64:
		var x float64
		if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&x) != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			d.bad(n, path, "want a finite number, got %s", describeNode(n))
			return
		}
		v.SetFloat(x)
	default:
		d.bad(n, path, "cannot decode into %s", v.Type())
	}
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
		return
	}
	prefix := "gpu"
	if s.Kind == "cpu" {
		prefix = "cpu"
	}
	devs := make(Devices, s.Count)
	for i := range devs {
		devs[i] = Device{Name: fmt.Sprintf("%s%d", prefix, i), Kind: s.Kind, MemoryGB: s.MemoryGB, NUMA: s.NUMA, Speed: s.Speed, Provider: s.Provider, Threads: s.Threads}
		item := fmt.Sprintf("%s[%d]", path, i)
		d.c.pos[item] = Pos{n.Line, n.Column}
		for _, f := range []string{"kind", "memory_gb", "numa", "speed", "provider", "threads"} {
			if p, ok := d.c.pos[join(path, f)]; ok {
				d.c.pos[join(item, f)] = p
			}
		}
	}
	v.Set(reflect.ValueOf(devs))
}

func join(path, field string) string {
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
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return fmt.Sprintf("the string %q", v)
		case "!!int":
			return "the whole number " + v
		case "!!float":
			return "the number " + v
		case "!!bool":
			return v
		}
		return fmt.Sprintf("%q", v)
	}
	return "an unknown node"
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
