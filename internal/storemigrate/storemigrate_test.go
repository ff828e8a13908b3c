//go:build root

package storemigrate

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otpgate/otpgate/daemon/seal"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/daemon/store/postgres/pgtest"
	"github.com/otpgate/otpgate/internal/config"
)

func TestOther(t *testing.T) {
	for from, want := range map[string]string{"bolt": "postgres", "postgres": "bolt"} {
		if got, err := Other(from); got != want || err != nil {
			t.Errorf("Other(%q) = %q, %v; want %q", from, got, err, want)
		}
	}
	if _, err := Other("sqlite"); err == nil || !strings.Contains(err.Error(), `unknown store "sqlite"`) {
		t.Errorf("Other(sqlite) = %v, want an error naming it", err)
	}
}

// testConfig returns a configuration whose state directory, socket and
// DSN file are in a new temporary directory; the DSN file names dsn.
func testConfig(t *testing.T, dsn string) *config.Config {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("storemigrate tests must run as root (Migrate refuses other users; the DSN file must be root's)")
	}
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Daemon.StateDir = filepath.Join(dir, "state")
	cfg.Daemon.Socket = filepath.Join(dir, "otpgated.sock")
	cfg.Store.DSNFile = filepath.Join(dir, "postgres.dsn")
	if err := os.WriteFile(cfg.Store.DSNFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// fillBolt writes users' records into cfg's embedded store.
func fillBolt(t *testing.T, cfg *config.Config, users ...string) {
	t.Helper()
	if err := store.PrepareStateDir(cfg.Daemon.StateDir); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(cfg.Daemon.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		err := db.Update(u, func(*store.Record) (*store.Record, error) {
			return &store.Record{LastStep: uint64(1000 + i), Active: &store.Enrollment{
				SealedSecret: []byte{byte(i)}, Algorithm: "SHA1", Digits: 6, Period: 30,
				RecoverySalt: []byte("salt"), Recovery: [][]byte{[]byte(u + "-hash")},
			}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMigrate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("storemigrate tests must run as root (PostgreSQL runs as the postgres user)")
	}
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatalf("no PostgreSQL server for the test (apt-get install %s): %v", pgtest.Package, err)
	}
	t.Cleanup(pg.Remove)
	newDSN := func() string {
		dsn, err := pg.CreateDatabase()
		if err != nil {
			t.Fatal(err)
		}
		return dsn
	}

	t.Run("bolt to postgres and back, then refusals of a destination that is not empty", func(t *testing.T) {
		cfg := testConfig(t, newDSN())
		fillBolt(t, cfg, "alice", "bob", "/source/192.0.2.1")
		res, err := Migrate(cfg, Bolt)
		if err != nil || res.Records != 3 || res.From != Bolt || res.To != Postgres {
			t.Fatalf("Migrate(bolt) = %+v, %v; want 3 records from bolt to postgres", res, err)
		}
		if !res.KeyMissing || res.KeyPath != filepath.Join(cfg.Daemon.StateDir, "secret.key") {
			t.Errorf("Migrate(bolt) with no key file: %+v, want KeyMissing", res)
		}
		res, err = Migrate(cfg, Bolt)
		if !errors.Is(err, postgres.ErrNotEmpty) || res.Records != 0 {
			t.Errorf("second Migrate(bolt) = %+v, %v; want ErrNotEmpty, nothing copied", res, err)
		}
		// Back into the same (non-empty) embedded store: refused too.
		if _, err := Migrate(cfg, Postgres); !errors.Is(err, postgres.ErrNotEmpty) {
			t.Errorf("Migrate(postgres) into a filled bolt store = %v, want ErrNotEmpty", err)
		}
		// Into an empty embedded store, which has the key: copied.
		if err := os.Rename(cfg.Daemon.StateDir, cfg.Daemon.StateDir+".old"); err != nil {
			t.Fatal(err)
		}
		if err := store.PrepareStateDir(cfg.Daemon.StateDir); err != nil {
			t.Fatal(err)
		}
		if _, err := seal.LoadOrCreateKey(filepath.Join(cfg.Daemon.StateDir, store.KeyFile)); err != nil {
			t.Fatal(err)
		}
		res, err = Migrate(cfg, Postgres)
		if err != nil || res.Records != 3 || res.To != Bolt || res.KeyMissing {
			t.Fatalf("Migrate(postgres) into an empty bolt store = %+v, %v; want 3 records, key present", res, err)
		}
		db, err := bolt.Open(cfg.Daemon.StateDir)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rec, err := db.Get("bob")
		if err != nil || rec.LastStep != 1001 || string(rec.Active.Recovery[0]) != "bob-hash" {
			t.Errorf("bob after the round trip: %+v, %v", rec, err)
		}
	})

	t.Run("refused while something answers on daemon.socket", func(t *testing.T) {
		cfg := testConfig(t, newDSN())
		fillBolt(t, cfg, "alice")
		ln, err := net.Listen("unix", cfg.Daemon.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = Migrate(cfg, Bolt)
		if !errors.Is(err, ErrDaemonRunning) || !strings.Contains(err.Error(), "stop otpgated first") {
			t.Errorf("Migrate with a live socket = %v, want ErrDaemonRunning saying to stop otpgated", err)
		}
		// A socket left behind by a crash (nobody listening) is no reason
		// to refuse.
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg.Daemon.Socket, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if res, err := Migrate(cfg, Bolt); err != nil || res.Records != 1 {
			t.Errorf("Migrate with a dead socket file = %+v, %v; want 1 record copied", res, err)
		}
	})

	t.Run("refused while the embedded store is open elsewhere", func(t *testing.T) {
		cfg := testConfig(t, newDSN())
		fillBolt(t, cfg, "alice")
		held, err := bolt.Open(cfg.Daemon.StateDir)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		for _, from := range []string{Bolt, Postgres} {
			res, err := Migrate(cfg, from)
			if err == nil || !strings.Contains(err.Error(), "in use by another process") || res.Records != 0 {
				t.Errorf("Migrate(%s) with the bolt file held = %+v, %v; want a refusal naming the lock", from, res, err)
			}
		}
	})

	t.Run("a bad DSN file is refused before anything is copied", func(t *testing.T) {
		cfg := testConfig(t, newDSN())
		fillBolt(t, cfg, "alice")
		if err := os.Chmod(cfg.Store.DSNFile, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Migrate(cfg, Bolt)
		if err == nil || !strings.Contains(err.Error(), "0600") {
			t.Errorf("Migrate with a 0644 DSN file = %v, want a refusal", err)
		}
	})
}

func ExampleOther() {
	to, _ := Other(Bolt)
	fmt.Println(to)
	// Output: postgres
}

// TestCheckNotRunningKeepsTheDialError: when the socket cannot be probed
// for a reason other than its absence, the error says so and still
// carries the cause for errors.Is.
func TestCheckNotRunningKeepsTheDialError(t *testing.T) {
	socket := "/" + strings.Repeat("x", 200) // longer than a Unix socket address may be
	err := checkNotRunning(socket)
	if err == nil || !strings.Contains(err.Error(), "cannot tell whether otpgated is running") {
		t.Fatalf("checkNotRunning(a too long path) = %v, want cannot tell", err)
	}
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("checkNotRunning(a too long path) = %v, want it to wrap EINVAL", err)
	}
}
