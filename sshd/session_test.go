//go:build root

package sshd

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/testutil"
)

// loginExempt starts a server whose daemon exempts the user and logs in
// with a key carrying options.
func loginExempt(t *testing.T, options string, mod func(*Config)) (*testEnv, *ssh.Client) {
	t.Helper()
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, options)}, mod)
	e.daemon.skipAll()
	c, _, err := e.dial(testUser, []ssh.Signer{key}, nil)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return e, c
}

func TestExecEnvironment(t *testing.T) {
	e, c := loginExempt(t, "", nil)
	out, status := run(t, c, "env | sort", func(s *ssh.Session) {
		if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
			t.Errorf("LANG refused: %v", err)
		}
		if err := s.Setenv("LC_TIME", "C"); err != nil {
			t.Errorf("LC_TIME refused: %v", err)
		}
		if err := s.Setenv("FOO", "bar"); err == nil {
			t.Error("FOO accepted although not in accept_env")
		}
		if err := s.Setenv("PATH", "/tmp"); err == nil {
			t.Error("PATH override accepted")
		}
	})
	if status != 0 {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{"USER=" + testUser, "LOGNAME=" + testUser, "HOME=" + e.home, "SHELL=/bin/sh",
		"PATH=" + userPath, "LANG=C.UTF-8", "LC_TIME=C", "SSH_CONNECTION=127.0.0.1 ", "SSH_CLIENT=127.0.0.1 "} {
		if !strings.Contains(out, "\n"+want) && !strings.HasPrefix(out, want) {
			t.Errorf("environment lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"FOO=", "SSH_TTY=", "OTPGATE", "TERM="} {
		if strings.Contains(out, bad) {
			t.Errorf("environment has %q:\n%s", bad, out)
		}
	}
	out, _ = run(t, c, "pwd; id -G", nil)
	if !strings.HasPrefix(out, e.home+"\n") {
		t.Errorf("cwd/groups = %q", out)
	}
}

func TestStdinAndStderr(t *testing.T) {
	_, c := loginExempt(t, "", nil)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdin = strings.NewReader("hello\nworld\n")
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Run("wc -l; echo oops >&2"); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(stdout.String()) != "2" || stderr.String() != "oops\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

func TestPTYSession(t *testing.T) {
	_, c := loginExempt(t, "", nil)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm-256color", 40, 100, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Start("tty; echo TERM=$TERM; stty size; stat -c '%u %a' $(tty)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("wait: %v (output %q)", err, out.String())
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/", "TERM=xterm-256color", "40 100", "48213 620"} {
		if !strings.Contains(got, want) {
			t.Errorf("pty output lacks %q:\n%s", want, got)
		}
	}
}

func TestWindowChangeAndSignal(t *testing.T) {
	_, c := loginExempt(t, "", nil)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("vt100", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	var out testutil.SyncBuffer
	s.Stdout = &out
	if err := s.Start("read x; stty size; sleep 30"); err != nil {
		t.Fatal(err)
	}
	if err := s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "50 132") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "50 132") {
		t.Fatalf("window change not applied: %q", out.String())
	}
	if err := s.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Errorf("wait = %v, want exit-signal TERM", err)
	}
}

func TestKeyOptionsEnforced(t *testing.T) {
	t.Run("no-pty refuses a terminal", func(t *testing.T) {
		_, c := loginExempt(t, "no-pty", nil)
		s, _ := c.NewSession()
		defer s.Close()
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
			t.Error("pty granted despite no-pty")
		}
	})
	t.Run("restrict refuses a terminal and forwarding", func(t *testing.T) {
		_, c := loginExempt(t, "restrict", func(c *Config) { c.AllowTCPForwarding = true })
		s, _ := c.NewSession()
		defer s.Close()
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
			t.Error("pty granted despite restrict")
		}
		ln := echoServer(t)
		if conn, err := c.Dial("tcp", ln); err == nil {
			conn.Close()
			t.Error("forwarding allowed despite restrict")
		}
	})
	t.Run("restrict,pty allows a terminal again", func(t *testing.T) {
		_, c := loginExempt(t, "restrict,pty", nil)
		s, _ := c.NewSession()
		defer s.Close()
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			t.Errorf("pty refused: %v", err)
		}
	})
	t.Run("command= replaces the request", func(t *testing.T) {
		_, c := loginExempt(t, `command="echo forced:$SSH_ORIGINAL_COMMAND"`, nil)
		out, status := run(t, c, "id", nil)
		if out != "forced:id\n" || status != 0 {
			t.Errorf("output %q status %d", out, status)
		}
	})
	t.Run("from= refuses other sources", func(t *testing.T) {
		key := newSigner(t)
		e := startServer(t, []string{authorizedLine(key, `from="10.0.0.0/8,!127.0.0.1"`)}, nil)
		e.daemon.skipAll()
		if _, _, err := e.dial(testUser, []ssh.Signer{key}, nil); err == nil {
			t.Error("login from a source outside from=")
		}
	})
	t.Run("unknown option disables the key", func(t *testing.T) {
		key := newSigner(t)
		e := startServer(t, []string{authorizedLine(key, `tunnel="1"`)}, nil)
		e.daemon.skipAll()
		if _, _, err := e.dial(testUser, []ssh.Signer{key}, nil); err == nil {
			t.Error("key with an unsupported option accepted")
		}
	})
}

