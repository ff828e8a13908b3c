package daemon

import (
	"context"
	"log/slog"
	"strings"
	"unicode"
)

// auditField bounds and cleans a client-supplied string for the audit log:
// control characters are replaced (the log handler also quotes), and the
// length is capped so one request cannot flood the log.
func auditField(s string) string {
	const maxLen = 256
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// auditDecision writes one audit record for a decision. It never receives
// the code, the secret or a recovery code.
func (s *Server) auditDecision(rc *reqCtx, outcome, reason string, extra ...any) {
	level := slog.LevelInfo
	switch outcome {
	case "replay", "locked", "denied":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	attrs := []any{
		"op", string(rc.Op),
		"user", auditField(rc.User),
		"peer_uid", rc.peer.UID,
		"peer_pid", rc.peer.PID,
		"outcome", outcome,
		"reason", reason,
	}
	loginName := ""
	if rc.loginName != rc.User {
		loginName = rc.loginName
	}
	for _, kv := range []struct{ k, v string }{
		{"service", rc.Service}, {"rhost", rc.RHost}, {"tty", rc.TTY}, {"auth_info", rc.AuthInfo}, {"login_name", loginName},
	} {
		if kv.v != "" {
			attrs = append(attrs, kv.k, auditField(kv.v))
		}
	}
	attrs = append(attrs, extra...)
	s.audit.Log(context.Background(), level, "otpgate decision", attrs...)
}
