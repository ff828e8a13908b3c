package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/protocol"
)

func (a *app) cmdAdmin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		printOverview(a.stderr, "admin ")
		return usagef("admin", "admin needs a command")
	}
	sub, rest := args[0], args[1:]
	cmd := "admin " + sub
	switch sub {
	case "list", "show", "reset", "unlock", "enroll", "import":
	case "forget":
		return a.cmdAdminForget(ctx, rest)
	case "migrate-store":
		// otpgated's job: the CLI does not link the stores.
		return usagef("admin", "the stores are copied by otpgated, not otpgate: with otpgated stopped, run 'otpgated -migrate-store bolt' (or postgres)")
	case "-h", "--help", "help":
		printOverview(a.stdout, "admin ")
		return nil
	default:
		return usagef("admin", "unknown admin command %q", sub)
	}
	fs := newFlagSet(cmd)
	asJSON, force := new(bool), new(bool)
	var o enrollOpts
	switch sub {
	case "list", "show":
		fs.BoolVar(asJSON, "json", false, jsonUsage)
	case "enroll":
		fs.BoolVar(force, "force", false, "replace USER's enrollment without asking for USER's current code")
		o.register(fs)
	case "import":
		return a.cmdImport(ctx, rest)
	}
	pos, ok, err := a.parseArgs(cmd, fs, rest)
	if !ok || err != nil {
		return err
	}
	if sub == "enroll" {
		if err := o.check(cmd, &pos); err != nil {
			return err
		}
	}
	if sub == "list" {
		err = wantArgs(cmd, pos)
	} else {
		err = wantArgs(cmd, pos, "USER")
	}
	if err != nil {
		return err
	}
	if err := a.requireRoot(); err != nil {
		return err
	}
	switch sub {
	case "list":
		// The daemon answers in pages (a frame holds about 100 users).
		users, err := a.client().ListUsers(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]statusJSON, len(users))
			for i := range users {
				out[i] = newStatusJSON(&users[i])
			}
			return writeJSON(a.stdout, out)
		}
		return writeUserTable(a.stdout, users, a.now())
	case "show":
		resp, err := a.do(ctx, &protocol.Request{Op: protocol.OpAdminShow, User: pos[0]})
		if err != nil {
			return err
		}
		return a.printStatus(resp.Status, *asJSON)
	case "reset":
		if _, err := a.do(ctx, &protocol.Request{Op: protocol.OpAdminReset, User: pos[0]}); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Reset %s: enrollment, recovery codes and lockout state removed.\n", clean(pos[0]))
		return nil
	case "unlock":
		if _, err := a.do(ctx, &protocol.Request{Op: protocol.OpAdminUnlock, User: pos[0]}); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Unlocked %s: failed attempts cleared.\n", clean(pos[0]))
		return nil
	}
	// admin enroll USER
	u, err := accounts.LookupUser(pos[0])
	if err != nil {
		if errors.Is(err, accounts.ErrNotFound) {
			return fmt.Errorf("no such user: %s", clean(pos[0]))
		}
		return err
	}
	o.force = *force
	return a.enroll(ctx, u, o)
}
