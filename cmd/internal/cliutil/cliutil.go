// Package cliutil holds what the vdpp command-line tools (vdsim, vdexec)
// share: building a urfave/cli app that tests can run with their own
// writers, parsing flags written after the positional arguments, loading a
// plan (or an embedded default) with what-if overrides. The metrics'
// table and JSON form are timeline's (timeline.Columns, timeline.Metrics).
package cliutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/plan"
)

// urfave/cli's --version flag is a package variable: set once, without
// the -v alias that a command's own flags might want.
func init() {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version (module version, VCS revision, Go version) and exit"}
}

// NewApp returns an app that writes to stdout and stderr, never calls
// os.Exit (errors, cli.Exit included, come back from App.Run), and turns
// flag errors into one-line messages that name the command. Call Finish
// after adding the commands.
func NewApp(name, usage string, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 name,
		Usage:                usage,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		// Without this, App.Run calls os.Exit on a cli.ExitCoder error.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.OnUsageError = usageError("")
	app.Version = Version()
	app.Action = unknownCommand
	return app
}

// Exit statuses of vdsim and vdexec, the same for both and documented in
// the README and in --help.
const (
	ExitOK          = 0   // the command did what was asked
	ExitError       = 1   // a bad plan, profile or file, or a failed run
	ExitUsage       = 2   // a bad command line: unknown command or flag, wrong arguments
	ExitInterrupted = 130 // stopped by SIGINT (Ctrl-C)
	ExitTerminated  = 143 // stopped by SIGTERM
)

// ExitCodes is the exit-status paragraph of both tools' --help.
const ExitCodes = "Exit status: 0 done, 1 error (bad plan or file, failed run), 2 usage (unknown command or flag, wrong arguments), " +
	"130 interrupted (SIGINT), 143 terminated (SIGTERM)."

// usageErr is an error in the command line; Main exits with ExitUsage.
type usageErr struct{ error }

func (usageErr) ExitCode() int   { return ExitUsage }
func (u usageErr) Unwrap() error { return u.error }

// Usage marks err as a command-line mistake (exit status 2).
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return usageErr{err}
}

// unknownCommand is the app's action: with no arguments it shows the help;
// with one that is not a command it is a usage error naming the commands.
func unknownCommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	names := make([]string, 0, len(c.App.Commands))
	for _, cmd := range c.App.Commands {
		if !cmd.Hidden {
			names = append(names, cmd.Name)
		}
	}
	return Usage(fmt.Errorf("unknown command %q; the commands are %s (see '%s --help')",
		c.Args().First(), strings.Join(names, ", "), c.App.Name))
}

// Version is the module version and VCS revision the binary was built
// from, as --version prints it ("(devel) rev 0123abcd dirty, go1.26").
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " with local changes"
			}
		}
	}
	if rev != "" && !strings.Contains(v, rev) {
		v += " rev " + rev + dirty
	}
	return v + ", " + bi.GoVersion
}

// Finish sets the flag-error handler on every command of app (so a bad
// flag gives one clear line instead of the help text), makes whole-number
// flags read decimal only, and checks that every flag of every command
// has an environment variable.
func Finish(app *cli.App) error {
	if !strings.Contains(app.Description, ExitCodes) {
		app.Description = strings.TrimSpace(app.Description + "\n\n" + ExitCodes)
	}
	var walk func(prefix string, cmds []*cli.Command) error
	walk = func(prefix string, cmds []*cli.Command) error {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				c.OnUsageError = usageError(strings.TrimPrefix(prefix+" "+c.Name, app.Name+" "))
			}
			for _, f := range c.Flags {
				if e, ok := f.(interface{ GetEnvVars() []string }); ok && len(e.GetEnvVars()) == 0 {
					return fmt.Errorf("cliutil: %s %s: flag %s has no environment variable", prefix, c.Name, f.Names()[0])
				}
				// Whole numbers from the environment in decimal only
				// (the default base 0 reads 010 as octal 8); checkArgs
				// does the same for the command line.
				switch f := f.(type) {
				case *cli.IntFlag:
					f.Base = 10
				case *cli.Int64Flag:
					f.Base = 10
				case *cli.UintFlag:
					f.Base = 10
				case *cli.Uint64Flag:
					f.Base = 10
				}
			}
			if err := walk(prefix+" "+c.Name, c.Subcommands); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(app.Name, app.Commands)
}

