package main

import (
	"context"

	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/doctor"
)

// cmdDoctor inspects otpgated, the PAM stacks, sshd, sudo, the
// administrators' enrollment and the clock, and prints each finding with
// why it matters and its fix. It exits 1 when there is an error or a
// warning.
func (a *app) cmdDoctor(ctx context.Context, args []string) error {
	fs := newFlagSet("doctor")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	cfgPath := fs.String("config", "", "the `FILE` of otpgated's configuration (default "+config.DefaultPath+")")
	pamDir := fs.String("pam-dir", "", "the `DIR` holding the PAM modules (default: where pam_unix.so is)")
	pos, ok, err := a.parseArgs("doctor", fs, args)
	if !ok {
		return err
	}
	if err := wantArgs("doctor", pos); err != nil {
		return err
	}
	if err := a.requireRoot(); err != nil {
		return err
	}
	sock := a.socketFlag
	if sock == "" {
		sock = a.getenv("OTPGATE_SOCKET")
	}
	r := doctor.Run(ctx, doctor.Options{ConfigPath: *cfgPath, Socket: sock, PAMDir: *pamDir})
	if *asJSON {
		err = r.WriteJSON(a.stdout)
	} else {
		err = r.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return errSilent
	}
	return nil
}
