package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/protocol"
)

// rootConnCap bounds root's concurrent connections (PAM in sshd and sudo
// runs as root); it is separate from users' caps so that no user can
// starve logins.
const rootConnCap = 512

// Sealer encrypts secrets at rest, bound to the user they belong to.
type Sealer interface {
	Seal(user string, secret []byte) ([]byte, error)
	Open(user string, sealed []byte) ([]byte, error)
}

// Server is otpgated's request handler. Create it with New, run it with
// Serve, change its configuration with Reload.
type Server struct {
	store  store.Store
	sealer Sealer
	clock  Clock
	log    *slog.Logger // operational log
	audit  *slog.Logger // one line per decision
	// host is this server's host name, kept with each accepted code
	// (store.CodeUse.Host) so that a replay refusal can say where.
	host string

	cfg atomic.Pointer[config.Config]

	mu       sync.Mutex // guards perUID
	perUID   map[uint32]int
	conns    sync.WaitGroup
	draining atomic.Bool

	// fatal receives the first store failure that makes the store
	// read-only; Serve then stops so that a supervisor restarts the daemon
	// once the disk is fixed.
	fatal     chan error
	fatalOnce sync.Once
}

// failFast wraps a store: an Update error meaning the store can no longer
// write is reported to the server, which shuts down (every request until
// then is denied, as for any store error).
type failFast struct {
	store.Store
	s *Server
}

func (f failFast) Update(user string, fn func(*store.Record) (*store.Record, error)) error {
	err := f.Store.Update(user, fn)
	if errors.Is(err, store.ErrReadOnly) {
		f.s.fatalOnce.Do(func() { f.s.fatal <- err })
	}
	return err
}

// Option configures a Server.
type Option func(*Server)

// WithClock replaces the system clock (tests jump time with it).
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// WithLogger sets the operational logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithAuditLogger sets the audit logger (default: the operational logger).
func WithAuditLogger(l *slog.Logger) Option { return func(s *Server) { s.audit = l } }

// WithHostname sets the host name kept with each accepted code (default:
// os.Hostname); tests give each server of a fleet its own.
func WithHostname(name string) Option { return func(s *Server) { s.host = name } }

// New returns a Server over an opened store. cfg must have been validated.
func New(cfg *config.Config, st store.Store, sealer Sealer, opts ...Option) *Server {
	s := &Server{sealer: sealer, clock: systemClock{}, log: slog.Default(), perUID: map[uint32]int{}, fatal: make(chan error, 1)}
	s.host, _ = os.Hostname()
	s.store = failFast{Store: st, s: s}
	for _, o := range opts {
		o(s)
	}
	if s.audit == nil {
		s.audit = s.log
	}
	s.cfg.Store(cfg)
	return s
}

// Reload switches to a new, validated configuration. Requests in flight
// finish with the configuration they started with. The socket and state
// directory cannot change without a restart.
func (s *Server) Reload(cfg *config.Config) {
	old := s.cfg.Load()
	if cfg.Daemon.Socket != old.Daemon.Socket || cfg.Daemon.StateDir != old.Daemon.StateDir {
		s.log.Warn("daemon.socket and daemon.state_dir changes take effect only after a restart")
	}
	s.cfg.Store(cfg)
	s.log.Info("configuration reloaded")
}

