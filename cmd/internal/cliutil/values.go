package cliutil

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Flag values are checked here, before urfave/cli sees them, for two
// reasons. Go's flag package parses whole numbers with base 0 (010 is
// octal 8, 0x10 is 16), and urfave/cli's Base field only applies to
// values from the environment. And a value that does not parse fails in
// different places (urfave/cli's usage error before the plan file, a
// plain error after it): here it is one usage error naming the flag,
// wherever the flag is written.

// valueProblem checks value for flag f. It returns the value to use (a
// whole number in canonical decimal: 010 becomes 10) or why the value is
// wrong, as "want ..." ("" when it is fine). Flags of other types pass.
func valueProblem(f cli.Flag, value string) (canon, problem string) {
	switch f.(type) {
	case *cli.IntFlag, *cli.Int64Flag:
		bits := 64
		if _, ok := f.(*cli.IntFlag); ok {
			bits = strconv.IntSize
		}
		if !decimal(value, true) {
			return value, "want a whole number written in decimal digits, such as 10"
		}
		x, err := strconv.ParseInt(value, 10, bits)
		if err != nil {
			if value[0] == '-' {
				return value, fmt.Sprintf("too small: a whole number here is at least %d", int64(-1)<<(bits-1))
			}
			return value, fmt.Sprintf("too large: a whole number here is at most %d", int64(^uint64(0)>>(65-bits)))
		}
		return strconv.FormatInt(x, 10), ""
	case *cli.UintFlag, *cli.Uint64Flag:
		bits := 64
		if _, ok := f.(*cli.UintFlag); ok {
			bits = strconv.IntSize
		}
		if !decimal(value, false) {
			return value, "want a whole number ≥ 0 written in decimal digits, such as 42"
		}
		x, err := strconv.ParseUint(value, 10, bits)
		if err != nil {
			return value, fmt.Sprintf("too large: a whole number here is at most %d", ^uint64(0)>>(64-bits))
		}
		return strconv.FormatUint(x, 10), ""
	case *cli.BoolFlag:
		if _, err := strconv.ParseBool(value); err != nil {
			return value, "want true or false"
		}
	case *cli.DurationFlag:
		if _, err := time.ParseDuration(value); err != nil {
			if durationSyntax(value) {
				// Well-formed, past what a duration holds.
				most := time.Duration(math.MaxInt64).Truncate(time.Second)
				if value[0] == '-' {
					return value, fmt.Sprintf("too small: a duration here is at least -%s (about 292 years)", most)
				}
				return value, fmt.Sprintf("too large: a duration here is at most %s (about 292 years)", most)
			}
			return value, "want a duration such as 15s, 1m30s or 500ms"
		}
	case *cli.Float64Flag:
		if x, err := strconv.ParseFloat(value, 64); err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return value, "want a finite number, such as 2.5"
		}
	}
	return value, ""
}

// durationSyntax reports whether s is written as time.ParseDuration
// reads a duration (an optional sign, then numbers each with a unit: ns,
// us, µs, ms, s, m, h), whatever its size: ParseDuration says only
// "invalid duration" of one too large to hold.
func durationSyntax(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		num := s[:i]
		if num == "" || num == "." || strings.Count(num, ".") > 1 {
			return false
		}
		s = s[i:]
		unit := ""
		for _, u := range []string{"ns", "us", "µs", "μs", "ms", "s", "m", "h"} {
			if strings.HasPrefix(s, u) {
				unit = u
				break
			}
		}
		if unit == "" {
			return false
		}
		s = s[len(unit):]
	}
	return true
}

