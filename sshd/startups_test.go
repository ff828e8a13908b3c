//go:build root

package sshd

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestDropPercent checks the curve against OpenSSH's should_drop_connection:
// rate + (100-rate)*(n-start)/(full-start) percent, in integers.
func TestDropPercent(t *testing.T) {
	def := DefaultConfig().MaxStartups // 10:30:100
	tests := []struct {
		m    Startups
		n    int
		want int
	}{
		{def, 0, 0},
		{def, 9, 0},
		{def, 10, 30},
		{def, 11, 30}, // 30 + 70*1/90 = 30.8, truncated as in OpenSSH
		{def, 40, 53}, // 30 + 70*30/90 = 53.3
		{def, 55, 65},
		{def, 99, 99},
		{def, 100, 100},
		{def, 1000, 100},
		{Startups{Start: 3, Rate: 100, Full: 3}, 2, 0},
		{Startups{Start: 3, Rate: 100, Full: 3}, 3, 100},
		{Startups{Start: 5, Rate: 50, Full: 15}, 10, 75},
		{Startups{Start: 1, Rate: 1, Full: 2}, 1, 1},
	}
	for _, tt := range tests {
		if got := dropPercent(tt.m, tt.n); got != tt.want {
			t.Errorf("dropPercent(%s, %d) = %d, want %d", tt.m, tt.n, got, tt.want)
		}
	}
}

// scripted returns draws in order and counts them; it fails the test when
// more draws are taken than scripted.
type scripted struct {
	t     *testing.T
	draws []int
	used  int
}

func (s *scripted) draw(n int) int {
	if n != 100 {
		s.t.Fatalf("draw(%d), want draw(100)", n)
	}
	if s.used >= len(s.draws) {
		s.t.Fatalf("draw %d taken, only %d scripted", s.used+1, len(s.draws))
	}
	s.used++
	return s.draws[s.used-1]
}

// TestShouldDrop is the per-source weighting: past start, a connection
// passes one draw for itself and one for every unauthenticated connection
// its source already holds; the per-source cap holds regardless.
func TestShouldDrop(t *testing.T) {
	def := DefaultConfig().MaxStartups // 10:30:100; at n = 40 the chance is 53%
	tests := []struct {
		name      string
		perSource int
		n, held   int
		draws     []int
		drop      bool
		why       string
		used      int
	}{
		{name: "below start: no draw", perSource: 3, n: 9, held: 2, drop: false, used: 0},
		{name: "newcomer wins its draw", perSource: 3, n: 40, held: 0, draws: []int{53}, drop: false, used: 1},
		{name: "newcomer loses its draw", perSource: 3, n: 40, held: 0, draws: []int{52}, drop: true, why: dropRandom, used: 1},
		{name: "source holding 2 passes 3 draws", perSource: 3, n: 40, held: 2, draws: []int{99, 60, 53}, drop: false, used: 3},
		{name: "source holding 2 loses its last draw", perSource: 3, n: 40, held: 2, draws: []int{99, 60, 10}, drop: true, why: dropRandom, used: 3},
		{name: "source holding 1 loses its first draw", perSource: 3, n: 40, held: 1, draws: []int{0, 99}, drop: true, why: dropRandom, used: 1},
		{name: "same draws pass a newcomer", perSource: 3, n: 40, held: 0, draws: []int{99, 0}, drop: false, used: 1},
		{name: "per-source cap below start", perSource: 3, n: 3, held: 3, drop: true, why: dropPerSource, used: 0},
		{name: "per-source cap past start", perSource: 3, n: 50, held: 3, drop: true, why: dropPerSource, used: 0},
		{name: "no per-source cap", perSource: 0, n: 5, held: 5, drop: false, used: 0},
		{name: "full: no draw", perSource: 0, n: 100, held: 0, drop: true, why: dropFull, used: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scripted{t: t, draws: tt.draws}
			drop, why := shouldDrop(def, tt.perSource, tt.n, tt.held, r.draw)
			if drop != tt.drop || why != tt.why {
				t.Errorf("shouldDrop = %v %q, want %v %q", drop, why, tt.drop, tt.why)
			}
			if r.used != tt.used {
				t.Errorf("%d draws taken, want %d", r.used, tt.used)
			}
		})
	}
}

