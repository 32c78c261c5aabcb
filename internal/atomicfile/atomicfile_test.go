package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "new" {
		t.Fatalf("read back %q, %v; want \"new\"", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries in the directory, want only the file (no temporary left)", len(entries))
	}
	if err := Write(filepath.Join(dir, "missing", "b.txt"), []byte("x")); err == nil {
		t.Error("write into a missing directory: no error")
	}
}

// TestWriteRefusesSpecial: a write over a FIFO (as over /dev/null, which
// `vdexec profile -o /dev/null` once replaced with a regular file) or a
// folder is refused and the path left as it was.
func TestWriteRefusesSpecial(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{fifo: "FIFO", sub: "folder"} {
		err := Write(path, []byte("x"))
		if err == nil {
			t.Errorf("Write(%s): no error", path)
		} else if !strings.Contains(err.Error(), kind) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Write(%s): %v; want it to say %s and not a regular file", path, err, kind)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().IsRegular() {
			t.Errorf("%s was replaced by a regular file", path)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d entries in the directory, want 2 (no temporary left)", len(entries))
	}
}

func TestReason(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := os.Open(missing)
	got := Reason(err)
	if !errors.Is(got, fs.ErrNotExist) || strings.Contains(got.Error(), missing) {
		t.Errorf("Reason(%v) = %v: want the reason without the path", err, got)
	}
	plain := errors.New("plain")
	if Reason(plain) != plain {
		t.Error("Reason changed an error that is not a path error")
	}
}
