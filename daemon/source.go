package daemon

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/protocol"
)

// sourceRecordPrefix keys the per-address records of
// rate_limit.source_max_failures in the user store. The protocol refuses
// user names starting with '/', so no request can name such a record.
const sourceRecordPrefix = protocol.ReservedUserPrefix + "source/"

// maxSources bounds the per-address entries kept in one user's record.
const maxSources = 64

// sourceOf returns the remote address a request comes from, as the key of
// the per-source limits: an IPv4 address, or an IPv6 address's /64 (one
// host usually owns a whole /64). An empty or unparseable remote host (a
// host name under sshd's UseDNS, sudo without one) has no source.
func sourceOf(rhost string) string {
	addr, err := netip.ParseAddr(strings.TrimSpace(rhost))
	if err != nil {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	pfx, err := addr.Prefix(64)
	if err != nil {
		return ""
	}
	return pfx.String()
}

// exemptNetwork reports whether rhost is an address inside one of the
// policy's exempt networks.
func exemptNetwork(p *config.Policy, rhost string) bool {
	if len(p.ExemptNetworks) == 0 {
		return false
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(rhost))
	if err != nil {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, n := range p.ExemptNetworks {
		if pfx, err := netip.ParsePrefix(n); err == nil && pfx.Contains(addr) {
			return true
		}
	}
	return false
}

func retrySeconds(until, now time.Time) int64 {
	return int64(math.Ceil(until.Sub(now).Seconds()))
}

func sourceLockedMessage(retryAfter int64) string {
	return "Too many failed attempts from your address: try again in " + (time.Duration(retryAfter) * time.Second).String() + "."
}

// sourceBlocked reports whether rec blocks src (per-source limit).
func sourceBlocked(rl *config.RateLimit, rec *store.Record, src string, now time.Time) (bool, int64) {
	if rl.PerSourceMaxFailures == 0 || src == "" {
		return false, 0
	}
	st := rec.Sources[src]
	if st == nil || !now.Before(st.BlockedUntil) {
		return false, 0
	}
	return true, retrySeconds(st.BlockedUntil, now)
}

// chargeSource counts a failure from src against rec and blocks src for
// this user at the per-source limit.
func chargeSource(rl *config.RateLimit, rec *store.Record, src string, now time.Time, a *attempt) {
	if rl.PerSourceMaxFailures == 0 || src == "" {
		return
	}
	if rec.Sources == nil {
		rec.Sources = map[string]*store.SourceState{}
	}
	st := rec.Sources[src]
	if st == nil {
		st = &store.SourceState{}
		rec.Sources[src] = st
	}
	st.Failures++
	st.LastFailure = now
	if st.Failures >= rl.PerSourceMaxFailures {
		st.Failures = 0
		st.BlockedUntil = now.Add(rl.PerSourceLockout.Duration)
		a.reason += "+source_block"
		if a.retryAfter == 0 {
			a.retryAfter = retrySeconds(st.BlockedUntil, now)
			a.message = "Wrong code. " + sourceLockedMessage(a.retryAfter)
		}
	}
	pruneSources(rec, now)
}

// pruneSources drops entries that no longer block and keeps at most
// maxSources, the most recent ones.
func pruneSources(rec *store.Record, now time.Time) {
	for k, st := range rec.Sources {
		if !now.Before(st.BlockedUntil) && st.Failures == 0 {
			delete(rec.Sources, k)
		}
	}
	if len(rec.Sources) <= maxSources {
		return
	}
	keys := make([]string, 0, len(rec.Sources))
	for k := range rec.Sources {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return rec.Sources[b].LastFailure.Compare(rec.Sources[a].LastFailure) })
	for _, k := range keys[maxSources:] {
		delete(rec.Sources, k)
	}
}

// blockedSources lists the addresses rec currently blocks, for status.
func blockedSources(rec *store.Record, now time.Time) []protocol.BlockedSource {
	var out []protocol.BlockedSource
	for k, st := range rec.Sources {
		if now.Before(st.BlockedUntil) {
			out = append(out, protocol.BlockedSource{Source: k, Until: st.BlockedUntil, Failures: st.Failures})
		}
	}
	slices.SortFunc(out, func(a, b protocol.BlockedSource) int { return strings.Compare(a.Source, b.Source) })
	return out
}

// globalSourceBlock reports whether src is blocked for every user
// (rate_limit.source_max_failures).
func (s *Server) globalSourceBlock(rc *reqCtx) (bool, int64, error) {
	if rc.cfg.RateLimit.SourceMaxFailures == 0 || rc.source == "" {
		return false, 0, nil
	}
	rec, err := s.getRecord(sourceRecordPrefix + rc.source)
	if err != nil || rec == nil {
		return false, 0, err
	}
	if rc.now.Before(rec.LockedUntil) {
		return true, retrySeconds(rec.LockedUntil, rc.now), nil
	}
	return false, 0, nil
}

// noteSourceResult updates the address-wide failure count after an
// attempt: a failure counts, a success clears it.
func (s *Server) noteSourceResult(rc *reqCtx, failed bool) error {
	rl := rc.cfg.RateLimit
	if rl.SourceMaxFailures == 0 || rc.source == "" {
		return nil
	}
	key := sourceRecordPrefix + rc.source
	if !failed {
		rec, err := s.getRecord(key)
		if err != nil || rec == nil || rec.Failures == 0 {
			return err
		}
	}
	err := s.store.Update(key, func(cur *store.Record) (*store.Record, error) {
		if cur == nil {
			cur = &store.Record{}
		}
		if !failed {
			if rc.now.Before(cur.LockedUntil) {
				return cur, nil
			}
			return nil, nil
		}
		cur.Failures++
		if cur.Failures >= rl.SourceMaxFailures {
			cur.Failures = 0
			cur.LockedUntil = rc.now.Add(rl.SourceLockout.Duration)
			s.auditDecision(rc, "locked", "source_block_all_users", "source", rc.source)
		}
		return cur, nil
	})
	return err
}
