package daemon

import (
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
)

// maxRemembered bounds a user's remembered devices; when a new one is
// added the oldest goes first.
const maxRemembered = 10

// device identifies where a login comes from for policy.remember: the
// exact remote IP address and the SHA256 fingerprint of the public key the
// SSH server verified before asking the daemon.
type device struct {
	source, fingerprint string
}

// deviceOf returns the request's device, or false when the request cannot
// be bound to one. Only root callers (sshd's PAM child, otpgate-sshd) are
// believed: an ordinary user could claim any address and key for herself.
// The remote host must be an IP address (not a host name, not empty as
// under sudo), and AuthInfo must be exactly one verified publickey method:
// OpenSSH's SSH_AUTH_INFO_0 "publickey <type> <base64 key>" or
// otpgate-sshd's "publickey <type> SHA256:<fingerprint>". Both become the
// same fingerprint.
func deviceOf(rc *reqCtx) (device, bool) {
	if rc.peer.UID != 0 {
		return device{}, false
	}
	addr, err := netip.ParseAddr(rc.RHost)
	if err != nil || addr.Zone() != "" {
		return device{}, false
	}
	fp, ok := publickeyFingerprint(rc.AuthInfo)
	if !ok {
		return device{}, false
	}
	return device{source: addr.Unmap().String(), fingerprint: fp}, true
}

// publickeyFingerprint reads a single "publickey" method from an SSH
// server's auth info and returns the key's SHA256 fingerprint.
func publickeyFingerprint(info string) (string, bool) {
	info = strings.TrimSuffix(info, "\n")
	if strings.ContainsAny(info, "\n\r") {
		return "", false // more than one method: not what we know how to bind
	}
	f := strings.Split(info, " ")
	if len(f) != 3 || f[0] != "publickey" || f[1] == "" {
		return "", false
	}
	if b64, ok := strings.CutPrefix(f[2], "SHA256:"); ok {
		sum, err := base64.RawStdEncoding.DecodeString(b64)
		if err != nil || len(sum) != 32 {
			return "", false
		}
		return f[2], true
	}
	blob, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		return "", false
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil || key.Type() != f[1] {
		return "", false
	}
	return ssh.FingerprintSHA256(key), true
}

// rememberExpiry is when a remembered device stops skipping the code: its
// own end, shortened by the current policy.remember if that was lowered.
func rememberExpiry(d store.RememberedDevice, remember time.Duration) time.Time {
	if end := d.Since.Add(remember); end.Before(d.Until) {
		return end
	}
	return d.Until
}

// remembered reports whether rec has dev remembered at now under the
// current configuration.
func remembered(rc *reqCtx, rec *store.Record, dev device) bool {
	remember := rc.cfg.Policy.Remember.Duration
	if remember <= 0 {
		return false
	}
	for _, d := range rec.Remembered {
		if d.Source == dev.source && d.Fingerprint == dev.fingerprint && !d.Since.After(rc.now) && rc.now.Before(rememberExpiry(d, remember)) {
			return true
		}
	}
	return false
}

// remember adds dev to rec, dropping expired entries, an older entry for
// the same device and, beyond maxRemembered, the oldest.
func remember(rec *store.Record, dev device, now time.Time, d time.Duration) {
	kept := rec.Remembered[:0:0]
	for _, r := range rec.Remembered {
		if now.Before(rememberExpiry(r, d)) && (r.Source != dev.source || r.Fingerprint != dev.fingerprint) {
			kept = append(kept, r)
		}
	}
	kept = append(kept, store.RememberedDevice{Source: dev.source, Fingerprint: dev.fingerprint, Since: now, Until: now.Add(d)})
	if len(kept) > maxRemembered {
		kept = kept[len(kept)-maxRemembered:]
	}
	rec.Remembered = kept
}

// rememberedDevices lists rec's devices still honoured at now.
func rememberedDevices(rc *reqCtx, rec *store.Record) []protocol.RememberedDevice {
	var out []protocol.RememberedDevice
	remember := rc.cfg.Policy.Remember.Duration
	if remember <= 0 {
		return nil
	}
	for _, d := range rec.Remembered {
		if until := rememberExpiry(d, remember); rc.now.Before(until) {
			out = append(out, protocol.RememberedDevice{Source: d.Source, Fingerprint: d.Fingerprint, Until: until})
		}
	}
	return out
}

// forget removes every remembered device of the user. It needs no code:
// it only takes trust away.
func (s *Server) forget(rc *reqCtx) (*protocol.Response, error) {
	if _, err := s.authorize(rc, false); err != nil {
		return nil, err
	}
	n := 0
	err := s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) {
		if cur == nil || len(cur.Remembered) == 0 {
			n = 0
			return nil, errNoChange
		}
		n = len(cur.Remembered)
		cur.Remembered = nil
		return cur, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return nil, err
	}
	s.auditDecision(rc, "forgotten", "forget", "devices", n)
	return &protocol.Response{Forgotten: n}, nil
}
