package timeline

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestJSONRoundTrip(t *testing.T) {
	for _, tl := range []*Timeline{pipeline3x4(), arrivals2(), {Meta: Meta{Plan: "empty", Source: "sim"}}} {
		tl.Meta.Versions = map[string]string{"go": "1.26", "ort": "1.24.3"}
		tl.Meta.Notes = []string{"a note"}
		var buf bytes.Buffer
		if err := Write(&buf, tl); err != nil {
			t.Fatal(err)
		}
		got, err := Read(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("%s: %v\n%s", tl.Meta.Plan, err, buf.String())
		}
		if len(tl.Spans) == 0 {
			// Empty slices decode as empty, not nil.
			tl.Spans, tl.Samples = got.Spans, got.Samples
			if len(got.Spans) != 0 || len(got.Samples) != 0 {
				t.Errorf("empty timeline decoded with %d spans", len(got.Spans))
			}
		}
		if !reflect.DeepEqual(got, tl) {
			t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", tl.Meta.Plan, got, tl)
		}
		var again bytes.Buffer
		if err := Write(&again, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Errorf("%s: second write differs from the first", tl.Meta.Plan)
		}
	}
}

func TestWriteFileReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	tl := arrivals2()
	if err := WriteFile(path, tl); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, tl); err != nil { // overwrite
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tl) {
		t.Error("file round trip differs")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the directory, want 1 (temporary file left behind?)", len(entries))
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.json"), tl); err == nil || !strings.HasPrefix(err.Error(), "timeline: ") {
		t.Errorf("write into a missing directory: %v", err)
	}
}

func TestReadRejects(t *testing.T) {
	good := `{"meta":{"plan":"p","source":"sim","devices":["d0"]},"spans":[SPAN],"samples":[SAMPLE]}`
	span := `{"device":"d0","kind":"step","samples":[0],"pipeline":0,"stage":0,"first_step":0,"last_step":1,"start_ns":0,"end_ns":5}`
	sample := `{"id":0,"pipeline":0,"release_ns":0,"done_ns":5}`
	mk := func(sp, sa string) string {
		return strings.NewReplacer("SPAN", sp, "SAMPLE", sa).Replace(good)
	}
	if _, err := Read(strings.NewReader(mk(span, sample))); err != nil {
		t.Fatalf("good input: %v", err)
	}
	cases := []struct{ name, in, want string }{
		{"end before start", mk(strings.Replace(span, `"end_ns":5`, `"end_ns":-1`, 1), sample), "end -1 ns is before start 0 ns"},
		{"unknown kind", mk(strings.Replace(span, `"step"`, `"nap"`, 1), sample), `unknown kind "nap"`},
		{"bad step range", mk(strings.Replace(span, `"last_step":1`, `"last_step":-1`, 1), sample), "step range 0..-1"},
		{"done before release", mk(span, strings.Replace(sample, `"release_ns":0`, `"release_ns":9`, 1)), "done 5 ns is before release 9 ns"},
		{"unknown field", mk(span, strings.Replace(sample, `"id"`, `"colour":1,"id"`, 1)), `unknown field "colour"`},
		{"empty device", mk(strings.Replace(span, `"d0"`, `""`, 1), sample), "empty device"},
		{"duplicate sample", mk(span, sample+","+sample), "recorded twice"},
		{"trailing data", mk(span, sample) + "{}", "unexpected data"},
		{"not json", "spans: []", "invalid character"},
	}
	for _, c := range cases {
		_, err := Read(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "timeline: read: ") {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// Several problems are reported together.
	bad := mk(strings.Replace(strings.Replace(span, `"step"`, `"nap"`, 1), `"end_ns":5`, `"end_ns":-1`, 1), sample)
	_, err := Read(strings.NewReader(bad))
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("two problems: %v", err)
	}
	// ReadFile names the file.
	path := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(path, []byte(bad), 0o644)
	_, err = ReadFile(path)
	if err == nil {
		t.Fatal("read file: no error")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, path+": ") {
			t.Errorf("read file: a line does not start with the file's name: %q", line)
		}
	}
}
