package main

import (
	"context"
	"fmt"

	"github.com/otpgate/otpgate/internal/protocol"
)

// cmdForget is "otpgate forget": the caller's own remembered devices.
func (a *app) cmdForget(ctx context.Context, args []string) error {
	u, err := a.selfCommand("forget", newFlagSet("forget"), args)
	if u == nil {
		return err
	}
	return a.forget(ctx, u.Name)
}

// cmdAdminForget is "otpgate admin forget USER".
func (a *app) cmdAdminForget(ctx context.Context, args []string) error {
	const cmd = "admin forget"
	pos, ok, err := a.parseArgs(cmd, newFlagSet(cmd), args)
	if !ok || err != nil {
		return err
	}
	if err := wantArgs(cmd, pos, "USER"); err != nil {
		return err
	}
	if err := a.requireRoot(); err != nil {
		return err
	}
	return a.forget(ctx, pos[0])
}

func (a *app) forget(ctx context.Context, name string) error {
	resp, err := a.do(ctx, &protocol.Request{Op: protocol.OpForget, User: name})
	if err != nil {
		return err
	}
	switch resp.Forgotten {
	case 0:
		fmt.Fprintf(a.stdout, "No remembered devices for %s.\n", clean(name))
	case 1:
		fmt.Fprintf(a.stdout, "Forgot 1 remembered device of %s: the next login asks for a code.\n", clean(name))
	default:
		fmt.Fprintf(a.stdout, "Forgot %d remembered devices of %s: the next login asks for a code.\n", resp.Forgotten, clean(name))
	}
	return nil
}