// usageError makes a flag error one line: "CMD: MSG (see 'APP CMD --help')".
// Main puts the app's name in front, so where is the command path
// without it ("" for the app's own flags).
func usageError(where string) cli.OnUsageErrorFunc {
	return func(c *cli.Context, err error, _ bool) error {
		help := strings.TrimSpace(appName(c) + " " + where)
		if where == "" {
			return Usage(fmt.Errorf("%w (see '%s --help')", err, help))
		}
		return Usage(fmt.Errorf("%s: %w (see '%s --help')", where, err, help))
	}
}

// Main runs app with args (os.Args), prints an error to stderr as
// "NAME: message" (one line per problem of a plan), and returns the exit
// status: 0, the code of a cli.ExitCoder (ExitUsage for a command-line
// mistake), or 1.
//
// Before running, it checks the values of the command's flags, on the
// command line and in the environment (see checkArgs): a value that does
// not parse is a usage error naming the flag, and whole numbers are read
// in decimal (010 is 10, 0x10 is refused).
func Main(app *cli.App, args []string, stderr io.Writer) int {
	args, err := checkArgs(app, args)
	if err == nil {
		err = app.Run(args)
	}
	if err == nil {
		return 0
	}
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
		if code == 0 {
			code = 1
		}
	}
	if msg := err.Error(); msg != "" {
		for _, line := range strings.Split(msg, "\n") {
			fmt.Fprintf(stderr, "%s: %s\n", app.Name, line)
		}
	}
	return code
}

// appName is the name of the running app, or "" outside one.
func appName(c *cli.Context) string {
	if c == nil || c.App == nil {
		return ""
	}
	return c.App.Name
}

// errHelp is returned by Positional when a trailing -h/--help printed the
// command's help.
var errHelp = errors.New("help shown")

// IsHelp reports whether err says that help was printed instead of
// running the command (a trailing --help); the command then returns nil.
func IsHelp(err error) bool { return errors.Is(err, errHelp) }

// Positional returns the command's positional arguments. urfave/cli stops
// parsing flags at the first positional argument, so `vdsim run plan.yaml
// --samples 9` leaves "--samples 9" among the arguments: Positional parses
// such trailing flags as if they came first (with --flag value,
// --flag=value, boolean --flag) and sets them on c. An unknown flag or a
// flag without its value is an error; everything after "--" is positional.
// So is a value the flag does not take (--samples abc, --no-dp=maybe), and
// a string flag set to an empty value on the command line or in the
// environment (--out "", VDSIM_OUT=), except those for which empty means
// something (emptyAllowed), or to a blank one (spaces only, --out " ");
// these are usage errors naming the flag.
// Every command calls it before it uses a flag.
func Positional(c *cli.Context) ([]string, error) {
	args := c.Args().Slice()
	var pos []string
	var flags []cli.Flag
	cmd := "command"
	if c.Command != nil {
		flags, cmd = c.Command.Flags, c.Command.Name
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, value, hasValue = name[:k], name[k+1:], true
		}
		if name == "h" || name == "help" {
			if err := cli.ShowSubcommandHelp(c); err != nil {
				return nil, err
			}
			return nil, errHelp
		}
		f := lookup(flags, name)
		if f == nil {
			return nil, Usage(fmt.Errorf("%s: flag provided but not defined: %s (see '%s %s --help')", cmd, a, appName(c), cmd))
		}
		if takesValue(f) {
			if !hasValue {
				if i+1 >= len(args) {
					return nil, Usage(fmt.Errorf("%s: flag needs an argument: %s", cmd, a))
				}
				i++
				value = args[i]
			}
		} else if !hasValue {
			value = "true"
		}
		canon, problem := valueProblem(f, value)
		if problem != "" {
			return nil, badValue(appName(c), cmd, "--"+name, value, problem)
		}
		// urfave/cli keeps a value per name; set the aliases too, as its
		// own parsing does.
		for _, n := range f.Names() {
			if err := c.Set(n, canon); err != nil {
				return nil, badValue(appName(c), cmd, "--"+name, value, err.Error())
			}
		}
	}
	if err := checkEmpty(c); err != nil {
		return nil, err
	}
	return pos, nil
}

func lookup(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.TakesValue()
	}
	return true
}

// DefaultPlan is a plan a CLI embeds, used when no plan file is given.
type DefaultPlan struct {
	FS   fs.FS
	Name string // path of the plan in FS
	// Note is what the CLI tells the user on stderr when it uses the
	// default ("using the built-in plan ...").
	Note string
}

