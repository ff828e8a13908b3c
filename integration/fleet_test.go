//go:build integration

package integration

// Fleet suite: three real otpgated processes, each with its own
// socket and state directory holding a copy of the same secret.key, all on
// one real PostgreSQL server (Debian's postgresql-15, started by the test
// as the postgres user on a tmpfs data directory, Unix socket only). They
// run on the host, not in a container: everything is on Unix sockets in
// temporary directories. Needs root and `make build` (bin/otpgated).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/seal"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/daemon/store/postgres/pgtest"
	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// fleetMaxFailures is rate_limit.max_failures of the fleet's servers.
const fleetMaxFailures = 5

// fleet is a PostgreSQL server and otpgated instances sharing it.
type fleet struct {
	t      testing.TB
	pg     *pgtest.Server
	dsn    string
	base   string
	sealer *seal.Sealer
	db     *postgres.DB // the test's own view of the shared store
	nodes  []*fleetNode
}

// fleetNode is one otpgated process.
type fleetNode struct {
	name, socket, stateDir, config, log string
	hostname                            string // "": the machine's
	cmd                                 *exec.Cmd
	done                                chan error
}

// startPostgres starts a test PostgreSQL server, removed at the end of the
// test, and returns it with the DSN of a fresh database. Tests put its
// data on tmpfs; benchmarks (testing.B) on the disk, next to the bolt
// stores they are compared with, so that both pay for real fsyncs.
func startPostgres(t testing.TB) (*pgtest.Server, string) {
	t.Helper()
	start := pgtest.Start
	if _, bench := t.(*testing.B); bench {
		start = func() (*pgtest.Server, error) { return pgtest.StartIn(os.TempDir()) }
	}
	pg, err := start()
	if err != nil {
		t.Fatalf("cannot start PostgreSQL (apt-get install %s): %v", pgtest.Package, err)
	}
	t.Cleanup(pg.Remove)
	dsn, err := pg.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return pg, dsn
}

// startFleet starts n otpgated instances with store.backend backend
// ("postgres": all on one database; "bolt": each its own file).
func startFleet(t testing.TB, n int, backend string) *fleet {
	t.Helper()
	return startFleetWith(t, n, backend, "", false)
}

