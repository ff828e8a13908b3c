//go:build root

package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/daemon/store/storetest"
)

// TestConformance runs the store conformance suite, which the postgres
// store passes too.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "state")
		if err := store.PrepareStateDir(dir); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
