package daemon

import (
	"strings"
	"time"
	"unicode"

	"github.com/otpgate/otpgate/daemon/store"
)

// Each accepted code is kept with where and when it was accepted
// (store.Record.LastCode), so that a code refused as already used can say
// so: "This code was already used at 10:41:07 UTC on bastion1 (sshd from
// 192.0.2.4): the next code comes in 12 seconds." (codeUsedMessage). In a
// fleet, the server that refuses is often not the one that accepted: a
// bastion and the server behind it ("ssh -J").

// codeUse describes the code rc has just had accepted: now, on this server,
// for rc's service and remote host, with the fingerprint of the one public
// key the SSH server verified when rc can be bound to one (deviceOf: a root
// caller, an IP address, exactly one verified publickey).
func (s *Server) codeUse(rc *reqCtx) *store.CodeUse {
	u := &store.CodeUse{At: rc.now, Host: shownField(s.host), Service: shownField(rc.Service), RHost: shownField(rc.RHost)}
	if dev, ok := deviceOf(rc); ok {
		u.Fingerprint = dev.fingerprint
	}
	return u
}

// shownField bounds and cleans a caller-supplied string that a later
// replay refusal shows a person: no control characters (a terminal would
// obey them), at most 64 bytes.
func shownField(s string) string {
	const maxLen = 64
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "…"
	}
	return s
}

// nextCodeAt is when the first code after lastStep comes up: the start of
// step lastStep+1.
func nextCodeAt(lastStep uint64, period int) time.Time {
	return time.Unix(int64(lastStep+1)*int64(period), 0) //nolint:gosec // a step is Unix seconds / period, far below 2^63
}
