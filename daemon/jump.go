package daemon

import (
	"net/netip"

	"github.com/otpgate/otpgate/daemon/store"
)

// A login through a jump host ("ssh -J bastion server") is two logins, one
// right after the other, by the same person with the same key. With both
// servers on one otpgated or one fleet store, the code typed at the bastion
// has been used by the time the server asks, so the server refuses it. With
// policy.jump_hosts, the server lets such a second login follow the first
// without a code (jumpPass); otherwise the refusal at least says where and
// when the code was used and when the next one comes (codeUsedMessage).

// jumpPass reports whether rc, a check, may skip the code because it
// follows a code the same user gave moments ago through a jump host: rc is
// bound to an IP address and one verified key (deviceOf: root callers
// only, so never sudo), that address is one of policy.jump_hosts, and the
// user's last accepted code came with the same key no longer than
// policy.jump_window ago. A pass changes nothing in the record, so it can
// never open a window of its own: every login let through is at most
// jump_window after a code that was typed. It returns the device and the
// code use the pass follows, for the audit line.
func jumpPass(rc *reqCtx, rec *store.Record) (device, *store.CodeUse, bool) {
	p := &rc.cfg.Policy
	if len(p.JumpHosts) == 0 || rec.LastCode == nil || rec.LastCode.Fingerprint == "" {
		return device{}, nil, false
	}
	dev, ok := deviceOf(rc)
	if !ok || !isJumpHost(p.JumpHosts, dev.source) || dev.fingerprint != rec.LastCode.Fingerprint {
		return device{}, nil, false
	}
	at := rec.LastCode.At
	if at.After(rc.now) || !rc.now.Before(at.Add(p.JumpWindow.Duration)) {
		return device{}, nil, false
	}
	return dev, rec.LastCode, true
}

// isJumpHost reports whether addr (an unmapped IP address without a zone)
// is one of hosts: an address or a network in CIDR form.
func isJumpHost(hosts []string, addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	for _, h := range hosts {
		if b, err := netip.ParseAddr(h); err == nil && b.Unmap() == a {
			return true
		}
		if pfx, err := netip.ParsePrefix(h); err == nil && pfx.Contains(a) {
			return true
		}
	}
	return false
}
