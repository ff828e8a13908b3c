//go:build integration

package integration

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
)

// TestSSHDLogin drives otpgate-sshd with the real OpenSSH client and the
// real otpgated: codes come from oathtool.
func TestSSHDLogin(t *testing.T) {
	e := newSSHDEnv(t, "")
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		e.addUser(u)
		e.enroll(u)
	}
	e.addUser(sshdExempt)
	e.enroll(sshdExempt) // exempt even though enrolled
	e.addUser("plain")
	e.addUser(sshdRequired)

	t.Run("right code runs the command and returns its status", func(t *testing.T) {
		r := e.ssh("alice", "id_ed25519", e.code("alice"), nil, "id -un; echo $HOME; exit 7")
		if r.exit != 7 || !strings.Contains(r.out, "alice\n/home/alice\n") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.prompts, sshdPrompt) {
			t.Errorf("askpass was not asked %q: %q", sshdPrompt, r.prompts)
		}
	})
	t.Run("wrong code is denied", func(t *testing.T) {
		// The client tries as many times as the lockout allows.
		tries := []string{"-o", "NumberOfPasswordPrompts=" + strconv.Itoa(sshdMaxFailed)}
		r := e.ssh("bob", "id_ed25519", e.wrongCode("bob"), tries, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.out, "Wrong code.") {
			t.Errorf("no refusal message:\n%s", r.out)
		}
		// The three failures count in otpgated's per-user limiter, the
		// one every entry point shares: bob is now locked.
		if st := e.login(protocol.Request{User: "bob", Service: "sudo"}, ""); stepOutcome(st) != protocol.OutcomeLocked {
			t.Errorf("after %d wrong codes through otpgate-sshd, a login shows %+v, want locked", sshdMaxFailed, st)
		}
	})
	t.Run("replayed code is denied", func(t *testing.T) {
		code := e.code("carol")
		if r := e.ssh("carol", "id_ed25519", code, nil, "echo IN"); r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("first use refused: exit %d\n%s", r.exit, r.out)
		}
		if r := e.ssh("carol", "id_ed25519", code, nil, "echo IN"); r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("replay accepted: exit %d\n%s", r.exit, r.out)
		}
		// Nor does another entry point accept it in the same step.
		if st := e.login(protocol.Request{User: "carol", Service: "sudo"}, code); stepOutcome(st) != protocol.OutcomeReplay {
			t.Errorf("code used through otpgate-sshd, again for sudo: %+v, want replay", st)
		}
	})
	t.Run("wrong key is denied without a prompt", func(t *testing.T) {
		r := e.ssh("dave", "stranger", e.code("dave"), nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") || r.prompts != "" {
			t.Fatalf("exit %d, prompts %q, output:\n%s", r.exit, r.prompts, r.out)
		}
		if !strings.Contains(r.out, "Permission denied (publickey)") {
			t.Errorf("output:\n%s", r.out)
		}
	})
	t.Run("unknown user is denied like a wrong key", func(t *testing.T) {
		r := e.ssh("nosuchuser", "id_ed25519", "123456", nil, "echo IN")
		if r.exit != 255 || r.prompts != "" || !strings.Contains(r.out, "Permission denied (publickey)") {
			t.Fatalf("exit %d, prompts %q, output:\n%s", r.exit, r.prompts, r.out)
		}
	})
	t.Run("root is denied", func(t *testing.T) {
		r := e.ssh("root", "id_ed25519", "123456", nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("exempt user logs in with the key alone", func(t *testing.T) {
		r := e.ssh(sshdExempt, "id_ed25519", "", nil, "echo IN")
		if r.exit != 0 || !strings.Contains(r.out, "IN") || r.prompts != "" {
			t.Fatalf("exit %d, prompts %q, output:\n%s", r.exit, r.prompts, r.out)
		}
	})
	t.Run("user without enrollment logs in with the key alone", func(t *testing.T) {
		r := e.ssh("plain", "id_ed25519", "", nil, "echo IN")
		if r.exit != 0 || !strings.Contains(r.out, "IN") || r.prompts != "" {
			t.Fatalf("exit %d, prompts %q, output:\n%s", r.exit, r.prompts, r.out)
		}
	})
	t.Run("required user without enrollment is refused with the hint", func(t *testing.T) {
		r := e.ssh(sshdRequired, "id_ed25519", "123456", nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") || r.prompts != "" {
			t.Fatalf("exit %d, prompts %q, output:\n%s", r.exit, r.prompts, r.out)
		}
		if !strings.Contains(r.out, "otpgate enroll") {
			t.Errorf("no enrollment hint:\n%s", r.out)
		}
	})
	t.Run("locked user is refused with the message", func(t *testing.T) {
		for range sshdMaxFailed {
			e.login(protocol.Request{User: "erin", Service: "sshdtest"}, e.wrongCode("erin"))
		}
		check := e.login(protocol.Request{User: "erin", Service: "sshdtest"}, "")
		if stepOutcome(check) != protocol.OutcomeLocked {
			t.Fatalf("erin not locked: %+v", check)
		}
		r := e.ssh("erin", "id_ed25519", e.code("erin"), nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") || r.prompts != "" {
			t.Fatalf("exit %d, prompts %q, output:\n%s", r.exit, r.prompts, r.out)
		}
		if !strings.Contains(r.out, stepText(check)) {
			t.Errorf("no lockout message:\n%s", r.out)
		}
	})
	t.Run("pty session prints its terminal", func(t *testing.T) {
		r := e.ssh(sshdExempt, "id_ed25519", "", []string{"-tt"}, "tty; stat -c %U $(tty)")
		if r.exit != 0 || !strings.Contains(r.out, "/dev/pts/") || !strings.Contains(r.out, sshdExempt) {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("the log never holds a code", func(t *testing.T) {
		code := e.code("alice")
		e.ssh("alice", "id_ed25519", code, nil, "true")
		if strings.Contains(e.server.Output(), code) {
			t.Errorf("server log contains the code %s", code)
		}
		for _, want := range []string{`msg="login accepted"`, "second_factor=success", "fingerprint=SHA256:"} {
			if !strings.Contains(e.server.Output(), want) {
				t.Errorf("server log lacks %q", want)
			}
		}
	})
}

// TestSSHDSFTP puts and gets a file with sftp(1) through the system's
// sftp-server run as the user.
func TestSSHDSFTP(t *testing.T) {
	e := newSSHDEnv(t, "")
	e.addUser(sshdExempt)
	e.c.WriteFile(t, sshdWorkDir+"/upload.txt", []byte("payload 42\n"), 0o644)
	e.c.WriteFile(t, sshdWorkDir+"/batch", []byte("put "+sshdWorkDir+"/upload.txt up.txt\nget up.txt "+sshdWorkDir+"/down.txt\n"), 0o644)
	r := e.sshTool("sftp", sshdExempt, "id_ed25519", "", []string{"-b", sshdWorkDir + "/batch"})
	if r.exit != 0 {
		t.Fatalf("sftp exit %d:\n%s", r.exit, r.out)
	}
	owner := strings.TrimSpace(e.c.Run(t, "stat", "-c", "%U:%G %a", "/home/"+sshdExempt+"/up.txt"))
	if !strings.HasPrefix(owner, sshdExempt+":"+sshdExempt+" ") {
		t.Errorf("uploaded file is %s, want owned by %s", owner, sshdExempt)
	}
	if got := string(e.c.ReadFile(t, sshdWorkDir+"/down.txt")); got != "payload 42\n" {
		t.Errorf("downloaded %q", got)
	}
}

// TestSSHDForwarding uses otpgate-sshd as a jump host (ssh -J and -W) to
// reach a local port, refused while allow_tcp_forwarding is off and
// allowed after a SIGHUP reload turns it on.
func TestSSHDForwarding(t *testing.T) {
	e := newSSHDEnv(t, "")
	e.addUser(sshdExempt)
	// The target is otpgate-sshd's own port: ssh -W prints the SSH
	// version string it reads from there.
	w := []string{"-W", "127.0.0.1:2222"}
	r := e.ssh(sshdExempt, "id_ed25519", "", w)
	if strings.Contains(r.out, "SSH-2.0-otpgate") || !strings.Contains(r.out, "administratively prohibited") {
		t.Fatalf("forwarding while disabled: exit %d\n%s", r.exit, r.out)
	}
	e.reload("allow_tcp_forwarding = true\npermit_open = [\"127.0.0.1:2222\"]\n")
	r = e.ssh(sshdExempt, "id_ed25519", "", w)
	if !strings.Contains(r.out, "SSH-2.0-otpgate") {
		t.Fatalf("-W through otpgate-sshd failed: exit %d\n%s", r.exit, r.out)
	}
	// ssh -J: otpgate-sshd as the jump host to itself.
	// (The jump host is named "localhost" so that ssh does not see a loop.)
	jump := fmt.Sprintf("ssh://%s@localhost:%d", sshdExempt, sshdPort)
	r = e.ssh(sshdExempt, "id_ed25519", "", []string{"-J", jump, "-o", "ProxyCommand=none"}, "echo VIA-JUMP")
	if r.exit != 0 || !strings.Contains(r.out, "VIA-JUMP") {
		t.Fatalf("ssh -J failed: exit %d\n%s", r.exit, r.out)
	}
	// A destination outside permit_open stays refused.
	r = e.ssh(sshdExempt, "id_ed25519", "", []string{"-W", "127.0.0.1:7008"})
	if !strings.Contains(r.out, "administratively prohibited") {
		t.Fatalf("destination outside permit_open: exit %d\n%s", r.exit, r.out)
	}
}

// TestSSHDPreAuthLimits checks the pre-authentication limits against the real binary: a silent
// connection is closed at login_grace_time, and while junk connections
// hold their source's max_startups share, a legitimate login from another
// address succeeds.
func TestSSHDPreAuthLimits(t *testing.T) {
	e := newSSHDEnv(t, "login_grace_time = \"3s\"\nmax_startups = 10\nper_source_max_startups = 3\n")
	e.addUser(sshdExempt)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sshdPort))

	start := time.Now()
	silent, err := e.c.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// 200 junk connections from 127.0.0.1: at most 3 are kept.
	var junk []net.Conn
	defer func() {
		for _, c := range junk {
			c.Close()
		}
	}()
	dropped := 0
	for range 200 {
		c, err := e.c.DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		junk = append(junk, c)
	}
	for _, c := range junk {
		// A kept connection waits out its deadline; a dropped one reads
		// EOF at once (past deadlines would hide that EOF).
		testutil.Must(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
					dropped++
				}
				break
			}
		}
	}
	if dropped < 190 {
		t.Errorf("only %d of 200 junk connections were dropped at once", dropped)
	}

	// Meanwhile a real login from another source address works.
	r := e.ssh(sshdExempt, "id_ed25519", "", []string{"-b", "127.0.0.2"}, "echo IN")
	if r.exit != 0 || !strings.Contains(r.out, "IN") {
		t.Fatalf("legitimate login during the flood: exit %d\n%s", r.exit, r.out)
	}

	// The silent connection is closed at the grace time.
	testutil.Must(t, silent.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 256)
	for {
		if _, err := silent.Read(buf); err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("silent connection still open 10s after login_grace_time")
			}
			break
		}
	}
	if d := time.Since(start); d < 2500*time.Millisecond || d > 8*time.Second {
		t.Errorf("silent connection closed after %v, want about 3s", d)
	}
	if !e.waitLog("login grace time exceeded", 5*time.Second) {
		t.Errorf("no grace-time log line")
	}
}

