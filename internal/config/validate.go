package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Limits that Validate enforces and that messages cite.
const (
	// maxConsecutiveFailuresCap is the hard cap on consecutive failures
	// before a permanent lockout: RFC 4226 §7.3 asks for throttling, and
	// NIST SP 800-63B §5.2.2 limits consecutive failed attempts to 100.
	maxConsecutiveFailuresCap = 100
	// maxSocketPath is the longest path that fits in sockaddr_un.sun_path
	// (108 bytes) with its terminating NUL.
	maxSocketPath = 107
	// maxNameLen bounds user and group names.
	maxNameLen = 256
)

// nameRE is a POSIX-ish user or group name, with upper case and '@' also
// allowed for LDAP and Active Directory accounts, and a trailing '$' for
// Samba machine accounts.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.@-]*\$?$`)

// keyError is a problem with one key's value.
type keyError struct {
	key string
	msg string
	// related are other keys the problem depends on: when key itself is
	// not in the file, the first related key that is gives the line.
	related []string
}

func (e *keyError) Error() string { return fmt.Sprintf("key %q: %s", e.key, e.msg) }

// line is where in the file the problem is best shown, or 0.
func (e *keyError) line(lines map[string]int) int {
	for _, k := range append([]string{e.key}, e.related...) {
		if n, ok := lines[k]; ok {
			return n
		}
	}
	return 0
}

// Validate checks every value of c and reports all problems at once, joined
// with errors.Join, each naming its key and what is expected, as in
//
//	key "totp.digits": must be between 6 and 8, got 9
//
// Load runs it and adds the file and line. totp.algorithm is accepted in
// any case, with or without a dash ("sha-256"); Load stores it upper case.
func (c *Config) Validate() error {
	ps := c.problems()
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// checker collects problems.
type checker struct{ ps []*keyError }

func (ch *checker) add(key string, related []string, format string, args ...any) {
	ch.ps = append(ch.ps, &keyError{key: key, msg: fmt.Sprintf(format, args...), related: related})
}

// intRange checks lo <= v <= hi and reports whether it holds.
func (ch *checker) intRange(key string, v, lo, hi int, unit string) bool {
	if v < lo || v > hi {
		ch.add(key, nil, "must be between %d and %d%s, got %d", lo, hi, unit, v)
		return false
	}
	return true
}

// MaxJumpWindow is the longest policy.jump_window may be.
const MaxJumpWindow = 5 * time.Minute

// MaxRemember is the longest policy.remember may be (30 days).
const MaxRemember = 720 * time.Hour

// MaxEnrollOnLoginDays is the longest per-user grace period
// policy.enroll_on_login_days may give.
const MaxEnrollOnLoginDays = 365

// durationRange checks lo <= v <= hi and reports whether it holds.
func (ch *checker) durationRange(key string, v Duration, lo, hi time.Duration) bool {
	if v.Duration < lo || v.Duration > hi {
		ch.add(key, nil, "must be between %s and %s, got %s", fmtDuration(lo), fmtDuration(hi), fmtDuration(v.Duration))
		return false
	}
	return true
}

func (ch *checker) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		quoted := make([]string, len(allowed))
		for i, a := range allowed {
			quoted[i] = fmt.Sprintf("%q", a)
		}
		ch.add(key, nil, "must be %s or %s, got %q", strings.Join(quoted[:len(quoted)-1], ", "), quoted[len(quoted)-1], v)
	}
}

func (ch *checker) absPath(key, v string) bool {
	if !filepath.IsAbs(v) {
		ch.add(key, nil, "must be an absolute path, got %q", v)
		return false
	}
	return true
}

func (ch *checker) names(key, what string, list []string) {
	for i, n := range list {
		switch {
		case n == "":
			ch.add(key, nil, "entry %d is empty; expected a %s name", i+1, what)
		case len(n) > maxNameLen || !nameRE.MatchString(n):
			ch.add(key, nil, "%q is not a valid %s name: expected a letter or '_', then letters, digits, '_', '.', '-' or '@', "+
				"optionally ending in '$', at most %d bytes", n, what, maxNameLen)
		}
	}
}

// overlap reports names listed both as required and as exempt.
func (ch *checker) overlap(requiredKey, exemptKey, what string, required, exempt []string) {
	for _, n := range exempt {
		if slices.Contains(required, n) {
			ch.add(exemptKey, []string{requiredKey}, "%s %q is listed in both %s and %s; keep it in one of them", what, n, requiredKey, exemptKey)
		}
	}
}

