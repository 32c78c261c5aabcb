// Package atomicfile writes files so that a reader never sees a partial one:
// the data goes to a temporary file in the same directory, which is then
// renamed into place. Every output of vdpp (timelines, charts, reports,
// profiles, videos, the generated models) is written through it.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes data to path atomically, with mode 0644. On error nothing is
// left behind and an existing file at path is unchanged. An existing path
// that is not a regular file (a folder, device such as /dev/null, FIFO or
// socket) is refused: the rename would replace it with a regular file.
func Write(path string, data []byte) error {
	if err := CheckReplaceable(path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CheckReplaceable returns an error if path exists (following symbolic
// links) and is not a regular file, saying what it is; nil if path does
// not exist or is a regular file. Write calls it; callers use it to refuse
// such a path before a long run.
func CheckReplaceable(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().IsRegular() {
		return nil // missing (or unreadable: the write says why)
	}
	return fmt.Errorf("%s is %s, not a regular file: refusing to replace it; give the name of a new or regular file", path, Kind(fi.Mode()))
}

// Reason is the reason of a *fs.PathError (its Err), for messages that
// quote the path themselves; other errors come back as they are.
func Reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Kind names what a file mode is: "a folder", "a device", "a FIFO (named
// pipe)", "a socket" or "not a regular file".
func Kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&os.ModeDevice != 0, m&os.ModeCharDevice != 0:
		return "a device"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a regular file"
	}
	return "a special file"
}