// Serve accepts connections on ln until ctx is done, then stops accepting
// and waits up to grace for open connections to finish. Cancellation is
// not an error. If the store fails in a way that makes it read-only (a
// failed fsync is never retried), Serve stops the same way and returns that
// error: the daemon exits non-zero and its supervisor restarts it.
// Before it accepts, records kept under second names of accounts move to
// the accounts' names (adoptListedRecords); a store failure doing so is
// returned.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener, grace time.Duration) error {
	if err := s.adoptListedRecords(); err != nil {
		ln.Close()
		return fmt.Errorf("move records to their accounts' names: %w", err)
	}
	var fatalErr atomic.Value
	stopped := make(chan struct{})
	pruneCtx, stopPruning := context.WithCancel(ctx)
	defer stopPruning()
	go s.pruneSourceRecordsEvery(pruneCtx, sourcePruneInterval)
	go func() {
		select {
		case <-ctx.Done():
		case err := <-s.fatal:
			fatalErr.Store(err)
			s.log.Error("the state store can no longer write; stopping so that otpgated is restarted once the disk is fixed", "err", err)
		}
		s.draining.Store(true)
		ln.Close()
		close(stopped)
	}()
	var tempDelay time.Duration
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if s.draining.Load() {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				s.log.Error("accept failed; retrying", "err", err, "delay", tempDelay)
				time.Sleep(tempDelay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		tempDelay = 0
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.handleConn(c)
		}()
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("shutdown: connections still open after grace period", "grace", grace)
	}
	<-stopped
	if err, ok := fatalErr.Load().(error); ok {
		return fmt.Errorf("state store failed: %w", err)
	}
	return nil
}

// acquire counts a connection against its peer's cap.
func (s *Server) acquire(uid uint32) bool {
	limit := s.cfg.Load().Daemon.MaxConnsPerUID
	if uid == 0 {
		limit = rootConnCap
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUID[uid] >= limit {
		return false
	}
	s.perUID[uid]++
	return true
}

func (s *Server) release(uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUID[uid]--; s.perUID[uid] <= 0 {
		delete(s.perUID, uid)
	}
}

// handleConn serves one connection: requests are answered in order until
// the peer closes, goes quiet past the request timeout, or misbehaves.
func (s *Server) handleConn(c *net.UnixConn) {
	defer c.Close()
	peer, err := peerOf(c)
	if err != nil {
		s.log.Error("cannot read peer credentials; closing", "err", err)
		return
	}
	if !s.acquire(peer.UID) {
		s.log.Warn("connection refused: too many connections from this uid", "peer_uid", peer.UID, "peer_pid", peer.PID)
		s.writeResponse(c, &protocol.Response{ResponseHeader: protocol.ResponseHeader{V: protocol.Version, Error: &protocol.Error{Code: protocol.ErrBusy, Message: "too many open connections from this user"}}})
		return
	}
	defer s.release(peer.UID)

	var dlg *dialogue // the connection's open login dialogue
	for !s.draining.Load() {
		timeout := s.cfg.Load().Daemon.RequestTimeout.Duration
		wait := timeout
		if dlg != nil {
			wait = dialogueAnswerTimeout // a person is reading and typing
		}
		if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return
		}
		frame, err := protocol.ReadFrame(c)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("connection closed", "peer_uid", peer.UID, "err", err)
				if errors.Is(err, protocol.ErrFrameTooLarge) {
					s.writeResponse(c, errorResponse(0, protocol.ErrBadRequest, "request too large"))
				}
			}
			return
		}
		resp := s.handleFrame(peer, frame, &dlg)
		if err := c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return
		}
		if !s.writeResponse(c, resp) {
			return
		}
	}
}

func (s *Server) writeResponse(c net.Conn, resp *protocol.Response) bool {
	b, err := protocol.EncodeResponse(resp)
	if err != nil {
		s.log.Error("encode response", "err", err)
		return false
	}
	if err := protocol.WriteFrame(c, b); err != nil {
		s.log.Debug("write response", "err", err)
		return false
	}
	return true
}

func errorResponse(id uint64, code protocol.ErrorCode, msg string) *protocol.Response {
	return &protocol.Response{ResponseHeader: protocol.ResponseHeader{V: protocol.Version, ID: id, Error: &protocol.Error{Code: code, Message: msg}}}
}

