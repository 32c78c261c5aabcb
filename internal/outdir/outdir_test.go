package outdir

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

var spec = Spec{Tool: "test", Patterns: []string{"timeline.json", "sample-*"}}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestPrepare(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := Prepare(dir, false, "--replace", spec); err != nil {
		t.Fatalf("new folder: %v", err)
	}
	if !exists(filepath.Join(dir, Manifest)) {
		t.Fatal("no manifest written")
	}
	// A first run wrote its outputs, and a killed one left a temporary.
	touch(t, filepath.Join(dir, "timeline.json"))
	touch(t, filepath.Join(dir, "sample-000001", "video.npy"))
	touch(t, filepath.Join(dir, ".sample-000002.tmp123", "video.npy"))
	if _, err := Prepare(dir, false, "--replace", spec); err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("reuse without replace: %v", err)
	}
	if !exists(filepath.Join(dir, "timeline.json")) {
		t.Fatal("refusal removed an output")
	}
	got, err := Prepare(dir, true, "--replace", spec)
	if err != nil {
		t.Fatalf("replace: %v", err)
	}
	if got.RemovedOutputs != 2 || exists(filepath.Join(dir, "timeline.json")) || exists(filepath.Join(dir, "sample-000001")) {
		t.Errorf("replace removed %d entries; timeline left %v", got.RemovedOutputs, exists(filepath.Join(dir, "timeline.json")))
	}
	if lines := got.Lines(dir); len(lines) != 2 || !strings.Contains(lines[0], "removed 2 entries") || !strings.Contains(lines[1], ".sample-000002.tmp123") {
		t.Errorf("report of what was removed: %q", lines)
	}
	// A folder that holds only the manifest (a run stopped before it wrote
	// anything) counts as empty.
	if _, err := Prepare(dir, false, "--replace", spec); err != nil {
		t.Errorf("folder with only a manifest: %v", err)
	}
	// A user's own file is never removed, and stops the replace.
	touch(t, filepath.Join(dir, "notes.txt"))
	touch(t, filepath.Join(dir, "timeline.json"))
	if _, err := Prepare(dir, true, "--replace", spec); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("foreign file: %v", err)
	}
	if !exists(filepath.Join(dir, "notes.txt")) || !exists(filepath.Join(dir, "timeline.json")) {
		t.Error("a refused replace removed files")
	}
	// A folder that no vdpp run wrote is left alone.
	other := t.TempDir()
	touch(t, filepath.Join(other, "timeline.json"))
	if _, err := Prepare(other, true, "--replace", spec); err == nil || !strings.Contains(err.Error(), Manifest) {
		t.Fatalf("no manifest: %v", err)
	}
}

func TestPrepareTemps(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, ".timeline.json.tmp42"))
	got, err := Prepare(dir, false, "--replace", spec)
	if err != nil || len(got.RemovedTemps) != 1 || exists(filepath.Join(dir, ".timeline.json.tmp42")) {
		t.Fatalf("temps: %+v, %v", got, err)
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	if err := CheckFile(dir); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("folder: %v", err)
	}
	if err := CheckFile(filepath.Join(dir, "sub", "p.yaml")); err != nil {
		t.Errorf("new file in a new folder: %v", err)
	}
	if os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		if err := CheckFile(filepath.Join(ro, "p.yaml")); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("read-only folder: %v", err)
		}
		if _, err := Prepare(ro, false, "--replace", spec); err == nil {
			t.Error("Prepare of a read-only folder: no error")
		}
	}
}

// TestCheckFileSpecial: a FIFO (as /dev/null, which `vdexec profile -o
// /dev/null` once replaced with a regular file) is refused before a run.
func TestCheckFileSpecial(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	err := CheckFile(fifo)
	if err == nil || !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), fifo) {
		t.Errorf("CheckFile(FIFO): %v; want an error naming it as a FIFO", err)
	}
	if err := CheckNewFile(fifo, true, "--replace"); err == nil {
		t.Error("CheckNewFile(FIFO, replace): no error")
	}
}

// TestCheckNewFile: an existing file is refused unless replace, naming the
// file and the flag; a new one is fine.
func TestCheckNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := CheckNewFile(path, false, "--replace"); err != nil {
		t.Errorf("new file: %v", err)
	}
	if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckNewFile(path, false, "--replace")
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--replace") {
		t.Errorf("existing file: %v; want an error naming it and --replace", err)
	}
	if err := CheckNewFile(path, true, "--replace"); err != nil {
		t.Errorf("existing file with replace: %v", err)
	}
}

// TestPrepareKeepsHiddenFiles: hidden files that are not a vdpp run's
// temporaries (a user's .tmp folder, .env.tmpl) are the user's: a folder
// holding them is refused, and a refused replace removes nothing, not
// even real temporaries.
func TestPrepareKeepsHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, ".tmp", "notes.txt"))
	touch(t, filepath.Join(dir, ".env.tmpl"))
	if _, err := Prepare(dir, false, "--replace", spec); err == nil || !strings.Contains(err.Error(), ".env.tmpl") {
		t.Fatalf("hidden user files: %v", err)
	}
	touch(t, filepath.Join(dir, ".timeline.json.tmp42"))
	if _, err := Prepare(dir, true, "--replace", spec); err == nil {
		t.Fatal("replace of a folder no vdpp run wrote: no error")
	}
	for _, name := range []string{".tmp/notes.txt", ".env.tmpl", ".timeline.json.tmp42"} {
		if !exists(filepath.Join(dir, name)) {
			t.Errorf("a refused Prepare removed %s", name)
		}
	}
	for _, c := range []struct {
		name string
		temp bool
	}{{".timeline.json.tmp42", true}, {".sample-000002.tmp7", true}, {"..vdpp-outputs.tmp1", true}, {".vdpp-probe.tmp9", true},
		{".tmp", false}, {".env.tmpl", false}, {".notes.txt.tmp1", false}, {".timeline.json.tmp", false}, {"timeline.json.tmp1", false}} {
		if got := isTemp(c.name, spec.Patterns); got != c.temp {
			t.Errorf("isTemp(%q) = %v, want %v", c.name, got, c.temp)
		}
	}
}
