package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/protocol"
)

// Server is an otpgate SSH server. Create it with New, run it with Serve,
// stop it with Shutdown.
type Server struct {
	cfg     atomic.Pointer[Config]
	signers []ssh.Signer
	log     *slog.Logger
	level   *slog.LevelVar

	// newDaemon returns the client for otpgated; tests replace it.
	newDaemon func(cfg *Config) daemonClient
	// readKeys reads authorized_keys; tests replace it.
	readKeys func(a *account) ([]byte, error)
	// now is the clock for key expiry.
	now func() time.Time
	// dialForward connects a forwarded channel with the user's
	// credentials (dialAsUser).
	dialForward func(ctx context.Context, cred *syscall.Credential, addr string) (net.Conn, error)
	// draw returns a uniform integer in [0, n) for max_startups' random
	// early drop; tests replace it.
	draw func(n int) int
	// exe is the binary re-executed for the PAM account check, sessions
	// and the agent socket (selfExe).
	exe string
	// records are the login record files (utmp, wtmp, lastlog).
	records loginFiles

	nextID atomic.Uint64

	// mu guards the fields below.
	mu           sync.Mutex
	startups     int            // unauthenticated connections
	perSource    map[string]int // unauthenticated connections per source
	conns        map[*conn]struct{}
	shuttingDown bool
	// active counts connections being served; Shutdown waits on it.
	active sync.WaitGroup
}

// conn is one client connection.
type conn struct {
	id    uint64
	nc    net.Conn
	authd atomic.Bool // authenticated
}

// New returns a server using cfg (already validated) and the host keys in
// signers. Log lines go to log; level, if not nil, is set from
// cfg.LogLevel on New and Reload.
func New(cfg *Config, signers []ssh.Signer, log *slog.Logger, level *slog.LevelVar) (*Server, error) {
	if len(signers) == 0 {
		return nil, errors.New("sshd: no host keys")
	}
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	s := &Server{
		signers:   signers,
		log:       log,
		level:     level,
		newDaemon: func(cfg *Config) daemonClient { return &protocol.Client{Socket: cfg.Socket} },
		readKeys:  defaultReadKeys,
		now:       time.Now,
		draw:      rand.IntN,
		exe:       selfExe,
		records:   defaultLoginFiles,
		dialForward: func(ctx context.Context, cred *syscall.Credential, addr string) (net.Conn, error) {
			return dialAsUser(ctx, selfExe, cred, addr)
		},
		perSource: map[string]int{},
		conns:     map[*conn]struct{}{},
	}
	s.Reload(cfg)
	return s, nil
}

// Reload replaces the settings used by new connections. Listen,
// HostKeyDir and HostKeyTypes are not reloadable; a change to them is
// logged and ignored until restart.
func (s *Server) Reload(cfg *Config) {
	c := *cfg
	if old := s.cfg.Load(); old != nil {
		if old.Listen != c.Listen || old.HostKeyDir != c.HostKeyDir || strings.Join(old.HostKeyTypes, ",") != strings.Join(c.HostKeyTypes, ",") {
			s.log.Warn("listen and host key settings change only on restart")
		}
	}
	if c.MaxStartups.Bare {
		s.log.Warn(fmt.Sprintf("sshd.max_startups = %d is read as %q (start:rate:full); write that string to keep it, "+
			"or another: a bare number no longer means a hard cap", c.MaxStartups.Start, c.MaxStartups.String()))
	}
	if c.UsePAM {
		if _, err := os.Stat(filepath.Join(pamConfDir, c.PAMService)); err != nil {
			s.log.Warn("PAM service file missing: libpam uses /etc/pam.d/other instead (make install puts otpgate-sshd there)",
				"service", c.PAMService, "err", err)
		}
	}
	if s.level != nil {
		if l, err := parseLogLevel(c.LogLevel); err == nil {
			s.level.Set(l)
		}
	}
	s.cfg.Store(&c)
}

// Config returns the settings in use.
func (s *Server) Config() Config { return *s.cfg.Load() }

// parseLogLevel maps a log_level setting to a slog level.
func parseLogLevel(v string) (slog.Level, error) {
	switch v {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", v)
}

// Serve accepts connections on ln until ctx is done or ln fails. It closes
// ln when ctx is done; that is not an error (it returns nil). Connections
// already accepted keep running; use Shutdown to end them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if temporaryAccept(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("sshd: accept: %w", err)
		}
		delay = 0
		s.admit(nc)
	}
}