// TestShouldDropWeightsSources counts, over every combination of draws, how
// often a newcomer and a source already holding connections get through:
// the chance falls as (1-p)^(held+1).
func TestShouldDropWeightsSources(t *testing.T) {
	m := Startups{Start: 10, Rate: 50, Full: 110} // p = 50% at n = 10
	for held, want := range []int{50, 25, 12} {   // percent of 100^(held+1) sequences admitted, truncated
		admitted, total := 0, 0
		var seq func(prefix []int)
		seq = func(prefix []int) {
			if len(prefix) == held+1 {
				i := 0
				drop, _ := shouldDrop(m, 0, 10, held, func(int) int { i++; return prefix[i-1] })
				total++
				if !drop {
					admitted++
				}
				return
			}
			for d := range 100 {
				seq(append(prefix, d))
			}
		}
		seq(nil)
		if got := admitted * 100 / total; got != want {
			t.Errorf("held %d: %d%% admitted, want %d%%", held, got, want)
		}
	}
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// closedSoon reports whether the server closes c within wait (reading
// past its version string).
func closedSoon(c net.Conn, wait time.Duration) bool {
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		panic(err) // only on a connection the test closed itself
	}
	buf := make([]byte, 256)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// TestRandomEarlyDrop: past start, admission follows the server's
// randomness source: a losing draw drops a new connection, a winning one
// lets a login through while the idle connections stay.
func TestRandomEarlyDrop(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, func(c *Config) {
		c.MaxStartups = Startups{Start: 2, Rate: 30, Full: 50}
		c.PerSourceMaxStartups = 3
	})
	e.daemon.skipAll()
	// The server calls draw with its mutex held.
	setDraw := func(f func(int) int) {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		e.srv.draw = f
	}
	var draws []int
	setDraw(func(n int) int { draws = append(draws, n); return 0 }) // always lose
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	idle = append(idle, dialFrom(t, "127.0.0.5", e.addr), dialFrom(t, "127.0.0.6", e.addr))
	time.Sleep(100 * time.Millisecond)
	if c := dialFrom(t, "127.0.0.7", e.addr); !closedSoon(c, 300*time.Millisecond) {
		t.Error("a connection past start that lost its draw was not dropped")
	}
	e.srv.mu.Lock()
	if len(draws) != 1 || draws[0] != 100 {
		t.Errorf("draws %v, want one draw(100)", draws)
	}
	e.srv.mu.Unlock()
	if !strings.Contains(e.logs.String(), "reason=\"random early drop (max_startups)\"") {
		t.Error("no log line for the random drop")
	}
	setDraw(func(int) int { return 99 }) // always win
	c, _, err := e.dial(testUser, []ssh.Signer{key}, nil)
	if err != nil {
		t.Fatalf("login past start with winning draws: %v", err)
	}
	c.Close()
	for _, c := range idle {
		if closedSoon(c, 10*time.Millisecond) {
			t.Error("an idle connection below the grace time was closed")
		}
	}
}

// TestHandshakeTimeout: a connection that sends nothing is closed at
// handshake_timeout, long before login_grace_time; a client that finished
// the key exchange but takes longer than handshake_timeout to offer its
// key still logs in.
func TestHandshakeTimeout(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, func(c *Config) {
		c.HandshakeTimeout = Duration{Duration: time.Second}
		c.LoginGraceTime = Duration{Duration: 20 * time.Second}
	})
	e.daemon.skipAll()
	silent := dialFrom(t, "127.0.0.1", e.addr)
	defer silent.Close()
	if !closedSoon(silent, 10*time.Second) {
		t.Fatal("a silent connection was still open 10s after handshake_timeout (grace time 20s)")
	}
	if !strings.Contains(e.logs.String(), "handshake timeout exceeded") {
		t.Error("no handshake timeout log line")
	}

	nc := dialFrom(t, "127.0.0.1", e.addr)
	defer nc.Close()
	slowKeys := ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		time.Sleep(2500 * time.Millisecond) // after the key exchange
		return []ssh.Signer{key}, nil
	})
	cc, chans, reqs, err := ssh.NewClientConn(nc, e.addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{slowKeys}, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatalf("a client slow to authenticate (not to handshake) was cut off: %v", err)
	}
	c := ssh.NewClient(cc, chans, reqs)
	defer c.Close()
	if out, status := run(t, c, "echo in", nil); out != "in\n" || status != 0 {
		t.Errorf("exec = %q %d", out, status)
	}
}

// TestBareMaxStartupsIsLogged: the bare number of earlier versions is read
// as "N:30:10N", and the server says so, with the string to write.
func TestBareMaxStartupsIsLogged(t *testing.T) {
	e := startServer(t, nil, func(c *Config) { c.MaxStartups = Startups{Start: 10, Rate: 30, Full: 100, Bare: true} })
	want := `sshd.max_startups = 10 is read as \"10:30:100\" (start:rate:full)`
	if !strings.Contains(e.logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, e.logs.String())
	}
}
