//go:build integration

package integration

import (
	"context"
	"errors"

	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Figures of TestSSHDStartupsFlood.
const (
	floodSources  = 20  // 127.0.0.2 … 127.0.0.21
	floodPerSrc   = 2   // below per_source_max_startups (3)
	floodDials    = 400 // per slot: the attacker's budget of reconnections
	floodLoginMax = 15  // legitimate tries; each fails with p ≈ 53% at 40 held
)

// TestSSHDStartupsFlood: while an attacker holds 40 idle TCP connections
// from 20 loopback addresses open against otpgate-sshd (with the default
// max_startups and per_source_max_startups, and reconnecting whatever is
// dropped or closed), a legitimate key+code login gets through within a
// few tries. handshake_timeout and login_grace_time are long here so that
// the idle connections really stay for the whole test: the random early
// drop alone must let the login in.
func TestSSHDStartupsFlood(t *testing.T) {
	e := newSSHDEnv(t, "login_grace_time = \"120s\"\nhandshake_timeout = \"120s\"\nlog_level = \"error\"\n")
	e.addUser("alice")
	e.enroll("alice")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sshdPort))

	ctx, stop := context.WithCancel(t.Context())
	var (
		held, maxHeld, dials, dropped atomic.Int64
		wg                            sync.WaitGroup
	)
	defer func() { stop(); wg.Wait() }()
	for i := range floodSources * floodPerSrc {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/floodPerSrc))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range floodDials {
				if ctx.Err() != nil {
					return
				}
				c, err := e.c.DialFromContext(ctx, "tcp", src, addr)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("flood dial from %s: %v", src.IP, err)
					}
					return
				}
				dials.Add(1)
				if closedWithin(c, 300*time.Millisecond) {
					dropped.Add(1)
					c.Close()
					time.Sleep(100 * time.Millisecond)
					continue
				}
				// Held: wait until the server or the test closes it.
				n := held.Add(1)
				// Raise maxHeld to n unless another connection raised it past n.
				for m := maxHeld.Load(); n > m; m = maxHeld.Load() {
					if maxHeld.CompareAndSwap(m, n) {
						break
					}
				}
				stopWatch := context.AfterFunc(ctx, func() { c.Close() })
				closedWithin(c, 0)
				stopWatch()
				held.Add(-1)
				c.Close()
			}
		}()
	}

	// Let the attacker fill its 40 slots (bounded), then log in.
	want := int64(floodSources * floodPerSrc)
	deadline := time.Now().Add(30 * time.Second)
	for held.Load() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	heldAtLogin := held.Load()
	tries, ok := 0, false
	var last sshRun
	for tries < floodLoginMax && !ok {
		tries++
		last = e.ssh("alice", "id_ed25519", e.code("alice"), nil, "echo IN")
		ok = last.exit == 0 && strings.Contains(last.out, "IN")
	}
	heldAfter := held.Load()
	stop()
	wg.Wait()
	t.Logf("flood: %d connections held at the first try (%d after the last, at most %d), %d dials, %d dropped at once; login after %d tries",
		heldAtLogin, heldAfter, maxHeld.Load(), dials.Load(), dropped.Load(), tries)
	if !ok {
		t.Errorf("no legitimate login in %d tries while the attacker held %d connections; last try: exit %d\n%s",
			floodLoginMax, heldAtLogin, last.exit, last.out)
	}
	if heldAtLogin < want {
		t.Errorf("the attacker held only %d idle connections when the login started, want %d (the test did not exercise the flood)", heldAtLogin, want)
	}
}

// closedWithin reports whether the peer closes c within wait (0: without
// a deadline), reading past whatever it sends (the server's version
// string).
func closedWithin(c net.Conn, wait time.Duration) bool {
	deadline := time.Time{}
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		panic(err) // only on a connection the test closed itself (this runs in goroutines too)
	}
	buf := make([]byte, 256)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}
