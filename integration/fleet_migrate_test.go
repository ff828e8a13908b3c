//go:build integration

package integration

// `otpgated -migrate-store` against a real otpgated and a real
// PostgreSQL, both on the host as in fleet_test.go: users enroll through
// otpgated on the embedded store, -migrate-store copies the store into
// PostgreSQL, otpgated serves from there, and -migrate-store copies it
// back.
// otpgated enrolls only accounts that exist, and on the host the test
// cannot add any: its users are base-passwd's system accounts daemon, bin
// and sys, present on every Debian system (named alice, bob and carol in
// the code). Only the test's own stores record them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// migrateEnv is one otpgated whose configuration switches between the
// embedded store and a PostgreSQL database.
type migrateEnv struct {
	t       *testing.T
	daemon  string // otpgated
	dsn     string
	dsnFile string
	node    *fleetNode
	client  *protocol.Client
}

func newMigrateEnv(t *testing.T) *migrateEnv {
	t.Helper()
	container.Require(t, "oathtool")
	e := &migrateEnv{t: t, daemon: container.Bin(t, "otpgated")}
	_, e.dsn = startPostgres(t)
	base := t.TempDir()
	e.dsnFile = filepath.Join(base, "postgres.dsn")
	if err := os.WriteFile(e.dsnFile, []byte(e.dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.node = &fleetNode{
		name: "node", socket: filepath.Join(base, "run", "otpgated.sock"), stateDir: filepath.Join(base, "state"),
		config: filepath.Join(base, "config.toml"), log: filepath.Join(base, "otpgated.log"),
	}
	e.client = &protocol.Client{Socket: e.node.socket, Timeout: 10 * time.Second}
	t.Cleanup(func() { e.node.stop(t) })
	return e
}

// serve (re)starts otpgated with [store] backend = backend.
func (e *migrateEnv) serve(backend string) {
	e.t.Helper()
	e.node.stop(e.t)
	cfg := fmt.Sprintf("[daemon]\nsocket = %q\nstate_dir = %q\n[store]\nbackend = %q\ndsn_file = %q\n[enroll]\nrecovery_codes = 5\n",
		e.node.socket, e.node.stateDir, backend, e.dsnFile)
	if err := os.WriteFile(e.node.config, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.node.start(e.t, e.daemon)
}

// migrate runs `otpgated -migrate-store from` and returns its output and
// exit code.
func (e *migrateEnv) migrate(from string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.daemon, "-config", e.node.config, "-migrate-store", from).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return string(out), ee.ExitCode()
	}
	e.t.Fatalf("otpgated -migrate-store %s: %v\n%s", from, err, out)
	return "", 0
}

// do sends req to otpgated as root.
func (e *migrateEnv) do(req *protocol.Request) *protocol.Response {
	e.t.Helper()
	req.Service = "migrate-test"
	resp, err := e.client.Do(context.Background(), req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Op, req.User, err)
	}
	return resp
}

// verify logs user in with code and returns the login's last step.
func (e *migrateEnv) verify(user, code string) *protocol.LoginStep {
	e.t.Helper()
	st, err := testutil.Login(e.client, protocol.Request{User: user, Service: "migrate-test"}, code)
	if err != nil {
		e.t.Fatalf("login of %s: %v", user, err)
	}
	return st
}

