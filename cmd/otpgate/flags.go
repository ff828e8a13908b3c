package main

import (
	"errors"
	"flag"
	"io"
	"strings"

	"github.com/otpgate/otpgate/internal/accounts"
)

// newFlagSet returns a flag set that reports errors to the caller instead
// of printing or exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// flagError turns an error of fs, the flag set of cmd, into a usage
// error, or prints cmd's help for -h/--help.
func (a *app) flagError(cmd string, fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		if c := lookupCommand(cmd); c != nil {
			printHelp(a.stdout, c, fs)
		} else {
			printOverview(a.stdout, "")
		}
		return nil
	}
	return usagef(cmd, "%v", err)
}

// parseArgs parses args with fs, allowing flags after positional
// arguments ("admin show alice --json"); "--" ends the flags. It returns
// the positional arguments, or (nil, nil) after printing help.
func (a *app) parseArgs(cmd string, fs *flag.FlagSet, args []string) ([]string, bool, error) {
	fs.StringVar(&a.socketFlag, "socket", a.socketFlag, socketUsage)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false, a.flagError(cmd, fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, true, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), true, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(cmd string, pos []string, names ...string) error {
	if len(pos) == len(names) {
		return nil
	}
	if len(names) == 0 {
		return usagef(cmd, "%s takes no arguments, got %q", cmd, strings.Join(pos, " "))
	}
	if len(pos) < len(names) {
		return usagef(cmd, "%s needs %s", cmd, strings.Join(names, " "))
	}
	return usagef(cmd, "too many arguments for %s: %q", cmd, strings.Join(pos[len(names):], " "))
}

// selfCommand parses the flags of a command that acts on the caller's own
// account and takes no arguments, and returns that account. A nil account
// with a nil error means help was printed.
func (a *app) selfCommand(cmd string, fs *flag.FlagSet, args []string) (*accounts.User, error) {
	pos, ok, err := a.parseArgs(cmd, fs, args)
	if !ok || err != nil {
		return nil, err
	}
	if err := wantArgs(cmd, pos); err != nil {
		return nil, err
	}
	return a.self()
}
