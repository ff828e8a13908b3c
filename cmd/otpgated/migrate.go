package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/storemigrate"
)

// migrateStore is -migrate-store FROM: with every otpgated stopped, it
// copies every record of the FROM store into the other one (package
// storemigrate), then says what to do next on stdout, or why it failed
// and how to recover on stderr. cfgPath is the configuration file named
// in the advice. It returns the exit code.
func migrateStore(cfg *config.Config, cfgPath, from string, stdout, stderr io.Writer) int {
	res, err := storemigrate.Migrate(cfg, from)
	if err != nil {
		for _, line := range migrateFailed(cfg, res, err) {
			fmt.Fprintf(stderr, "otpgated: %s\n", line)
		}
		return 1
	}
	fmt.Fprintf(stdout, "otpgated: copied and checked %d records from %s to %s\n", res.Records, res.From, res.To)
	if res.KeyMissing {
		fmt.Fprintf(stdout, "otpgated: warning: %s does not exist: put the key these records were sealed with there before starting otpgated, or it makes a new key and no enrolled user can log in\n", res.KeyPath)
	}
	fmt.Fprintf(stdout, "otpgated: next: set [store] backend = %q in %s and start otpgated (systemctl start otpgated)\n", res.To, cfgPath)
	return 0
}

// migrateFailed explains why -migrate-store failed and what to do about
// it, one line each.
func migrateFailed(cfg *config.Config, res storemigrate.Result, err error) []string {
	empty := "point store.dsn_file at an empty database"
	if res.To == storemigrate.Bolt {
		empty = "move " + filepath.Join(cfg.Daemon.StateDir, store.DBFile) + " aside"
	}
	switch {
	case errors.Is(err, postgres.ErrNotEmpty):
		return []string{
			fmt.Sprintf("the %s store is not empty: nothing was copied (-migrate-store never merges or overwrites)", res.To),
			fmt.Sprintf("hint: if an earlier -migrate-store filled it, set [store] backend = %q and start otpgated; to copy anew, %s first", res.To, empty),
		}
	case res.Records > 0:
		return []string{
			"migrate-store: " + err.Error(),
			fmt.Sprintf("hint: the %s store now holds a partial or unchecked copy: %s before running -migrate-store again; the %s store is unchanged", res.To, empty, res.From),
		}
	}
	return []string{"migrate-store: " + err.Error()}
}
