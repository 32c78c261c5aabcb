// Package outdir prepares the output folder of a vdpp run so that two runs
// never mix: a folder that already holds files is refused unless the user
// asks to replace it, and then only what vdpp wrote there is removed.
//
// Each run leaves a manifest (.vdpp-outputs) that names the tool and the
// patterns of what it writes (timeline.json, sample_*, ...). Replacing a
// folder removes the entries that an earlier run's manifest names,
// and leftover temporaries of a killed run (.NAME.tmp*); it refuses when
// anything else is there, so a user's own files are never deleted.
package outdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/vdpp/vdpp/internal/atomicfile"
)

// Manifest is the file that records what a vdpp run writes in its folder.
const Manifest = ".vdpp-outputs"

// Spec says who writes into a folder and what: the tool's name ("vdsim
// run") and the glob patterns (filepath.Match) of the entries it writes.
type Spec struct {
	Tool     string
	Patterns []string
}

// Prepared is what Prepare did: the temporaries and earlier outputs it
// removed, for the caller to report.
type Prepared struct {
	RemovedTemps   []string
	RemovedOutputs int
}

// Prepare makes dir ready for a run: it creates it if missing and checks
// that files can be written there. If dir holds entries other than
// leftover temporaries of killed runs, it refuses (replace false, and then
// it changes nothing) or removes what an earlier vdpp run wrote (replace
// true). Leftover temporaries are removed when it goes ahead. flag names the option the
// user passes to replace ("--replace"), for the message. The new manifest
// is written last, before the run writes anything.
func Prepare(dir string, replace bool, flag string, spec Spec) (Prepared, error) {
	var done Prepared
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return done, fmt.Errorf("output folder %s: %w", dir, atomicfile.Reason(err))
	}
	if err := Writable(dir); err != nil {
		return done, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return done, fmt.Errorf("output folder %s: %w", dir, atomicfile.Reason(err))
	}
	known := append(slices.Clone(spec.Patterns), readManifest(dir)...)
	var rest, temps []string
	for _, e := range entries {
		switch {
		case e.Name() == Manifest: // rewritten below; alone it leaves the folder empty
		case isTemp(e.Name(), known):
			temps = append(temps, e.Name())
		default:
			rest = append(rest, e.Name())
		}
	}
	var ours []string
	if len(rest) > 0 {
		if !replace {
			return done, fmt.Errorf("output folder %s is not empty (%s); pass %s to remove what an earlier vdpp run wrote there, or choose another folder",
				dir, list(rest), flag)
		}
		if ours, err = owned(dir, rest); err != nil {
			return done, err // nothing was removed
		}
	}
	for _, name := range temps {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return done, fmt.Errorf("output folder %s: remove leftover temporary %s: %w", dir, name, atomicfile.Reason(err))
		}
		done.RemovedTemps = append(done.RemovedTemps, name)
	}
	for _, name := range ours {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return done, fmt.Errorf("output folder %s: remove %s: %w", dir, name, atomicfile.Reason(err))
		}
		done.RemovedOutputs++
	}
	return done, atomicfile.Write(filepath.Join(dir, Manifest), []byte(spec.manifest()))
}

// readManifest returns the patterns of dir's manifest, or none.
func readManifest(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, Manifest))
	if err != nil {
		return nil
	}
	return parseManifest(string(data))
}

// owned checks that an earlier vdpp run wrote every entry of names (its
// manifest lists them) and returns them; otherwise it refuses, and the
// caller removes nothing.
func owned(dir string, names []string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, Manifest)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("output folder %s holds %s but no %s: it was not written by vdpp (or by a version before 2026-12), so nothing is removed; choose another folder or empty it yourself",
			dir, list(names), Manifest)
	} else if err != nil {
		return nil, fmt.Errorf("output folder %s: %w", dir, atomicfile.Reason(err))
	}
	patterns := readManifest(dir)
	var foreign []string
	for _, name := range names {
		if !matchAny(patterns, name) {
			foreign = append(foreign, name)
		}
	}
	if len(foreign) > 0 {
		return nil, fmt.Errorf("output folder %s holds %s that no vdpp run wrote (%s lists what it did); nothing is removed: move them or choose another folder",
			dir, list(foreign), Manifest)
	}
	return names, nil
}

// Writable checks that a file can be created in dir (an existing folder).
func Writable(dir string) error {
	f, err := os.CreateTemp(dir, ".vdpp-probe.tmp*")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", dir, atomicfile.Reason(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// CheckFile checks, before a long run, that path can later be written as a
// file: it is not a folder nor another file that is not a regular one (a
// device such as /dev/null, a FIFO, a socket: atomicfile.Write would
// replace it), and its folder exists (or can be made) and is writable. It
// creates the folder but no file.
func CheckFile(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a folder; give a file name (for example %s)", path, filepath.Join(path, "profile.yaml"))
	}
	if err := atomicfile.CheckReplaceable(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot make the folder of %s: %w", path, atomicfile.Reason(err))
	}
	return Writable(dir)
}

// CheckNewFile is CheckFile that also refuses an existing file unless
// replace is true; flag names the option that allows it ("--replace"),
// for the message.
func CheckNewFile(path string, replace bool, flag string) error {
	if err := CheckFile(path); err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil && !replace {
		return fmt.Errorf("%s already exists; pass %s to overwrite it, or give another file name", path, flag)
	}
	return nil
}

// isTemp reports whether name is a temporary that a killed vdpp run left:
// "." + an output's name + ".tmp" + digits, as atomicfile writes a file
// (.timeline.json.tmp123) and a sample writer a folder
// (.sample_00001.tmp123), where the output's name matches one of
// patterns, is the manifest, or is the writability probe. Any other
// hidden file (a user's .tmp folder, .env.tmpl) is not one.
func isTemp(name string, patterns []string) bool {
	base, digits, ok := strings.Cut(strings.TrimPrefix(name, "."), ".tmp")
	if !ok || !strings.HasPrefix(name, ".") || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return false
	}
	return base == Manifest || base == "vdpp-probe" || matchAny(patterns, base)
}

func (s Spec) manifest() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by %s: what it writes in this folder; `--replace` removes only these\n", s.Tool)
	for _, p := range s.Patterns {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return b.String()
}

func parseManifest(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// list names up to five entries and counts the rest.
func list(names []string) string {
	sort.Strings(names)
	if len(names) <= 5 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
}

// Lines says what Prepare removed from dir, one line each (none when it
// removed nothing), for the tool to print on stderr.
func (d Prepared) Lines(dir string) []string {
	var out []string
	if n := d.RemovedOutputs; n > 0 {
		out = append(out, fmt.Sprintf("--replace: removed %d entries that an earlier run wrote in %s", n, dir))
	}
	if t := d.RemovedTemps; len(t) > 0 {
		out = append(out, fmt.Sprintf("removed %d leftover temporaries of a killed run from %s: %s", len(t), dir, list(t)))
	}
	return out
}
