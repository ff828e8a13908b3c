package main

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/storemigrate"
)

// TestMigrateFailed checks what -migrate-store says when it fails: a
// destination that is not empty and a half-done copy each come with the
// way out for that direction; any other failure is only reported.
func TestMigrateFailed(t *testing.T) {
	cfg := &config.Config{}
	cfg.Daemon.StateDir = "/var/lib/otpgate"
	lost := errors.New("connection lost")
	tests := []struct {
		name string
		res  storemigrate.Result
		err  error
		want []string
	}{
		{"postgres not empty", storemigrate.Result{From: "bolt", To: "postgres"}, fmt.Errorf("copy: %w", postgres.ErrNotEmpty), []string{
			"the postgres store is not empty: nothing was copied (-migrate-store never merges or overwrites)",
			`hint: if an earlier -migrate-store filled it, set [store] backend = "postgres" and start otpgated; to copy anew, point store.dsn_file at an empty database first`,
		}},
		{"bolt not empty", storemigrate.Result{From: "postgres", To: "bolt"}, postgres.ErrNotEmpty, []string{
			"the bolt store is not empty: nothing was copied (-migrate-store never merges or overwrites)",
			`hint: if an earlier -migrate-store filled it, set [store] backend = "bolt" and start otpgated; to copy anew, move /var/lib/otpgate/otpgate.db aside first`,
		}},
		{"half-way into bolt", storemigrate.Result{From: "postgres", To: "bolt", Records: 3}, lost, []string{
			"migrate-store: connection lost",
			"hint: the bolt store now holds a partial or unchecked copy: move /var/lib/otpgate/otpgate.db aside before running -migrate-store again; the postgres store is unchanged",
		}},
		{"nothing copied", storemigrate.Result{From: "bolt", To: "postgres"}, lost, []string{"migrate-store: connection lost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := migrateFailed(cfg, tt.res, tt.err); !slices.Equal(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
