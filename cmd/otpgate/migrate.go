package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/storemigrate"
)

// cmdMigrateStore is `admin migrate-store`: with otpgated stopped, it
// copies every record of one store backend into the other, as
// `otpgated -migrate-store` does (package storemigrate). It is the one
// command that does not go through the daemon.
func (a *app) cmdMigrateStore(args []string) error {
	const cmd = "admin migrate-store"
	fs := newFlagSet(cmd)
	from := fs.String("from", "", "")
	cfgPath := fs.String("config", "", "")
	pos, ok, err := a.parseArgs(cmd, fs, args)
	if !ok || err != nil {
		return err
	}
	if err := wantArgs(cmd, pos); err != nil {
		return err
	}
	switch *from {
	case "":
		return usagef(cmd, "--from is required: bolt (the embedded store) or postgres")
	case storemigrate.Bolt, storemigrate.Postgres:
	default:
		return usagef(cmd, "--from must be bolt or postgres, not %q", *from)
	}
	if err := a.requireRoot(); err != nil {
		return err
	}
	// As otpgated: a missing default file means the built-in defaults.
	path := *cfgPath
	var cfg *config.Config
	if path != "" {
		cfg, err = config.Load(path)
	} else {
		path = config.DefaultPath
		cfg, err = config.LoadOrDefault(path, false)
	}
	if err != nil {
		return err
	}
	res, err := storemigrate.Migrate(cfg, *from)
	if err != nil {
		a.migrateFailed(cfg, res, err)
		return errSilent
	}
	fmt.Fprintf(a.stdout, "Copied and checked %d records from %s to %s.\n", res.Records, res.From, res.To)
	if res.KeyMissing {
		fmt.Fprintf(a.stdout, "Warning: %s does not exist. Put the key these records were sealed with there before starting otpgated, or it makes a new key and no enrolled user can log in.\n", res.KeyPath)
	}
	fmt.Fprintf(a.stdout, "Next: set [store] backend = %q in %s and start otpgated (systemctl start otpgated).\n", res.To, path)
	return nil
}

// migrateFailed prints why migrate-store failed and what to do about it.
func (a *app) migrateFailed(cfg *config.Config, res storemigrate.Result, err error) {
	empty := "point store.dsn_file at an empty database"
	if res.To == storemigrate.Bolt {
		empty = "move " + filepath.Join(cfg.Daemon.StateDir, store.DBFile) + " aside"
	}
	switch {
	case errors.Is(err, postgres.ErrNotEmpty):
		a.errorf("the %s store already holds records: nothing was copied (migrate-store never merges or overwrites)", res.To)
		a.errorf("hint: if an earlier migrate-store filled it, set [store] backend = %q and start otpgated; to copy anew, %s first", res.To, empty)
	case res.Records > 0:
		a.errorf("%s", clean(err.Error()))
		a.errorf("hint: the %s store now holds a partial or unchecked copy: %s before running migrate-store again; the %s store is unchanged", res.To, empty, res.From)
	default:
		a.errorf("%s", clean(err.Error()))
	}
}
