package main

import (
	"context"
	"fmt"

	"github.com/otpgate/otpgate/internal/protocol"
)

// cmdDisable is "otpgate disable": the caller turns two-factor
// authentication off, with a current code unless root.
func (a *app) cmdDisable(ctx context.Context, args []string) error {
	u, err := a.selfCommand("disable", newFlagSet("disable"), args)
	if u == nil {
		return err
	}
	req := &protocol.Request{Op: protocol.OpDisable, User: u.Name}
	if a.uid == 0 {
		_, err = a.do(ctx, req)
	} else {
		_, err = a.withCode(ctx, "Enter a current code (or a recovery code) to turn two-factor authentication off: ", func(code string) (*protocol.Response, error) {
			req.Code = code
			return a.do(ctx, req)
		})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Two-factor authentication is now off for %s.\n", clean(u.Name))
	return nil
}