// LoadPlan loads the plan named by the only positional argument, or the
// default when there is none (saying so on stderr), then replaces its cost
// profile when costs is not empty. It rejects more than one argument. It
// prints the plan's notices (plan.Plan.Notices: costs derived rather than
// measured) on stderr as "note: ..." lines.
func LoadPlan(args []string, def *DefaultPlan, costs string, stderr io.Writer) (*plan.Plan, error) {
	var p *plan.Plan
	var err error
	switch {
	case len(args) > 1:
		return nil, Usage(fmt.Errorf("want one plan file, got %d arguments: %s (flags go before or after the plan file, not between file names)", len(args), strings.Join(args, " ")))
	case len(args) == 1:
		p, err = plan.Load(args[0])
	case def == nil:
		return nil, errors.New("no plan file given")
	default:
		if def.Note != "" {
			fmt.Fprintln(stderr, def.Note)
		}
		p, err = plan.LoadFS(def.FS, def.Name)
	}
	if err != nil {
		return nil, err
	}
	if costs != "" {
		prof, err := plan.LoadProfile(costs)
		if err != nil {
			return nil, err
		}
		if err := p.SetProfile(costs, prof); err != nil {
			return nil, fmt.Errorf("--costs %q: %w", costs, err)
		}
	}
	PrintNotices(p, stderr)
	return p, nil
}

// PrintNotices prints the plan's notices on w, one "note: ..." line each.
func PrintNotices(p *plan.Plan, w io.Writer) {
	for _, n := range p.Notices() {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// Apply applies what-if overrides to a loaded plan (plan.Plan.Apply) and
// prints the notices the changed plan has that the loaded one did not
// (--micro-batch 2 on a profile measured at 1). Its errors name the flag
// that set a bad value and carry no file name.
func Apply(p *plan.Plan, o plan.Overrides, stderr io.Writer) error {
	before := map[string]bool{}
	for _, n := range p.Notices() {
		before[n] = true
	}
	if err := p.Apply(o); err != nil {
		return err
	}
	for _, n := range p.Notices() {
		if !before[n] {
			fmt.Fprintf(stderr, "note: %s\n", n)
		}
	}
	return nil
}

// ParseInts parses a list of positive whole numbers in decimal, separated
// by commas or spaces ("1,2,4,7", "1, 2, 4"). An empty entry ("1,,2",
// "1,") and a number given twice are errors: both are typing mistakes,
// not something to skip.
func ParseInts(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty list %q; want numbers such as 1,2,4,7", s)
	}
	var out []int
	seen := map[int]bool{}
	for i, entry := range strings.Split(s, ",") {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			return nil, fmt.Errorf("entry %d of %q is empty; want numbers separated by single commas, such as 1,2,4,7", i+1, s)
		}
		for _, f := range fields {
			v, err := strconv.Atoi(f)
			if err != nil || v < 1 || !decimal(f, false) {
				return nil, fmt.Errorf("%q in %q is not a positive whole number; want a list such as 1,2,4,7", f, s)
			}
			if seen[v] {
				return nil, fmt.Errorf("%d is given twice in %q; give each number once", v, s)
			}
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// ParseShape parses a latent shape "B C F H W" (micro-batch, channels,
// frames, latent height, latent width), separated by spaces, commas or x.
func ParseShape(s string) ([5]int, error) {
	var sh [5]int
	const want = "B C F H W (micro-batch, channels, frames, latent height, latent width), e.g. \"1 4 14 40 72\""
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == 'x' || r == '×' })
	// A value that is not numbers at all ("x", "a", "big") says so
	// rather than counting what the separators leave of it.
	if len(fields) == 0 || (len(fields) == 1 && !decimal(fields[0], true)) {
		return sh, fmt.Errorf("latent shape %q is not a number; want 5 whole numbers %s", s, want)
	}
	// A word among numbers is named before the count is: "1 2 a" has
	// a word, not 3 numbers.
	for _, f := range fields {
		if v, err := strconv.Atoi(f); err != nil || v < 1 {
			return sh, fmt.Errorf("latent shape %q: %q is not a positive whole number", s, f)
		}
	}
	if len(fields) != 5 {
		n := fmt.Sprintf("%d numbers", len(fields))
		if len(fields) == 1 {
			n = "1 number"
		}
		return sh, fmt.Errorf("latent shape %q has %s; want 5: %s", s, n, want)
	}
	for i, f := range fields {
		sh[i], _ = strconv.Atoi(f)
	}
	return sh, nil
}

// IsTerminal reports whether w is a terminal (a character device): both
// tools draw progress in place only there.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