// TestSSHDShutdown sends SIGTERM while a session runs: the server stops
// accepting, lets the session finish and exits.
func TestSSHDShutdown(t *testing.T) {
	e := newSSHDEnv(t, "shutdown_timeout = \"20s\"\n")
	e.addUser(sshdExempt)
	done := make(chan sshRun, 1)
	go func() {
		done <- e.ssh(sshdExempt, "id_ed25519", "", nil, "sleep 2; echo FINISHED")
	}()
	if !e.waitLog("process started", 15*time.Second) {
		t.Fatal("session did not start")
	}
	if err := e.server.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !e.waitLog("shutting down", 5*time.Second) {
		t.Fatal("no shutdown log line")
	}
	if c, err := e.c.DialContext(t.Context(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(sshdPort))); err == nil {
		c.Close()
		t.Error("still accepting connections after SIGTERM")
	}
	r := <-done
	if r.exit != 0 || !strings.Contains(r.out, "FINISHED") {
		t.Fatalf("session cut short: exit %d\n%s", r.exit, r.out)
	}
	select {
	case <-e.server.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("otpgate-sshd did not exit after its last session")
	}
}

// TestSSHDExpiredAccount: an account past its expiry date cannot log in,
// as with sshd's PAM account stack.
func TestSSHDExpiredAccount(t *testing.T) {
	e := newSSHDEnv(t, "")
	e.addUser(sshdExempt)
	if r := e.ssh(sshdExempt, "id_ed25519", "", nil, "echo IN"); r.exit != 0 {
		t.Fatalf("login before expiry refused: exit %d\n%s", r.exit, r.out)
	}
	e.c.Run(t, "chage", "-E", "0", sshdExempt)
	if r := e.ssh(sshdExempt, "id_ed25519", "", nil, "echo IN"); r.exit != 255 || strings.Contains(r.out, "IN") {
		t.Fatalf("expired account logged in: exit %d\n%s", r.exit, r.out)
	}
}