// problems is Validate's work, kept with the keys so Load can add lines.
func (c *Config) problems() []*keyError {
	var ch checker

	switch {
	case c.Issuer == "":
		ch.add("issuer", nil, "must not be empty; it names this server in authenticator apps")
	case strings.Contains(c.Issuer, ":"):
		ch.add("issuer", nil, "must not contain ':', which separates issuer and account in otpauth labels, got %q", c.Issuer)
	case strings.IndexFunc(c.Issuer, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		ch.add("issuer", nil, "must contain only printable characters, got %q", c.Issuer)
	}

	switch normalAlgorithm(c.TOTP.Algorithm) {
	case "SHA1", "SHA256", "SHA512":
	default:
		ch.add("totp.algorithm", nil, `must be "SHA1", "SHA256" or "SHA512", got %q`, c.TOTP.Algorithm)
	}
	ch.intRange("totp.digits", c.TOTP.Digits, 6, 8, "")
	ch.intRange("totp.period", c.TOTP.Period, 15, 300, " seconds")
	// A comparison with a key that is itself out of range would only
	// repeat that key's problem, so it is made when the key is valid.
	skewOK := ch.intRange("totp.skew", c.TOTP.Skew, 0, 10, " steps")
	ch.intRange("totp.clock_hint_steps", c.TOTP.ClockHintSteps, 0, 120, " steps")
	if h := c.TOTP.ClockHintSteps; skewOK && h != 0 && h <= c.TOTP.Skew {
		ch.add("totp.clock_hint_steps", []string{"totp.skew"}, "must be 0 (no hint) or greater than totp.skew (%d), got %d", c.TOTP.Skew, h)
	}

	d := c.Daemon
	if ch.absPath("daemon.socket", d.Socket) && len(d.Socket) > maxSocketPath {
		ch.add("daemon.socket", nil, "is %d bytes long; a Unix socket path must be at most %d bytes", len(d.Socket), maxSocketPath)
	}
	if ch.absPath("daemon.state_dir", d.StateDir) && filepath.Clean(d.StateDir) == "/" {
		ch.add("daemon.state_dir", nil, `must not be "/"; use a directory of its own such as "/var/lib/otpgate"`)
	}
	ch.intRange("daemon.max_conns_per_uid", d.MaxConnsPerUID, 1, 1024, "")
	ch.durationRange("daemon.request_timeout", d.RequestTimeout, 100*time.Millisecond, 5*time.Minute)
	ch.oneOf("daemon.log_level", d.LogLevel, "debug", "info", "warn", "error")

	st := c.Store
	ch.oneOf("store.backend", st.Backend, "bolt", "postgres")
	if ch.absPath("store.dsn_file", st.DSNFile) && strings.HasSuffix(st.DSNFile, "/") {
		ch.add("store.dsn_file", nil, "must name a file, not a directory, got %q", st.DSNFile)
	}
	ch.durationRange("store.timeout", st.Timeout, 100*time.Millisecond, time.Minute)
	ch.intRange("store.max_conns", st.MaxConns, 1, 1000, "")

	p := c.Policy
	ch.oneOf("policy.default", p.Default, "optional", "required")
	ch.names("policy.required_users", "user", p.RequiredUsers)
	ch.names("policy.required_groups", "group", p.RequiredGroups)
	ch.names("policy.exempt_users", "user", p.ExemptUsers)
	ch.names("policy.exempt_groups", "group", p.ExemptGroups)
	ch.overlap("policy.required_users", "policy.exempt_users", "user", p.RequiredUsers, p.ExemptUsers)
	ch.overlap("policy.required_groups", "policy.exempt_groups", "group", p.RequiredGroups, p.ExemptGroups)
	for _, n := range p.ExemptNetworks {
		if pfx, err := netip.ParsePrefix(n); err != nil || pfx.Masked() != pfx {
			ch.add("policy.exempt_networks", nil, "%q is not a network in CIDR form with the host bits zero, such as \"10.0.0.0/8\" or \"2001:db8::/32\"", n)
		}
	}

	for _, h := range p.JumpHosts {
		if !validJumpHost(h) {
			ch.add("policy.jump_hosts", nil, "%q is not an IP address or a network in CIDR form with the host bits zero, such as \"10.0.0.5\" or \"10.0.1.0/24\"", h)
		}
	}
	ch.durationRange("policy.jump_window", p.JumpWindow, time.Second, MaxJumpWindow)
	ch.durationRange("policy.remember", p.Remember, 0, MaxRemember)
	if p.EnrollOnLoginUntil != "" {
		if _, err := time.Parse(time.DateOnly, p.EnrollOnLoginUntil); err != nil {
			ch.add("policy.enroll_on_login_until", nil, "must be a date such as \"2026-12-31\" or empty, got %q", p.EnrollOnLoginUntil)
		}
	}
	ch.intRange("policy.enroll_on_login_days", p.EnrollOnLoginDays, 0, MaxEnrollOnLoginDays, "")

	rl := c.RateLimit
	maxFailuresOK := ch.intRange("rate_limit.max_failures", rl.MaxFailures, 1, 100, "")
	lockoutOK := ch.durationRange("rate_limit.lockout", rl.Lockout, time.Second, 24*time.Hour)
	if !(rl.Backoff >= 1 && rl.Backoff <= 10) { // also refuses NaN
		ch.add("rate_limit.backoff", nil, "must be between 1 and 10, got %s", fmtFloat(rl.Backoff))
	}
	const week = 7 * 24 * time.Hour
	switch {
	case lockoutOK && rl.MaxLockout.Duration < rl.Lockout.Duration:
		ch.add("rate_limit.max_lockout", []string{"rate_limit.lockout"}, "must be at least rate_limit.lockout (%s), got %s",
			fmtDuration(rl.Lockout.Duration), fmtDuration(rl.MaxLockout.Duration))
	case !lockoutOK && rl.MaxLockout.Duration < time.Second:
		ch.add("rate_limit.max_lockout", nil, "must be at least 1s, got %s", fmtDuration(rl.MaxLockout.Duration))
	case rl.MaxLockout.Duration > week:
		ch.add("rate_limit.max_lockout", nil, "must be at most %s (7 days), got %s", fmtDuration(week), fmtDuration(rl.MaxLockout.Duration))
	}
	switch mcf := rl.MaxConsecutiveFailures; {
	case mcf > maxConsecutiveFailuresCap:
		ch.add("rate_limit.max_consecutive_failures", nil,
			"must be at most %d (RFC 4226 §7.3 and NIST SP 800-63B §5.2.2 limit consecutive failed attempts to 100), got %d",
			maxConsecutiveFailuresCap, mcf)
	case maxFailuresOK && mcf < rl.MaxFailures:
		ch.add("rate_limit.max_consecutive_failures", []string{"rate_limit.max_failures"},
			"must be at least rate_limit.max_failures (%d), got %d", rl.MaxFailures, mcf)
	}

	if ch.intRange("rate_limit.per_source_max_failures", rl.PerSourceMaxFailures, 0, 100, "") &&
		maxFailuresOK && rl.PerSourceMaxFailures != 0 && rl.PerSourceMaxFailures >= rl.MaxFailures {
		ch.add("rate_limit.per_source_max_failures", []string{"rate_limit.max_failures"},
			"must be below rate_limit.max_failures (%d), so that one address is blocked before its guesses lock the user out; got %d",
			rl.MaxFailures, rl.PerSourceMaxFailures)
	}
	ch.durationRange("rate_limit.per_source_lockout", rl.PerSourceLockout, time.Second, week)
	ch.intRange("rate_limit.source_max_failures", rl.SourceMaxFailures, 0, 100000, "")
	ch.durationRange("rate_limit.source_lockout", rl.SourceLockout, time.Second, week)

	e := c.Enroll
	if e.SecretBytes < 16 || e.SecretBytes > 64 {
		ch.add("enroll.secret_bytes", nil, "must be between 16 and 64 bytes (RFC 4226 R6 requires at least 128 bits; 20 is recommended), got %d", e.SecretBytes)
	}
	ch.intRange("enroll.recovery_codes", e.RecoveryCodes, 0, 20, "")
	ch.durationRange("enroll.pending_timeout", e.PendingTimeout, time.Minute, 24*time.Hour)

	switch dest := c.Audit.Destination; {
	case dest == "stderr" || dest == "syslog":
	case !filepath.IsAbs(dest):
		ch.add("audit.destination", nil, `must be "stderr", "syslog" or an absolute file path, got %q`, dest)
	case strings.HasSuffix(dest, "/") || filepath.Clean(dest) == "/":
		ch.add("audit.destination", nil, "must name a file, not a directory, got %q", dest)
	}
	return ch.ps
}

// normalAlgorithm is the canonical spelling of an algorithm name.
func normalAlgorithm(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", ""))
}

// fmtDuration writes a duration the way the file does: "1h", "1h30m",
// "100ms", without time.Duration's trailing "0m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fmtFloat writes a float without exponent noise; NaN and infinities as
// TOML spells them.
func fmtFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return fmt.Sprintf("%g", f)
}

// validJumpHost reports whether h is an IP address (no zone) or a CIDR
// network with its host bits zero.
func validJumpHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	pfx, err := netip.ParsePrefix(h)
	return err == nil && pfx.Masked() == pfx
}