// temporaryAccept reports accept errors worth retrying after a pause.
func temporaryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sourceKey groups sources for per_source_max_startups: an IPv4 address or
// an IPv6 /64.
func sourceKey(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if v4 := ta.IP.To4(); v4 != nil {
		return v4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// admit applies max_startups and per_source_max_startups (see
// shouldDrop) and starts serving nc, or closes it at once.
func (s *Server) admit(nc net.Conn) {
	cfg := s.cfg.Load()
	src := sourceKey(nc.RemoteAddr())
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		nc.Close()
		return
	}
	n, held := s.startups, s.perSource[src]
	if drop, why := shouldDrop(cfg.MaxStartups, cfg.PerSourceMaxStartups, n, held, s.draw); drop {
		s.mu.Unlock()
		s.log.Warn("connection dropped: too many unauthenticated connections", "remote", nc.RemoteAddr().String(),
			"reason", why, "unauthenticated", n, "from_source", held)
		nc.Close()
		return
	}
	s.startups++
	s.perSource[src]++
	c := &conn{id: s.nextID.Add(1), nc: nc}
	s.conns[c] = struct{}{}
	s.active.Add(1)
	s.mu.Unlock()
	go s.serveConn(cfg, c, src)
}

// releaseStartup frees c's unauthenticated slot (once).
func (s *Server) releaseStartup(src string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startups--
	if s.perSource[src]--; s.perSource[src] <= 0 {
		delete(s.perSource, src)
	}
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Done()
}

// serveConn authenticates c within the grace time, then serves its
// channels until the client goes away.
func (s *Server) serveConn(cfg *Config, c *conn, src string) {
	defer s.forget(c)
	defer c.nc.Close()
	log := s.log.With("conn", c.id, "remote", c.nc.RemoteAddr().String())

	grace := time.AfterFunc(cfg.LoginGraceTime.Duration, func() {
		log.Info("login grace time exceeded; closing")
		c.nc.Close()
	})
	// The version string and the first key exchange have a deadline of
	// their own, so that a connection that never gets that far holds its
	// unauthenticated slot briefly (the grace time covers the rest).
	stopHandshake := func() {}
	if cfg.HandshakeTimeout.Duration < cfg.LoginGraceTime.Duration {
		t := time.AfterFunc(cfg.HandshakeTimeout.Duration, func() {
			log.Info("handshake timeout exceeded; closing")
			c.nc.Close()
		})
		stopHandshake = func() { t.Stop() }
	}
	a := &authenticator{cfg: cfg, daemon: s.newDaemon(cfg), log: log, now: s.now, readKeys: s.readKeys,
		handshakeDone: stopHandshake}
	scfg := a.serverConfig(s.signers)
	scfg.PublicKeyCallback = s.markAgentOption(cfg, scfg.PublicKeyCallback)
	sc, chans, reqs, err := ssh.NewServerConn(c.nc, scfg)
	a.close()
	stopHandshake()
	expired := !grace.Stop()
	s.releaseStartup(src)
	if err != nil {
		log.Debug("connection closed before authentication", "err", err)
		return
	}
	if expired {
		sc.Close()
		return
	}
	c.authd.Store(true)
	acct, err := lookupAccount(sc.User())
	if err != nil {
		// The account vanished between auth and now.
		log.Error("session refused: user lookup failed", "user", sc.User(), "err", err)
		sc.Close()
		return
	}
	log = log.With("user", acct.name)
	if cfg.UsePAM {
		rhost, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
		msg, err := checkAccount(context.Background(), s.exe, pamItems{Service: cfg.PAMService, User: acct.name,
			RHost: rhost, RUser: acct.name, TTY: "ssh"})
		if err != nil {
			log.Info("login refused", "err", err)
			refuseLogin(sc, chans, reqs, msg)
			return
		}
	}
	log.Info("session opened", "fingerprint", sc.Permissions.Extensions[extFingerprint],
		"second_factor", sc.Permissions.Extensions[extSecondStep])
	start := time.Now()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if cfg.ClientAliveInterval.Duration > 0 {
		go keepAlive(ctx, sc, cfg.ClientAliveInterval.Duration, cfg.ClientAliveCountMax, log)
	}
	go ssh.DiscardRequests(reqs)

	u := &userConn{cfg: cfg, conn: sc, acct: acct, perms: sc.Permissions, log: log, dial: s.dialForward,
		exe: s.exe, records: s.records}
	var wg sync.WaitGroup
	var sessions atomic.Int32
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			if sessions.Load() >= int32(cfg.MaxSessions) { //nolint:gosec // validated to 1..1000
				log.Info("session refused: max_sessions reached")
				nch.Reject(ssh.ResourceShortage, "too many sessions")
				continue
			}
			sessions.Add(1)
			wg.Add(1)
			go func() { defer wg.Done(); defer sessions.Add(-1); u.handleSession(nch) }()
		case "direct-tcpip":
			wg.Add(1)
			go func() { defer wg.Done(); u.handleDirectTCPIP(nch) }()
		default:
			log.Info("channel refused", "type", nch.ChannelType())
			nch.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
	sc.Close()
	wg.Wait()
	u.agentMu.Lock()
	if u.agent != nil {
		u.agent.close()
		u.agent.wg.Wait()
	}
	u.agentMu.Unlock()
	log.Info("session closed", "duration", time.Since(start).Round(time.Millisecond).String())
}

// keepAlive probes the client every interval and closes the connection
// after maxMissed unanswered probes in a row.
func keepAlive(ctx context.Context, sc *ssh.ServerConn, interval time.Duration, maxMissed int, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := sc.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		missed := 0
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-reply:
				if err != nil {
					return
				}
				break wait
			case <-t.C:
				if missed++; missed >= maxMissed {
					log.Info("client not responding to keep-alives; closing")
					sc.Close()
					return
				}
			}
		}
	}
}