// hostOathtool is oathtool's TOTP code of a base32 secret at time at; the
// secret goes through stdin.
func hostOathtool(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	cmd := exec.Command("oathtool", "--totp", "-b", "--now=@"+strconv.FormatInt(at.Unix(), 10), "-")
	cmd.Stdin = strings.NewReader(secret + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("oathtool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// libCode is package otp's TOTP code of a base32 secret at time at.
func libCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	key, err := otp.DecodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return otp.TOTP(key, at, otp.DefaultParams())
}

// migrateUser is an enrollment made through otpgated.
type migrateUser struct {
	secret   string   // base32
	code     string   // the code that confirmed the enrollment
	recovery []string // its recovery codes
}

// enroll enrolls user through otpgated (root on the user's behalf), with
// a code from code(secret, now).
func (e *migrateEnv) enroll(user string, code func(*testing.T, string, time.Time) string) migrateUser {
	e.t.Helper()
	begin := e.do(&protocol.Request{Op: protocol.OpEnrollBegin, User: user})
	u := migrateUser{secret: begin.Enroll.Secret}
	u.code = code(e.t, u.secret, time.Now())
	u.recovery = e.do(&protocol.Request{Op: protocol.OpEnrollConfirm, User: user, Code: u.code}).RecoveryCodes
	if len(u.recovery) != 5 {
		e.t.Fatalf("enroll %s: %d recovery codes, want 5", user, len(u.recovery))
	}
	return u
}

// records returns every record of st as JSON, by user.
func records(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.List("", func(r *store.Record) error {
		b, err := json.Marshal(r)
		out[r.User] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// boltRecords reads the embedded store of a stopped otpgated.
func (e *migrateEnv) boltRecords() map[string]string {
	e.t.Helper()
	db, err := bolt.Open(e.node.stateDir)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	return records(e.t, db)
}

// postgresRecords reads the PostgreSQL store.
func (e *migrateEnv) postgresRecords() map[string]string {
	e.t.Helper()
	db, err := postgres.Open(e.dsn, postgres.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	return records(e.t, db)
}

// TestFleetMigrateStore enrolls users through otpgated on the embedded
// store, copies it into PostgreSQL with `otpgated -migrate-store bolt`,
// and checks that otpgated on PostgreSQL accepts their codes
// (from oathtool and from package otp), refuses the codes they already
// used (the last step came along) and takes their recovery codes; then it
// copies the store back with `-migrate-store postgres` and checks the same on the
// embedded store. Both directions are refused while otpgated runs and
// when the destination is not empty.
func TestFleetMigrateStore(t *testing.T) {
	e := newMigrateEnv(t)
	e.serve("bolt")
	const aliceName, bobName, carolName = "daemon", "bin", "sys"
	alice := e.enroll(aliceName, hostOathtool)
	bob := e.enroll(bobName, libCode)
	carol := e.enroll(carolName, hostOathtool)
	if v := e.verify(carolName, wrongCode(t, carol.secret)); stepOutcome(v) != protocol.OutcomeReject {
		t.Fatalf("carol's wrong code on bolt: %s, want reject", stepOutcome(v))
	}

	// Refused while otpgated runs, before touching either store.
	out, code := e.migrate("bolt")
	if code != exitCodeFailure || !strings.Contains(out, "otpgated is running") || !strings.Contains(out, "stop otpgated first") {
		t.Errorf("migrate-store --from bolt with otpgated running: exit %d\n%s\nwant exit 1 and 'stop otpgated first'", code, out)
	}
	e.node.stop(t)
	before := e.boltRecords()
	if n := len(e.postgresRecords()); n != 0 {
		t.Fatalf("PostgreSQL holds %d records after a refused migrate-store", n)
	}

	out, code = e.migrate("bolt")
	want := fmt.Sprintf("otpgated: copied and checked %d records from bolt to postgres\n", len(before))
	if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, `set [store] backend = "postgres" in `+e.node.config) {
		t.Fatalf("migrate-store --from bolt: exit %d\n%s\nwant exit 0 and %q", code, out, want)
	}
	if strings.Contains(out, e.dsn) {
		t.Errorf("the output shows the DSN:\n%s", out)
	}
	if after := e.postgresRecords(); !maps.Equal(after, before) {
		t.Errorf("PostgreSQL after migrate-store differs from the embedded store:\n got %v\nwant %v", after, before)
	}
	out, code = e.migrate("bolt")
	if code != exitCodeFailure || !strings.Contains(out, "the postgres store is not empty: nothing was copied") ||
		!strings.Contains(out, "hint: if an earlier -migrate-store filled it") {
		t.Errorf("second migrate-store --from bolt: exit %d\n%s\nwant exit 1, a refusal and a hint", code, out)
	}

	e.serve("postgres")
	now := time.Now()
	if v := e.verify(aliceName, alice.code); stepOutcome(v) != protocol.OutcomeReplay {
		t.Errorf("alice's enrollment code on postgres: %s, want replay (the last step came along)", stepOutcome(v))
	}
	if v := e.verify(aliceName, hostOathtool(t, alice.secret, now.Add(30*time.Second))); stepOutcome(v) != protocol.OutcomeAccept {
		t.Errorf("alice's next code from oathtool on postgres: %s, want accept", stepOutcome(v))
	}
	if v := e.verify(bobName, bob.code); stepOutcome(v) != protocol.OutcomeReplay {
		t.Errorf("bob's enrollment code on postgres: %s, want replay", stepOutcome(v))
	}
	bobNext := libCode(t, bob.secret, now.Add(30*time.Second))
	if v := e.verify(bobName, bobNext); stepOutcome(v) != protocol.OutcomeAccept {
		t.Errorf("bob's next code from package otp on postgres: %s, want accept", stepOutcome(v))
	}
	if v := e.verify(aliceName, alice.recovery[0]); stepOutcome(v) != protocol.OutcomeAccept || recoveryLeft(v) < 0 || recoveryLeft(v) != 4 {
		t.Errorf("alice's first recovery code on postgres: %+v, want accept with 4 left", v)
	}
	if v := e.verify(aliceName, alice.recovery[0]); stepOutcome(v) == protocol.OutcomeAccept {
		t.Errorf("alice's first recovery code again on postgres: %+v, want a refusal", v)
	}
	st := e.do(&protocol.Request{Op: protocol.OpAdminShow, User: carolName}).Status
	if st.State != protocol.StateActive || st.Failures != 1 || st.RecoveryRemaining != 5 {
		t.Errorf("carol on postgres: %+v, want active, 1 failure, 5 recovery codes", st)
	}

	// And back, into the embedded store.
	out, code = e.migrate("postgres")
	if code != exitCodeFailure || !strings.Contains(out, "stop otpgated first") {
		t.Errorf("migrate-store --from postgres with otpgated running: exit %d\n%s\nwant exit 1 and 'stop otpgated first'", code, out)
	}
	e.node.stop(t)
	dbFile := filepath.Join(e.node.stateDir, store.DBFile)
	out, code = e.migrate("postgres")
	if code != exitCodeFailure || !strings.Contains(out, "the bolt store is not empty: nothing was copied") ||
		!strings.Contains(out, "move "+dbFile+" aside") {
		t.Errorf("migrate-store --from postgres into the old embedded store: exit %d\n%s\nwant exit 1, a refusal and a hint", code, out)
	}
	if err := os.Rename(dbFile, dbFile+".before-postgres"); err != nil {
		t.Fatal(err)
	}
	before = e.postgresRecords()
	out, code = e.migrate("postgres")
	want = fmt.Sprintf("otpgated: copied and checked %d records from postgres to bolt\n", len(before))
	if code != 0 || !strings.HasPrefix(out, want) || strings.Contains(out, "warning") {
		t.Fatalf("migrate-store --from postgres: exit %d\n%s\nwant exit 0, %q and no warning", code, out, want)
	}
	if after := e.boltRecords(); !maps.Equal(after, before) {
		t.Errorf("the embedded store after migrate-store differs from PostgreSQL:\n got %v\nwant %v", after, before)
	}

	e.serve("bolt")
	if v := e.verify(aliceName, alice.recovery[0]); stepOutcome(v) == protocol.OutcomeAccept {
		t.Errorf("alice's recovery code used on postgres, on bolt: %+v, want a refusal", v)
	}
	if v := e.verify(aliceName, alice.recovery[1]); stepOutcome(v) != protocol.OutcomeAccept || recoveryLeft(v) != 3 {
		t.Errorf("alice's second recovery code on bolt: %+v, want accept with 3 left", v)
	}
	if v := e.verify(bobName, bobNext); stepOutcome(v) != protocol.OutcomeReplay {
		t.Errorf("bob's code used on postgres, on bolt: %s, want replay", stepOutcome(v))
	}
	if v := e.verify(carolName, hostOathtool(t, carol.secret, time.Now().Add(30*time.Second))); stepOutcome(v) != protocol.OutcomeAccept {
		t.Errorf("carol's next code from oathtool on bolt: %s, want accept", stepOutcome(v))
	}
}

// exitCodeFailure is otpgated's exit code for a failure (cmd/otpgated).
const exitCodeFailure = 1
