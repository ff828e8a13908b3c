package daemon

import (
	"context"
	"errors"
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

// sourceWasBlocked reports whether src has already been blocked for rec's
// user since its last success there: its failures then no longer count
// towards the user's temporary lockouts.
func sourceWasBlocked(rl *config.RateLimit, rec *store.Record, src string, now time.Time) bool {
	if rl.PerSourceMaxFailures == 0 || src == "" {
		return false
	}
	st := rec.Sources[src]
	return st != nil && st.Blocks > 0 && !sourceExpired(rl, st, now)
}

// sourceMemory is how long a user's per-address state outlives the
// address's last failure and block: after a day of silence an address
// starts over.
const sourceMemory = 24 * time.Hour

// sourceExpired reports whether st is old enough to be forgotten.
func sourceExpired(rl *config.RateLimit, st *store.SourceState, now time.Time) bool {
	return !now.Before(st.BlockedUntil) && !now.Before(st.LastFailure.Add(sourceMemory))
}

// chargeSource counts a failure from src against rec and blocks src for
// this user at the per-source limit, each block of the address longer than
// the one before (per_source_lockout × backoff^blocks, at most the longer of
// per_source_lockout and max_lockout).
func chargeSource(rl *config.RateLimit, rec *store.Record, src string, now time.Time, a *attempt) {
	if rl.PerSourceMaxFailures == 0 || src == "" {
		return
	}
	if rec.Sources == nil {
		rec.Sources = map[string]*store.SourceState{}
	}
	st := rec.Sources[src]
	if st == nil || sourceExpired(rl, st, now) {
		st = &store.SourceState{}
		rec.Sources[src] = st
	}
	st.Failures++
	st.LastFailure = now
	if st.Failures >= rl.PerSourceMaxFailures {
		d := float64(rl.PerSourceLockout.Duration) * math.Pow(rl.Backoff, float64(st.Blocks))
		d = min(d, float64(max(rl.PerSourceLockout.Duration, rl.MaxLockout.Duration)))
		st.Failures = 0
		st.Blocks++
		st.BlockedUntil = now.Add(time.Duration(d))
		a.reason += "+source_block"
		if a.retryAfter == 0 {
			a.retryAfter = retrySeconds(st.BlockedUntil, now)
			a.message = textWrongCode + " " + sourceLockedMessage(a.retryAfter)
		}
	}
	pruneSources(rl, rec, now)
}

// pruneSources drops the addresses whose state has expired and keeps at
// most maxSources, the most recent ones.
func pruneSources(rl *config.RateLimit, rec *store.Record, now time.Time) {
	for k, st := range rec.Sources {
		if sourceExpired(rl, st, now) {
			delete(rec.Sources, k)
		}
	}
	if len(rec.Sources) == 0 {
		rec.Sources = nil
		return
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

// noteSourceFailure counts a failure against the address-wide record of
// rc's source. Only failures count: a success by one user says nothing
// about the other guesses from that address, so it clears nothing. The
// count forgets failures older than source_lockout, and such a record is
// deleted by pruneSourceRecords.
func (s *Server) noteSourceFailure(rc *reqCtx) error {
	rl := rc.cfg.RateLimit
	if rl.SourceMaxFailures == 0 || rc.source == "" {
		return nil
	}
	return s.store.Update(sourceRecordPrefix+rc.source, func(cur *store.Record) (*store.Record, error) {
		if cur == nil {
			cur = &store.Record{User: sourceRecordPrefix + rc.source}
		}
		if !rc.now.Before(cur.LastFailure.Add(rl.SourceLockout.Duration)) {
			cur.Failures = 0
		}
		cur.Failures++
		cur.LastFailure = rc.now
		if cur.Failures >= rl.SourceMaxFailures {
			cur.Failures = 0
			cur.LockedUntil = rc.now.Add(rl.SourceLockout.Duration)
			s.auditDecision(rc, "locked", "source_block_all_users", "source", rc.source)
		}
		return cur, nil
	})
}

// sourceRecordExpired reports whether an address-wide record neither
// blocks nor holds a failure younger than lockout.
func sourceRecordExpired(rec *store.Record, lockout time.Duration, now time.Time) bool {
	return !now.Before(rec.LockedUntil) && !now.Before(rec.LastFailure.Add(lockout))
}

// pruneSourceRecords deletes the address-wide records that have expired,
// so that the store holds one only for addresses that failed recently. It
// reads only the address records (they sort together under their prefix).
func (s *Server) pruneSourceRecords() (deleted int, err error) {
	cfg := s.cfg.Load()
	now := s.clock.Now()
	lockout := cfg.RateLimit.SourceLockout.Duration
	var expired []string
	err = s.store.List(sourceRecordPrefix, func(rec *store.Record) error {
		if !strings.HasPrefix(rec.User, sourceRecordPrefix) {
			return store.ErrStop
		}
		if sourceRecordExpired(rec, lockout, now) {
			expired = append(expired, rec.User)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, key := range expired {
		err := s.store.Update(key, func(cur *store.Record) (*store.Record, error) {
			if cur == nil || !sourceRecordExpired(cur, lockout, now) {
				return nil, errNoChange
			}
			return nil, nil
		})
		if errors.Is(err, errNoChange) {
			continue
		}
		if err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}

// sourcePruneInterval is how often Serve prunes the address records.
const sourcePruneInterval = 10 * time.Minute

// pruneSourceRecordsEvery prunes the address records every interval until
// ctx is done.
func (s *Server) pruneSourceRecordsEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.pruneSourceRecords(); err != nil {
				s.log.Error("expired address records not pruned", "err", err)
			} else if n > 0 {
				s.log.Debug("expired address records pruned", "count", n)
			}
		}
	}
}
