//go:build root

package sshd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// socketUID returns the owner of the IPv4 TCP socket whose local address
// is local, as /proc/net/tcp lists it (the uid column ss -e shows).
func socketUID(t *testing.T, local net.Addr) int {
	t.Helper()
	ta := local.(*net.TCPAddr)
	ip := ta.IP.To4()
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ta.Port)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 7 && fields[1] == want {
			uid, err := strconv.Atoi(fields[7])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no socket at %s (%s) in /proc/net/tcp", local, want)
	return -1
}

// TestDialAsUser: the forwarded connection's socket belongs to the user
// whose credentials the helper ran with, not to root; a refused
// connection comes back as the helper's connect error.
func TestDialAsUser(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cred := &syscall.Credential{Uid: testUID, Gid: testGID, Groups: []uint32{testGID}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := dialAsUser(ctx, selfExe, cred, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := socketUID(t, c.LocalAddr()); got != testUID {
		t.Errorf("forwarded socket owned by uid %d, want the user's %d", got, testUID)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := peer.Read(buf); err != nil || string(buf) != "ping" {
		t.Errorf("read %q, %v", buf, err)
	}

	// A closed port: the helper's error, for the log.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	if c, err := dialAsUser(ctx, selfExe, cred, addr); err == nil {
		c.Close()
		t.Fatal("dial to a closed port succeeded")
	} else if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want connection refused", err)
	}
}

// TestDialHelperRefusesBadArguments: the helper mode connects only to one
// address given to it; anything else exits without a connection.
func TestDialHelperRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
		code int
	}{
		{name: "not a helper", args: []string{"otpgate-sshd", "-config", "x"}, ok: false},
		{name: "no arguments", args: []string{"otpgate-sshd"}, ok: false},
		{name: "helper without address", args: []string{"otpgate-sshd", dialHelperArg}, ok: true, code: 2},
		{name: "helper with two addresses", args: []string{"otpgate-sshd", dialHelperArg, "a:1", "b:2"}, ok: true, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ok := RunHelper(tt.args)
			if ok != tt.ok || code != tt.code {
				t.Errorf("RunHelper = %d %v, want %d %v", code, ok, tt.code, tt.ok)
			}
		})
	}
}

// TestDirectTCPIPConnectsAsTheUser: a direct-tcpip channel's connection to
// its destination is made with the user's uid, so that uid-based egress
// rules apply to it.
func TestDirectTCPIPConnectsAsTheUser(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, c := loginExempt(t, "", func(c *Config) { c.AllowTCPForwarding = true })
	conn, err := c.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// The server's end of the forwarded connection is the peer's remote.
	if got := socketUID(t, peer.RemoteAddr()); got != testUID {
		t.Errorf("forwarded connection made by uid %d, want the user's %d", got, testUID)
	}
}