// echoServer listens on loopback and echoes; it returns the address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestDirectTCPIP(t *testing.T) {
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	tests := []struct {
		name    string
		options string
		mod     func(*Config)
		allowed bool
	}{
		{name: "disabled by default", mod: nil},
		{name: "allowed", mod: func(c *Config) { c.AllowTCPForwarding = true }, allowed: true},
		{name: "permit_open matches", mod: func(c *Config) { c.AllowTCPForwarding = true; c.PermitOpen = []string{"127.0.0.1:" + port} }, allowed: true},
		{name: "permit_open does not match", mod: func(c *Config) { c.AllowTCPForwarding = true; c.PermitOpen = []string{"127.0.0.1:1"} }},
		{name: "key no-port-forwarding", options: "no-port-forwarding", mod: func(c *Config) { c.AllowTCPForwarding = true }},
		{name: "key permitopen matches", options: `permitopen="127.0.0.1:*"`, mod: func(c *Config) { c.AllowTCPForwarding = true }, allowed: true},
		{name: "key permitopen does not match", options: `permitopen="localhost:` + port + `"`, mod: func(c *Config) { c.AllowTCPForwarding = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := loginExempt(t, tt.options, tt.mod)
			conn, err := c.Dial("tcp", echo)
			if !tt.allowed {
				if err == nil {
					conn.Close()
					t.Fatal("forwarding allowed")
				}
				if !strings.Contains(err.Error(), "administratively prohibited") {
					t.Errorf("err = %v, want administratively prohibited", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "ping"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
				t.Errorf("echo = %q, %v", buf, err)
			}
		})
	}
}

func TestUnixSocketForwardingRefused(t *testing.T) {
	_, c := loginExempt(t, "", func(c *Config) { c.AllowTCPForwarding = true })
	if conn, err := c.Dial("unix", "/run/otpgate/otpgated.sock"); err == nil {
		conn.Close()
		t.Fatal("direct-streamlocal allowed")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("remote forwarding allowed")
	}
}

// TestSubsystem runs the configured sftp_server as the user through the
// login shell. The real sftp-server needs a passwd entry for the uid, so
// the unit test uses a stand-in script; the integration suite runs
// OpenSSH's sftp-server with sftp(1).
func TestSubsystem(t *testing.T) {
	dir, err := os.MkdirTemp("", "otpgate-sshd-sftp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	testutil.Must(t, os.Chmod(dir, 0o755))
	script := dir + "/fake-sftp"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"uid=$(id -u) argv0=$0\"\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, c := loginExempt(t, "", func(c *Config) { c.SFTPServer = script })
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	if err := s.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "payload"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	out, err := io.ReadAll(stdout)
	if err != nil {
		t.Fatal(err)
	}
	if want := "uid=48213 argv0=" + script + "\npayload"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
	s2, _ := c.NewSession()
	defer s2.Close()
	if err := s2.RequestSubsystem("nonesuch"); err == nil {
		t.Error("unknown subsystem accepted")
	}
}

func TestShutdownWaitsForSessions(t *testing.T) {
	e, c := loginExempt(t, "", nil)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Start("sleep 0.5; echo finished"); err != nil {
		t.Fatal(err)
	}
	e.cancel() // stop accepting
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	if err := s.Wait(); err != nil {
		t.Fatalf("session ended early: %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if out.String() != "finished\n" {
		t.Errorf("output %q", out.String())
	}
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Error("still accepting after shutdown")
	}
}

func TestMaxSessions(t *testing.T) {
	_, c := loginExempt(t, "", func(c *Config) { c.MaxSessions = 2 })
	s1, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if s3, err := c.NewSession(); err == nil {
		s3.Close()
		t.Fatal("third session opened with max_sessions = 2")
	}
	s1.Close()
	s2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := c.NewSession()
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session after closing the others: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freezingProxy forwards one TCP connection to target; after freeze() it
// stops passing the server's bytes to the client, like a dead network.
type freezingProxy struct {
	addr   string
	frozen chan struct{}
}

func newFreezingProxy(t *testing.T, target string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &freezingProxy{addr: ln.Addr().String(), frozen: make(chan struct{})}
	go func() {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", target)
		if err != nil {
			client.Close()
			return
		}
		t.Cleanup(func() { client.Close(); server.Close() })
		go io.Copy(server, client)
		buf := make([]byte, 32*1024)
		for {
			n, err := server.Read(buf)
			if err != nil {
				client.Close()
				return
			}
			select {
			case <-p.frozen:
				<-make(chan struct{}) // swallow everything from now on
			default:
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	return p
}

func TestClientAlive(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, func(c *Config) {
		c.ClientAliveInterval = Duration{Duration: 200 * time.Millisecond}
		c.ClientAliveCountMax = 2
	})
	e.daemon.skipAll()
	p := newFreezingProxy(t, e.addr)
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, p.addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := ssh.NewClient(cc, chans, reqs)
	defer c.Close()
	// A responsive client survives several probe intervals.
	time.Sleep(time.Second)
	if out, status := run(t, c, "echo alive", nil); out != "alive\n" || status != 0 {
		t.Fatalf("exec after 1s = %q %d", out, status)
	}
	if strings.Contains(e.logs.String(), "keep-alives") {
		t.Fatal("a responsive client was treated as dead")
	}
	close(p.frozen)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), "client not responding to keep-alives") {
		if time.Now().After(deadline) {
			t.Fatal("unresponsive client not disconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPTYBackgroundProcessDoesNotHoldSession(t *testing.T) {
	_, c := loginExempt(t, "", nil)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	start := time.Now()
	// The background process ignores the hangup and still holds the
	// terminal when the shell exits; the exit status must arrive anyway.
	if err := s.Run("(trap '' HUP; exec sleep 30) & echo started; exit 4"); err == nil {
		t.Fatal("want exit status 4")
	} else if ee := (*ssh.ExitError)(nil); !errors.As(err, &ee) || ee.ExitStatus() != 4 {
		t.Fatalf("err = %v, want exit status 4", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("session took %v", d)
	}
	if !strings.Contains(out.String(), "started") {
		t.Errorf("output %q", out.String())
	}
}

func TestInaccessibleHomeStartsInRoot(t *testing.T) {
	e, c := loginExempt(t, "", nil)
	if err := os.Chown(e.home, 0, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Must(t, os.Chmod(e.home, 0o700))
	out, status := run(t, c, "pwd", nil)
	if out != "/\n" || status != 0 {
		t.Errorf("pwd = %q, %d; want / when the home directory cannot be entered", out, status)
	}
}

func TestCanEnter(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		mode os.FileMode
		uid  uint32
		gid  uint32
		cred syscall.Credential
		want bool
	}{
		{0o700, 1000, 1000, syscall.Credential{Uid: 1000, Gid: 1000}, true},
		{0o600, 1000, 1000, syscall.Credential{Uid: 1000, Gid: 1000}, false},
		{0o710, 0, 1000, syscall.Credential{Uid: 1000, Gid: 5, Groups: []uint32{5, 1000}}, true},
		{0o700, 0, 1000, syscall.Credential{Uid: 1000, Gid: 1000}, false},
		{0o701, 0, 0, syscall.Credential{Uid: 1000, Gid: 1000}, true},
		{0o000, 5, 5, syscall.Credential{Uid: 0}, true},
	}
	for i, tt := range tests {
		d := filepath.Join(dir, strconv.Itoa(i))
		testutil.Must(t, os.Mkdir(d, 0o700))
		testutil.Must(t, os.Chmod(d, tt.mode))
		testutil.Must(t, os.Chown(d, int(tt.uid), int(tt.gid)))
		if got := canEnter(d, &tt.cred); got != tt.want {
			t.Errorf("case %d: canEnter = %v, want %v", i, got, tt.want)
		}
	}
}
