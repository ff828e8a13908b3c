//go:build root

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// These tests run the real otpgated binary, built once by TestMain.

var daemonBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "otpgated tests must run as root")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "otpgated-bin-")
	if err != nil {
		panic(err)
	}
	daemonBin = filepath.Join(dir, "otpgated")
	out, err := exec.Command("go", "build", "-o", daemonBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build otpgated: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type instance struct {
	t       *testing.T
	dir     string
	cfgPath string
	socket  string
	state   string
	cmd     *exec.Cmd
	stderr  *testutil.SyncBuffer
}

func newInstance(t *testing.T, extra string) *instance {
	t.Helper()
	dir := t.TempDir()
	in := &instance{t: t, dir: dir, socket: filepath.Join(dir, "run", "otpgated.sock"), state: filepath.Join(dir, "state")}
	in.cfgPath = filepath.Join(dir, "config.toml")
	in.writeConfig(extra)
	return in
}

func (in *instance) writeConfig(extra string) {
	in.t.Helper()
	cfg := fmt.Sprintf("%s\n[daemon]\nsocket = %q\nstate_dir = %q\n", extra, in.socket, in.state)
	if err := os.WriteFile(in.cfgPath, []byte(cfg), 0o644); err != nil {
		in.t.Fatal(err)
	}
}

// start runs otpgated and waits until it answers a ping.
func (in *instance) start() {
	in.t.Helper()
	in.stderr = &testutil.SyncBuffer{}
	in.cmd = exec.Command(daemonBin, "-config", in.cfgPath)
	in.cmd.Stderr = in.stderr
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() {
		if in.cmd.ProcessState == nil {
			in.cmd.Process.Kill()
			in.cmd.Wait()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := protocol.Client{Socket: in.socket, Timeout: time.Second}
		if _, err := c.Do(context.Background(), &protocol.Request{Op: protocol.OpPing}); err == nil {
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("otpgated did not come up: %s", in.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run runs otpgated expecting it to exit, and returns its exit code and stderr.
func (in *instance) run() (int, string) {
	in.t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(daemonBin, "-config", in.cfgPath)
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { cmd.Wait(); close(done) }() // the exit code is read below
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		in.t.Fatalf("otpgated did not exit: %s", stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func (in *instance) kill9() {
	in.t.Helper()
	in.cmd.Process.Signal(syscall.SIGKILL)
	in.cmd.Wait()
}

func (in *instance) do(req *protocol.Request) (*protocol.Response, error) {
	c := protocol.Client{Socket: in.socket}
	return c.Do(context.Background(), req)
}

// login logs user in as root with code (see testutil.Login).
func (in *instance) login(user, code string) (*protocol.LoginStep, error) {
	return testutil.Login(&protocol.Client{Socket: in.socket}, protocol.Request{User: user, Service: "test"}, code)
}

func (in *instance) importSecret(user string) []byte {
	in.t.Helper()
	secret, err := otp.GenerateSecret(20)
	if err != nil {
		in.t.Fatal(err)
	}
	_, err = in.do(&protocol.Request{Op: protocol.OpAdminImport, User: user, Import: &protocol.Import{
		Secret: otp.EncodeSecret(secret), Algorithm: "SHA1", Digits: 6, Period: 30, Replace: true,
	}})
	if err != nil {
		in.t.Fatal(err)
	}
	return secret
}

func mode(t *testing.T, path string) (os.FileMode, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid
}

func TestFilesAndSocketHaveSafeModes(t *testing.T) {
	in := newInstance(t, "")
	in.start()
	tests := []struct {
		path string
		want os.FileMode
	}{
		{filepath.Dir(in.socket), os.ModeDir | 0o755},
		{in.socket, os.ModeSocket | 0o666},
		{in.state, os.ModeDir | 0o700},
		{filepath.Join(in.state, "secret.key"), 0o600},
		{filepath.Join(in.state, "otpgate.db"), 0o600},
	}
	for _, tt := range tests {
		m, uid := mode(t, tt.path)
		if m != tt.want || uid != 0 {
			t.Errorf("%s: mode %v uid %d, want %v root", tt.path, m, uid, tt.want)
		}
	}
	// A second daemon on the same socket refuses to start.
	code, stderr := in.run()
	if code == 0 || !strings.Contains(stderr, "already listening") && !strings.Contains(stderr, "in use by another process") {
		t.Fatalf("second daemon: exit %d: %s", code, stderr)
	}
}

func TestRefusesUnsafeStateDirectory(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, state string)
		want  string
	}{
		{"a world-readable directory", func(t *testing.T, s string) { testutil.Must(t, os.Chmod(s, 0o755)) }, "0700"},
		{"a group-writable directory", func(t *testing.T, s string) { testutil.Must(t, os.Chmod(s, 0o770)) }, "0700"},
		{"a directory owned by another user", func(t *testing.T, s string) { testutil.Must(t, os.Chown(s, 65534, 65534)) }, "owned by uid 65534"},
		{"a key file readable by others", func(t *testing.T, s string) { testutil.Must(t, os.Chmod(filepath.Join(s, "secret.key"), 0o644)) }, "0600"},
		{"a database that is a symlink", func(t *testing.T, s string) {
			db := filepath.Join(s, "otpgate.db")
			testutil.Must(t, os.Rename(db, db+".real"))
			testutil.Must(t, os.Symlink(db+".real", db))
		}, "not a regular file"},
		{"a state directory that is a symlink", func(t *testing.T, s string) {
			testutil.Must(t, os.Rename(s, s+".real"))
			testutil.Must(t, os.Symlink(s+".real", s))
		}, "is a symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInstance(t, "")
			in.start()
			in.cmd.Process.Signal(syscall.SIGTERM)
			in.cmd.Wait()
			tt.setup(t, in.state)
			code, stderr := in.run()
			if code == 0 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "must") && !strings.Contains(stderr, "refus") || !strings.Contains(stderr, in.state) {
				t.Fatalf("exit %d, stderr %q; want a refusal naming %s and %q", code, stderr, in.state, tt.want)
			}
		})
	}
}

// TestStateSurvivesKill9: a kill -9 right after a reply loses
// neither a used code nor a lockout.
func TestStateSurvivesKill9(t *testing.T) {
	in := newInstance(t, "[rate_limit]\nmax_failures = 3\n")
	in.start()
	secret := in.importSecret("daemon")
	bobSecret := in.importSecret("bin")
	for round := range 20 {
		code := otp.TOTP(secret, time.Now(), otp.DefaultParams())
		st, err := in.login("daemon", code)
		if err != nil {
			t.Fatal(err)
		}
		accepted := st.Verdict == protocol.VerdictSuccess
		in.kill9()
		in.start()
		st, err = in.login("daemon", code)
		if err != nil {
			t.Fatal(err)
		}
		if st.Verdict == protocol.VerdictSuccess {
			t.Fatalf("round %d: code accepted again after kill -9 (first accepted: %v)", round, accepted)
		}
		if _, err := in.do(&protocol.Request{Op: protocol.OpAdminUnlock, User: "daemon"}); err != nil {
			t.Fatal(err)
		}
		if round == 0 && !accepted {
			t.Fatalf("the first fresh code was not accepted: %+v", st)
		}
	}
	wrong := "000000"
	if otp.TOTP(bobSecret, time.Now(), otp.DefaultParams()) == wrong {
		wrong = "000001"
	}
	for range 3 {
		if _, err := in.login("bin", wrong); err != nil {
			in.t.Fatal(err)
		}
	}
	in.kill9()
	in.start()
	st, err := in.login("bin", otp.TOTP(bobSecret, time.Now(), otp.DefaultParams()))
	if err != nil || st.Verdict != protocol.VerdictRefused || !strings.HasPrefix(st.Messages[0].Text, "Too many failed attempts") {
		t.Fatalf("lockout after kill -9: %v %+v", err, st)
	}
}

func TestSIGHUPReloadsAndKeepsOldConfigOnError(t *testing.T) {
	in := newInstance(t, `issuer = "first"`)
	in.start()
	issuer := func() string {
		t.Helper()
		resp, err := in.do(&protocol.Request{Op: protocol.OpEnrollBegin, User: "daemon"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Enroll.Issuer
	}
	if got := issuer(); got != "first" {
		t.Fatalf("issuer %q", got)
	}
	in.writeConfig(`issuer = "second"`)
	in.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return issuer() == "second" })

	in.writeConfig("issuer = \"third\"\n[totp]\ndigits = 12\n")
	in.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(in.stderr.String(), "reload failed") })
	if got := issuer(); got != "second" {
		t.Fatalf("a broken config was applied: issuer %q", got)
	}
	if !strings.Contains(in.stderr.String(), "totp.digits") {
		t.Errorf("the reload error does not name the key: %s", in.stderr.String())
	}

	in.cmd.Process.Signal(syscall.SIGTERM)
	if err := in.cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM exit: %v", err)
	}
	if _, err := os.Stat(in.socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind after SIGTERM: %v", err)
	}
}

func TestNoCoreDumps(t *testing.T) {
	in := newInstance(t, "")
	in.start()
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", in.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Max core file size") {
			if fields := strings.Fields(sc.Text()); fields[4] != "0" || fields[5] != "0" {
				t.Fatalf("core dumps enabled: %s", sc.Text())
			}
			return
		}
	}
	t.Fatal("no core limit line in /proc/PID/limits")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