// handleFrame decodes one request and dispatches it. It never panics the
// daemon: a panic in a handler becomes an internal error reply (and a log
// line), which every caller treats as a denial.
//
// dlg is the connection's login dialogue: login_start opens it, and it
// stays open while its last step asks something; any other request on
// the connection ends it.
func (s *Server) handleFrame(peer Peer, frame []byte, dlg **dialogue) (resp *protocol.Response) {
	open := *dlg
	*dlg = nil
	req, err := protocol.DecodeRequest(frame)
	var id uint64
	if req != nil {
		id = req.ID
	}
	if req != nil && retiredOp(req.Op) {
		return s.refuseRetired(req, peer)
	}
	if err != nil {
		s.audit.Warn("bad request", "peer_uid", peer.UID, "peer_pid", peer.PID, "reason", err.Error())
		return errorResponse(id, protocol.ErrBadRequest, err.Error())
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("internal error while handling request", "op", req.Op, "panic", fmt.Sprint(r))
			resp = errorResponse(id, protocol.ErrInternal, "internal error; see the otpgated log")
		}
	}()
	s.dropUntrustedContext(req, peer)
	rc := &reqCtx{Request: req, peer: peer, cfg: s.cfg.Load(), now: s.clock.Now(), source: sourceOf(req.RHost)}
	if err = s.resolveUser(rc); err == nil {
		switch req.Op {
		case protocol.OpLoginStart:
			var step *protocol.LoginStep
			if step, *dlg, err = s.loginStart(rc); err == nil {
				resp = &protocol.Response{StepReply: protocol.StepReply{Step: step}}
			}
		case protocol.OpLoginAnswer:
			if open == nil {
				err = &protocol.Error{Code: protocol.ErrBadRequest, Message: "no login dialogue is waiting for answers on this connection"}
				break
			}
			var step *protocol.LoginStep
			var more bool
			if step, more, err = s.loginAnswer(rc, open); err == nil {
				resp = &protocol.Response{StepReply: protocol.StepReply{Step: step}}
				if more {
					*dlg = open
				}
			}
		default:
			resp, err = s.dispatch(rc)
		}
	}
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			s.log.Error("request failed", "op", req.Op, "user", req.User, "err", err)
			pe = &protocol.Error{Code: protocol.ErrInternal, Message: "internal error; see the otpgated log"}
		}
		return &protocol.Response{ResponseHeader: protocol.ResponseHeader{V: protocol.Version, ID: id, Error: pe}}
	}
	resp.V, resp.ID = protocol.Version, id
	return resp
}

// reqCtx is one request with what the daemon knows about it.
type reqCtx struct {
	*protocol.Request
	peer Peer
	cfg  *config.Config
	now  time.Time
	// source is the remote address as a per-source limit key ("" if none).
	source string

	// loginName is the user as the request named it; User is then the
	// canonical name of its account (see resolveUser).
	loginName string
	// account is the account User names, resolved with its groups when
	// withGroups.
	account    account
	withGroups bool
}

// dispatch answers one request according to its operation.
func (s *Server) dispatch(rc *reqCtx) (*protocol.Response, error) {
	switch rc.Op {
	case protocol.OpPing:
		return &protocol.Response{}, nil
	case protocol.OpStatus, protocol.OpAdminShow:
		return s.status(rc)
	case protocol.OpEnrollBegin:
		return s.enrollBegin(rc)
	case protocol.OpEnrollConfirm:
		return s.enrollConfirm(rc)
	case protocol.OpDisable:
		return s.disable(rc)
	case protocol.OpRecoveryCodes:
		return s.regenerateRecovery(rc)
	case protocol.OpAdminList:
		return s.adminList(rc)
	case protocol.OpAdminReset:
		return s.adminReset(rc)
	case protocol.OpAdminUnlock:
		return s.adminUnlock(rc)
	case protocol.OpAdminImport:
		return s.adminImport(rc)
	case protocol.OpForget:
		return s.forget(rc)
	}
	return nil, &protocol.Error{Code: protocol.ErrBadRequest, Message: "unknown operation"}
}