// Shutdown stops admitting connections, closes the unauthenticated ones,
// and waits for sessions to end until ctx is done; then it closes every
// connection (sessions' processes get SIGHUP) and waits for the handlers.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shuttingDown = true
	for c := range s.conns {
		if !c.authd.Load() {
			c.nc.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.log.Warn("shutdown timeout: closed remaining connections", "count", n)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return errors.New("sshd: connections did not close in time")
	}
	return ctx.Err()
}

// pamConfDir is where libpam reads service files.
const pamConfDir = "/etc/pam.d"

// refuseGrace is how long a login refused after authentication waits for
// the client to open a channel to show it the reason.
const refuseGrace = 10 * time.Second

// refuseLogin shows msg to a client whose login the account check refused
// after authentication (when SSH has no banner any more): on stderr of
// its first session, which then exits with status 1, or as the reason a
// forwarding channel is refused. Then it closes the connection.
func refuseLogin(sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, msg string) {
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	text := strings.ReplaceAll(strings.TrimRight(msg, "\n"), "\n", "\r\n") + "\r\n"
	timer := time.NewTimer(refuseGrace)
	defer timer.Stop()
	select {
	case nch, ok := <-chans:
		if !ok {
			return
		}
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.Prohibited, strings.TrimRight(msg, "\n"))
			return
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		// Let the client start its session (it shows what comes after
		// its request is answered), then give the reason and the exit
		// status, and let the client close the connection: closing it
		// first, with the client's packets in flight, resets it and the
		// client may never show the reason.
		started := make(chan struct{})
		go func() {
			var once sync.Once
			for r := range creqs {
				if r.WantReply {
					r.Reply(true, nil)
				}
				if r.Type == "exec" || r.Type == "shell" || r.Type == "subsystem" {
					once.Do(func() { close(started) })
				}
			}
		}()
		select {
		case <-started:
		case <-timer.C:
		}
		_, _ = io.WriteString(ch.Stderr(), text) // the client may be gone already
		ch.SendRequest("exit-status", false, ssh.Marshal(exitStatusMsg{Status: 1}))
		ch.CloseWrite()
		ch.Close()
		closed := make(chan struct{})
		go func() { _ = sc.Wait(); close(closed) }() // only the end matters, not why
		select {
		case <-closed:
		case <-time.After(refuseGrace):
		}
	case <-timer.C:
	}
}