// decimal reports whether s is a whole number in decimal digits, with a
// sign (only + when signed is false).
func decimal(s string, signed bool) bool {
	if s != "" && (s[0] == '+' || (signed && s[0] == '-')) {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// badValue is the usage error of a flag value: `CMD: invalid value "V"
// for --FLAG: want ... (see 'APP CMD --help')`; from is "--FLAG" or the
// environment variable with the flag ("VDSIM_SAMPLES (--samples)").
func badValue(app, cmd, from, value, problem string) error {
	return Usage(fmt.Errorf("%s: invalid value %q for %s: %s (see '%s %s --help')", cmd, value, from, problem, app, cmd))
}

// checkArgs checks the flag values of args (os.Args) and of the
// environment for the command args name, before the app parses them, and
// returns args with whole numbers in canonical decimal (see valueProblem).
// It scans the command line as Positional does (flags before and after
// the positional arguments, up to "--"); unknown flags and missing values
// are left for the parser to report.
func checkArgs(app *cli.App, args []string) ([]string, error) {
	out := append([]string(nil), args...)
	i := 1
	for i < len(out) && strings.HasPrefix(out[i], "-") && out[i] != "--" {
		i++ // the app's own flags (--help, --version) take no value
	}
	if i >= len(out) {
		return out, nil
	}
	cmd := app.Command(out[i])
	if cmd == nil {
		return out, nil
	}
	for j := i + 1; j < len(out); j++ {
		a := out[j]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name := strings.TrimLeft(a, "-")
		value, eq := "", strings.IndexByte(name, '=')
		if eq >= 0 {
			name, value = name[:eq], name[eq+1:]
		}
		f := lookup(cmd.Flags, name)
		if f == nil || (eq < 0 && !takesValue(f)) {
			continue
		}
		at := j
		if eq < 0 {
			if j+1 >= len(out) {
				break
			}
			j++
			at, value = j, out[j]
		}
		canon, problem := valueProblem(f, value)
		if problem != "" {
			return nil, badValue(app.Name, cmd.Name, "--"+name, value, problem)
		}
		if canon != value {
			if eq >= 0 {
				out[at] = a[:strings.IndexByte(a, '=')+1] + canon
			} else {
				out[at] = canon
			}
		}
	}
	for _, f := range cmd.Flags {
		env, value, ok := fromEnv(f)
		if !ok || value == "" {
			continue // urfave/cli reads an empty number or boolean as not set; checkEmpty sees to strings
		}
		if _, problem := valueProblem(f, value); problem != "" {
			return nil, badValue(app.Name, cmd.Name, env+" (--"+f.Names()[0]+")", value, problem)
		}
	}
	return out, nil
}

// fromEnv returns the environment variable flag f reads and its value,
// the first of its variables that is set, as urfave/cli picks it.
func fromEnv(f cli.Flag) (env, value string, ok bool) {
	e, has := f.(interface{ GetEnvVars() []string })
	if !has {
		return "", "", false
	}
	for _, v := range e.GetEnvVars() {
		v = strings.TrimSpace(v)
		if value, ok := os.LookupEnv(v); ok {
			return v, value, true
		}
	}
	return "", "", false
}

// onCommandLine reports whether flag f was given on the command line
// (before or after the positional arguments), not only in the
// environment. urfave/cli's IsSet says yes to either; the flag's
// HasBeenSet is its environment's part, so IsSet without it is the
// command line's.
func onCommandLine(c *cli.Context, f cli.Flag) bool {
	var set *bool
	switch f := f.(type) {
	case *cli.StringFlag:
		set = &f.HasBeenSet
	case *cli.IntFlag:
		set = &f.HasBeenSet
	case *cli.Int64Flag:
		set = &f.HasBeenSet
	case *cli.UintFlag:
		set = &f.HasBeenSet
	case *cli.Uint64Flag:
		set = &f.HasBeenSet
	case *cli.BoolFlag:
		set = &f.HasBeenSet
	case *cli.Float64Flag:
		set = &f.HasBeenSet
	case *cli.DurationFlag:
		set = &f.HasBeenSet
	default:
		return c.IsSet(f.Names()[0])
	}
	saved := *set
	*set = false
	defer func() { *set = saved }()
	return c.IsSet(f.Names()[0])
}

// Source names where the value of the flag name came from, for messages:
// "--latent-shape", or "VDSIM_LATENT_SHAPE (--latent-shape)" when it
// came from the environment.
// OnCommandLine reports whether flag name was given on the command line
// (not only through its environment variables).
func OnCommandLine(c *cli.Context, name string) bool {
	if c.Command == nil {
		return false
	}
	f := lookup(c.Command.Flags, name)
	return f != nil && onCommandLine(c, f)
}

func Source(c *cli.Context, name string) string {
	var f cli.Flag
	if c.Command != nil {
		f = lookup(c.Command.Flags, name)
	}
	if f == nil || onCommandLine(c, f) {
		return "--" + name
	}
	if env, _, ok := fromEnv(f); ok {
		return env + " (--" + name + ")"
	}
	return "--" + name
}

// emptyAllowed lists the string flags for which an empty value means
// something, as "COMMAND --FLAG" ("* --FLAG" for every command). Every
// other string flag given empty (--out "", VDSIM_OUT=) is a usage error:
// an empty value is a mistake (a variable that expanded to nothing), not
// "leave the flag out". A blank value (spaces only: --out " ") is one for
// every flag, these included: no file, folder or word is only spaces.
var emptyAllowed = map[string]bool{
	// VDPP_ORT_LIB= (empty): look for the library (ort.Discover).
	"* --ort-lib": true,
	// vdexec run starts a worker with --plan "" for the built-in plan.
	"worker --plan": true,
}

// checkEmpty returns a usage error for the first string flag of the
// command that is set, on the command line or in the environment, to an
// empty value (see emptyAllowed) or a blank one (spaces only).
func checkEmpty(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	cmd := c.Command.Name
	for _, f := range c.Command.Flags {
		sf, ok := f.(*cli.StringFlag)
		if !ok {
			continue
		}
		name := sf.Name
		value := c.String(name)
		if !c.IsSet(name) || strings.TrimSpace(value) != "" {
			continue
		}
		// Empty may mean something; spaces only never do.
		if value == "" && (emptyAllowed["* --"+name] || emptyAllowed[cmd+" --"+name]) {
			continue
		}
		// "empty (it sets --out)", "blank (white space only: " "; it
		// sets --out)": the part in brackets for a variable.
		state, paren := "empty", ""
		if value != "" {
			state, paren = "blank", fmt.Sprintf("white space only: %q", value)
		}
		what := "a value"
		if placeholder := placeholder(sf.Usage); placeholder != "" {
			switch placeholder {
			case "DIR":
				what = "a folder"
			case "FILE":
				what = "a file"
			default:
				what = placeholder
			}
		}
		if !onCommandLine(c, f) {
			if env, _, ok := fromEnv(f); ok {
				sets := "it sets --" + name
				if paren != "" {
					sets = paren + "; " + sets
				}
				return Usage(fmt.Errorf("%s: %s is %s (%s): give %s, or unset it (see '%s %s --help')", cmd, env, state, sets, what, appName(c), cmd))
			}
		}
		if paren != "" {
			state += " (" + paren + ")"
		}
		return Usage(fmt.Errorf("%s: --%s is %s: give %s, or leave the flag out (see '%s %s --help')", cmd, name, state, what, appName(c), cmd))
	}
	return nil
}

// placeholder is the `NAME` a flag's usage text quotes for its value, as
// --help shows it ("" when there is none).
func placeholder(usage string) string {
	if i := strings.IndexByte(usage, '`'); i >= 0 {
		if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
			return usage[i+1 : i+1+j]
		}
	}
	return ""
}