// startFleetWith is startFleet with extra configuration appended to each
// node's file and, with ownHosts, each node in a UTS namespace of its own
// with its name as host name (as each server of a real fleet has).
func startFleetWith(t testing.TB, n int, backend, extra string, ownHosts bool) *fleet {
	t.Helper()
	bin := container.Bin(t, "otpgated")
	f := &fleet{t: t}
	if backend == "postgres" {
		f.pg, f.dsn = startPostgres(t)
	}
	base, err := os.MkdirTemp("", "otpgate-fleet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	f.base = base
	dsnFile := filepath.Join(base, "postgres.dsn")
	if err := os.WriteFile(dsnFile, []byte(f.dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// One key for the fleet: the first node's, copied to the others as
	// an administrator would (docs/fleet.md).
	var key []byte
	for i := range n {
		nd := &fleetNode{name: fmt.Sprintf("node%d", i)}
		dir := filepath.Join(base, nd.name)
		nd.socket = filepath.Join(dir, "run", "otpgated.sock")
		nd.stateDir = filepath.Join(dir, "state")
		nd.config = filepath.Join(dir, "config.toml")
		nd.log = filepath.Join(dir, "otpgated.log")
		if err := store.PrepareStateDir(nd.stateDir); err != nil {
			t.Fatal(err)
		}
		keyPath := filepath.Join(nd.stateDir, "secret.key")
		if key == nil {
			if key, err = seal.LoadOrCreateKey(keyPath); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(keyPath, key, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`[daemon]
socket = %q
state_dir = %q
[store]
backend = %q
dsn_file = %q
timeout = "2s"
[rate_limit]
max_failures = %d
# The fleet suite counts failures per user across servers, from one
# address; the per-address limit is tested in daemon/source_test.go.
per_source_max_failures = 0
`, nd.socket, nd.stateDir, backend, dsnFile, fleetMaxFailures) + extra
		if ownHosts {
			nd.hostname = "fleet-" + nd.name
		}
		if err := os.WriteFile(nd.config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		f.nodes = append(f.nodes, nd)
		nd.start(t, bin)
	}
	if f.sealer, err = seal.New(key); err != nil {
		t.Fatal(err)
	}
	if backend == "postgres" {
		if f.db, err = postgres.Open(f.dsn, postgres.Options{MaxConns: 16}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.db.Close() })
	}
	t.Cleanup(func() {
		for _, nd := range f.nodes {
			nd.stop(t)
		}
	})
	return f
}

// start runs the node's otpgated and waits until it answers a ping.
func (nd *fleetNode) start(t testing.TB, bin string) {
	t.Helper()
	logf, err := os.OpenFile(nd.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	nd.cmd = exec.Command(bin, "-config", nd.config)
	if nd.hostname != "" {
		// unshare and sh exec: the node keeps the process.
		nd.cmd = exec.Command("unshare", "--uts", "sh", "-c", `hostname "$0" && exec "$@"`, nd.hostname, bin, "-config", nd.config)
	}
	nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
	nd.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := nd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nd.done = make(chan error, 1)
	go func() { nd.done <- nd.cmd.Wait() }()
	c := &protocol.Client{Socket: nd.socket, Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, err := c.Do(context.Background(), &protocol.Request{Op: protocol.OpPing})
		if err == nil {
			return
		}
		select {
		case werr := <-nd.done:
			nd.done <- werr
			t.Fatalf("%s exited at start (%v):\n%s", nd.name, werr, readTail(nd.log))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering after 20s: %v\n%s", nd.name, err, readTail(nd.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the node with SIGTERM; the log is shown if the test failed.
func (nd *fleetNode) stop(t testing.TB) {
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-nd.done:
	case <-time.After(10 * time.Second):
		nd.cmd.Process.Kill()
		err = <-nd.done
	}
	nd.cmd = nil
	if t.Failed() {
		t.Logf("%s (ended: %v) log:\n%s", nd.name, err, readTail(nd.log))
	}
}

// alive reports whether the node's process is still running.
func (nd *fleetNode) alive() bool {
	select {
	case err := <-nd.done:
		nd.done <- err
		return false
	default:
		return true
	}
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// enroll writes an active enrollment for user straight into the store
// (as admin import would) and returns the secret.
func (f *fleet) enroll(user string) []byte {
	f.t.Helper()
	secret, err := otp.GenerateSecret(20)
	if err != nil {
		f.t.Fatal(err)
	}
	sealed, err := f.sealer.Seal(user, secret)
	if err != nil {
		f.t.Fatal(err)
	}
	now := time.Now()
	err = f.db.Update(user, func(*store.Record) (*store.Record, error) {
		return &store.Record{Active: &store.Enrollment{
			SealedSecret: sealed, Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: now, ActivatedAt: now,
		}}, nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret
}

// verify logs user in with code through node i as root, from a remote
// host, and returns the decision the login showed.
func (f *fleet) verify(i int, user, code string) (protocol.Outcome, error) {
	c := &protocol.Client{Socket: f.nodes[i%len(f.nodes)].socket, Timeout: 10 * time.Second}
	st, err := testutil.Login(c, protocol.Request{User: user, Service: "sshd", RHost: "192.0.2.10"}, code)
	if err != nil {
		return "", err
	}
	return stepOutcome(st), nil
}

// mustVerify is verify that fails the test on an error.
func (f *fleet) mustVerify(t *testing.T, i int, user, code string) protocol.Outcome {
	t.Helper()
	out, err := f.verify(i, user, code)
	if err != nil {
		t.Fatalf("verify through %s: %v", f.nodes[i%len(f.nodes)].name, err)
	}
	return out
}

func currentCode(secret []byte) string { return otp.TOTP(secret, time.Now(), otp.DefaultParams()) }

// outcomes runs n concurrent verifications of codes(i) spread round-robin
// over the fleet's nodes, and counts the outcomes; any error fails.
func (f *fleet) outcomes(t *testing.T, user string, n int, codes func(i int) string) map[protocol.Outcome]int {
	t.Helper()
	var mu sync.Mutex
	got := map[protocol.Outcome]int{}
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out, err := f.verify(i, user, codes(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			got[out]++
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d verifications failed, first: %v", len(errs), n, errs[0])
	}
	return got
}

func TestFleet(t *testing.T) {
	f := startFleet(t, 3, "postgres")

	t.Run("a code accepted through one server is refused by the other two", func(t *testing.T) {
		secret := f.enroll("alice")
		code := currentCode(secret)
		if out := f.mustVerify(t, 0, "alice", code); out != protocol.OutcomeAccept {
			t.Fatalf("node0: %s, want accept", out)
		}
		for i := 1; i < 3; i++ {
			if out := f.mustVerify(t, i, "alice", code); out != protocol.OutcomeReplay {
				t.Errorf("node%d: %s for a code used on node0, want replay", i, out)
			}
		}
	})

	t.Run("32 concurrent identical codes spread over three servers: exactly one is accepted", func(t *testing.T) {
		secret := f.enroll("bob")
		code := currentCode(secret)
		got := f.outcomes(t, "bob", 32, func(int) string { return code })
		if got[protocol.OutcomeAccept] != 1 {
			t.Errorf("outcomes %v: want exactly one accept", got)
		}
		// The others are replays (each counted as a failure) until the
		// user is locked.
		if got[protocol.OutcomeReplay]+got[protocol.OutcomeLocked] != 31 || got[protocol.OutcomeReplay] != fleetMaxFailures {
			t.Errorf("outcomes %v: want %d replays, then locked", got, fleetMaxFailures)
		}
	})

	t.Run("failures spread over three servers lock the user at max_failures", func(t *testing.T) {
		secret := f.enroll("carol")
		bad := wrongCode(t, otp.EncodeSecret(secret))
		got := f.outcomes(t, "carol", 30, func(int) string { return bad })
		if got[protocol.OutcomeReject] != fleetMaxFailures || got[protocol.OutcomeLocked] != 30-fleetMaxFailures {
			t.Errorf("outcomes %v: want exactly %d rejects fleet-wide, then locked", got, fleetMaxFailures)
		}
		for i := range 3 {
			if out := f.mustVerify(t, i, "carol", currentCode(secret)); out != protocol.OutcomeLocked {
				t.Errorf("node%d: the right code while locked: %s, want locked", i, out)
			}
		}
		rec, err := f.db.Get("carol")
		if err != nil {
			t.Fatal(err)
		}
		if !time.Now().Before(rec.LockedUntil) || rec.Lockouts != 1 {
			t.Errorf("stored record: LockedUntil %v, Lockouts %d; want a current lockout, the first", rec.LockedUntil, rec.Lockouts)
		}
	})

	t.Run("with the database down verification is denied, and works again when it is back", func(t *testing.T) {
		secret := f.enroll("dave")
		code := currentCode(secret)
		if err := f.pg.Stop(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			start := time.Now()
			out, err := f.verify(i, "dave", code)
			var perr *protocol.Error
			if !errors.As(err, &perr) {
				t.Errorf("node%d with the database down: %q, %v; want an error reply (a denial)", i, out, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("node%d took %v to deny, want about store.timeout (2s) at most", i, d)
			}
			if !f.nodes[i].alive() {
				t.Fatalf("node%d exited with the database down:\n%s", i, readTail(f.nodes[i].log))
			}
		}
		if err := f.pg.Restart(); err != nil {
			t.Fatal(err)
		}
		// The denied attempts consumed nothing: the same code is accepted
		// once, then refused fleet-wide.
		if out := f.mustVerify(t, 1, "dave", code); out != protocol.OutcomeAccept {
			t.Fatalf("node1 after the database came back: %s, want accept", out)
		}
		for _, i := range []int{0, 2} {
			if out := f.mustVerify(t, i, "dave", code); out != protocol.OutcomeReplay {
				t.Errorf("node%d: %s, want replay", i, out)
			}
		}
	})
}

// TestMigrateStoreBinary copies a bolt store into PostgreSQL with
// `otpgated -migrate-store bolt`, serves a login from the copy, and copies
// it back into an empty bolt store with `-migrate-store postgres`.
func TestMigrateStoreBinary(t *testing.T) {
	bin := container.Bin(t, "otpgated")
	_, dsn := startPostgres(t)
	base := t.TempDir()
	dsnFile := filepath.Join(base, "postgres.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig := func(name, stateDir string) string {
		p := filepath.Join(base, name)
		cfg := fmt.Sprintf("[daemon]\nsocket = %q\nstate_dir = %q\n[store]\nbackend = \"postgres\"\ndsn_file = %q\n",
			filepath.Join(base, name+".sock"), stateDir, dsnFile)
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stateA := filepath.Join(base, "a")
	if err := store.PrepareStateDir(stateA); err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(stateA)
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"/source/192.0.2.1", "alice", "bob", "zoë"}
	for i, u := range users {
		if err := b.Update(u, func(*store.Record) (*store.Record, error) {
			return &store.Record{LastStep: uint64(100 + i), Failures: i}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	run := func(cfg, from string) (string, error) {
		out, err := exec.Command(bin, "-config", cfg, "-migrate-store", from).CombinedOutput()
		return string(out), err
	}
	cfgA := writeConfig("a.toml", stateA)
	out, err := run(cfgA, "bolt")
	if err != nil || !strings.Contains(out, "copied and checked 4 records from bolt to postgres") {
		t.Fatalf("-migrate-store bolt: %v\n%s", err, out)
	}
	if strings.Contains(out, dsn) {
		t.Errorf("output shows the DSN:\n%s", out)
	}
	if out, err := run(cfgA, "bolt"); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("second -migrate-store bolt: %v\n%s; want a refusal (destination not empty)", err, out)
	}
	pg, err := postgres.Open(dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var got []string
	if err := pg.List("", func(r *store.Record) error {
		got = append(got, fmt.Sprintf("%s:%d:%d", r.User, r.LastStep, r.Failures))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"/source/192.0.2.1:100:0", "alice:101:1", "bob:102:2", "zoë:103:3"}
	if !slices.Equal(got, want) {
		t.Errorf("postgres after migrate: %v, want %v", got, want)
	}

	stateB := filepath.Join(base, "b")
	cfgB := writeConfig("b.toml", stateB)
	if out, err := run(cfgB, "postgres"); err != nil || !strings.Contains(out, "copied and checked 4 records from postgres to bolt") {
		t.Fatalf("-migrate-store postgres: %v\n%s", err, out)
	}
	back, err := bolt.Open(stateB)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	rec, err := back.Get("zoë")
	if err != nil || rec.LastStep != 103 || rec.Failures != 3 {
		t.Errorf("bolt after migrating back: %+v, %v", rec, err)
	}

	// The DSN file must be root's and 0600; -check-config says so too.
	if out, err := exec.Command(bin, "-config", cfgA, "-check-config").CombinedOutput(); err != nil {
		t.Errorf("-check-config: %v\n%s", err, out)
	}
	if err := os.Chmod(dsnFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(cfgA, "postgres"); err == nil || !strings.Contains(string(out), "must be exactly 0600") {
		t.Errorf("-migrate-store with a 0644 DSN file: %v\n%s; want a refusal", err, out)
	}
	if out, err := exec.Command(bin, "-config", cfgA, "-check-config").CombinedOutput(); err == nil || !strings.Contains(string(out), "must be exactly 0600") {
		t.Errorf("-check-config with a 0644 DSN file: %v\n%s; want a refusal", err, out)
	}
}

// BenchmarkFleetVerify measures accepted verifications through the real
// sockets of real otpgated processes: one with the embedded store (bolt),
// one on PostgreSQL, and three on one PostgreSQL database with the
// requests spread over them. Every request is the first use of the
// current code of a different user, so b.N may not exceed the users
// seeded: run with -benchtime=Nx, N <= 5000.
func BenchmarkFleetVerify(b *testing.B) {
	const users = 5000
	for _, bc := range []struct {
		name    string
		backend string
		nodes   int
	}{
		{"bolt", "bolt", 1},
		{"postgres", "postgres", 1},
		{"postgres-3-servers", "postgres", 3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := startFleet(b, bc.nodes, bc.backend)
			var st store.Store = f.db
			if bc.backend == "bolt" {
				// Seed through the node's own file: stop it, write, restart.
				f.nodes[0].stop(b)
				db, err := bolt.Open(f.nodes[0].stateDir)
				if err != nil {
					b.Fatal(err)
				}
				st = db
			}
			secrets := seedFleetUsers(b, f, st, users)
			if bc.backend == "bolt" {
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				f.nodes[0].start(b, container.Bin(b, "otpgated"))
			}
			var used atomic.Int64
			for _, clients := range []int{1, 16} {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
					if b.N > users {
						b.Fatalf("b.N = %d exceeds the %d seeded users; use -benchtime=%dx or less", b.N, users, users)
					}
					benchFleet(b, f, clients, secrets, &used)
				})
			}
		})
	}
}

// benchUser is the name of the i-th benchmark user.
func benchUser(i int) string { return fmt.Sprintf("fleet%05d", i) }

func seedFleetUsers(b *testing.B, f *fleet, st store.Store, n int) [][]byte {
	b.Helper()
	secrets := make([][]byte, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 16)
	for i := range n {
		secret, err := otp.GenerateSecret(20)
		if err != nil {
			b.Fatal(err)
		}
		secrets[i] = secret
		sealed, err := f.sealer.Seal(benchUser(i), secret)
		if err != nil {
			b.Fatal(err)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			now := time.Now()
			err := st.Update(benchUser(i), func(*store.Record) (*store.Record, error) {
				return &store.Record{Active: &store.Enrollment{
					SealedSecret: sealed, Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: now, ActivatedAt: now,
				}}, nil
			})
			if err != nil {
				failed.Store(err)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return secrets
}

// benchFleet verifies b.N fresh users' current codes with clients
// concurrent clients, spread over the nodes, and reports latencies.
// used counts the users earlier runs on this fleet consumed.
func benchFleet(b *testing.B, f *fleet, clients int, secrets [][]byte, used *atomic.Int64) {
	// A user's code is accepted once per step: take users no earlier run
	// used, and start over only at the next step.
	first := int(used.Add(int64(b.N))) - b.N
	if first+b.N > len(secrets) {
		next := otp.StepStart(otp.Step(time.Now(), 30)+1, 30)
		b.Logf("all users used; waiting %v for their codes to change", time.Until(next).Round(time.Second))
		time.Sleep(time.Until(next) + 100*time.Millisecond)
		used.Store(int64(b.N))
		first = 0
	}
	var next atomic.Int64
	var rejected atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	for c := range clients {
		wg.Go(func() {
			cl := &protocol.Client{Socket: f.nodes[c%len(f.nodes)].socket}
			var local []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				u := first + i
				start := time.Now()
				st, err := testutil.Login(cl, protocol.Request{User: benchUser(u), Service: "bench"}, currentCode(secrets[u]))
				local = append(local, time.Since(start))
				if err != nil || st.Verdict != protocol.VerdictSuccess {
					rejected.Add(1)
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := rejected.Load(); n > 0 {
		b.Fatalf("%d of %d valid codes were not accepted", n, b.N)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
}
