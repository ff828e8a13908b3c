package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// fieldError is one validation problem, tied to its dotted key.
type fieldError struct {
	key, msg string
}

// validationErrors are all problems found by Validate.
type validationErrors []fieldError

func (v validationErrors) Error() string {
	msgs := make([]string, len(v))
	for i, e := range v {
		msgs[i] = e.msg
	}
	return strings.Join(msgs, "\n")
}

// normalize canonicalizes values that have several spellings.
func (c *Config) normalize() {
	c.TOTP.Algorithm = strings.ToUpper(strings.ReplaceAll(c.TOTP.Algorithm, "-", ""))
}

// nameRE is what user and group names may look like: POSIX names, plus
// upper case, '@' and '\' for directory (LDAP, AD) accounts.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@\\-]*\$?$`)

// Validate checks every value and reports all problems at once, each
// naming its key and what is expected.
func (c *Config) Validate() error {
	var errs validationErrors
	bad := func(key, format string, args ...any) {
		errs = append(errs, fieldError{key, fmt.Sprintf("%s: ", key) + fmt.Sprintf(format, args...)})
	}
	intRange := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(key, "must be between %d and %d, not %d", lo, hi, v)
		}
	}
	durRange := func(key string, v Duration, lo, hi time.Duration) {
		if v.Duration < lo || v.Duration > hi {
			bad(key, "must be between %s and %s, not %s", lo, hi, v.Duration)
		}
	}

	if c.Issuer == "" || strings.Contains(c.Issuer, ":") || strings.IndexFunc(c.Issuer, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		bad("issuer", "must be a non-empty printable name without ':' (it becomes the otpauth label prefix), not %q", c.Issuer)
	}
	switch c.TOTP.Algorithm {
	case "SHA1", "SHA256", "SHA512":
	default:
		bad("totp.algorithm", `must be "SHA1", "SHA256" or "SHA512", not %q`, c.TOTP.Algorithm)
	}
	intRange("totp.digits", c.TOTP.Digits, 6, 8)
	intRange("totp.period", c.TOTP.Period, 15, 300)
	intRange("totp.skew", c.TOTP.Skew, 0, 10)
	intRange("totp.clock_hint_steps", c.TOTP.ClockHintSteps, 0, 120)
	if c.TOTP.ClockHintSteps != 0 && c.TOTP.ClockHintSteps <= c.TOTP.Skew {
		bad("totp.clock_hint_steps", "must be 0 (off) or larger than totp.skew (%d), not %d", c.TOTP.Skew, c.TOTP.ClockHintSteps)
	}

	if !filepath.IsAbs(c.Daemon.Socket) {
		bad("daemon.socket", "must be an absolute path, not %q", c.Daemon.Socket)
	}
	if !filepath.IsAbs(c.Daemon.StateDir) || filepath.Clean(c.Daemon.StateDir) == "/" {
		bad("daemon.state_dir", "must be an absolute path other than /, not %q", c.Daemon.StateDir)
	}
	intRange("daemon.max_conns_per_uid", c.Daemon.MaxConnsPerUID, 1, 1024)
	durRange("daemon.request_timeout", c.Daemon.RequestTimeout, 100*time.Millisecond, 5*time.Minute)
	switch c.Daemon.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("daemon.log_level", `must be "debug", "info", "warn" or "error", not %q`, c.Daemon.LogLevel)
	}

	switch c.Policy.Default {
	case "optional", "required":
	default:
		bad("policy.default", `must be "optional" or "required", not %q`, c.Policy.Default)
	}
	names := func(key string, list []string) {
		for _, n := range list {
			if len(n) > 256 || !nameRE.MatchString(n) {
				bad(key, "%q is not a valid user or group name", n)
			}
		}
	}
	names("policy.required_users", c.Policy.RequiredUsers)
	names("policy.required_groups", c.Policy.RequiredGroups)
	names("policy.exempt_users", c.Policy.ExemptUsers)
	names("policy.exempt_groups", c.Policy.ExemptGroups)
	for _, u := range c.Policy.RequiredUsers {
		for _, e := range c.Policy.ExemptUsers {
			if u == e {
				bad("policy.exempt_users", "%q is both required and exempt; remove it from one list", u)
			}
		}
	}
	for _, g := range c.Policy.RequiredGroups {
		for _, e := range c.Policy.ExemptGroups {
			if g == e {
				bad("policy.exempt_groups", "group %q is both required and exempt; remove it from one list", g)
			}
		}
	}

	rl := c.RateLimit
	intRange("rate_limit.max_failures", rl.MaxFailures, 1, 100)
	durRange("rate_limit.lockout", rl.Lockout, time.Second, 24*time.Hour)
	if rl.Backoff < 1 || rl.Backoff > 10 {
		bad("rate_limit.backoff", "must be between 1 and 10, not %g", rl.Backoff)
	}
	if rl.MaxLockout.Duration < rl.Lockout.Duration || rl.MaxLockout.Duration > 7*24*time.Hour {
		bad("rate_limit.max_lockout", "must be at least rate_limit.lockout (%s) and at most 168h, not %s", rl.Lockout.Duration, rl.MaxLockout.Duration)
	}
	if rl.MaxConsecutiveFailures < rl.MaxFailures || rl.MaxConsecutiveFailures > 100 {
		bad("rate_limit.max_consecutive_failures", "must be between rate_limit.max_failures (%d) and 100 (RFC 4226 §7.3, NIST SP 800-63B 5.2.2 allow at most 100), not %d", rl.MaxFailures, rl.MaxConsecutiveFailures)
	}

	intRange("enroll.secret_bytes", c.Enroll.SecretBytes, 16, 64)
	intRange("enroll.recovery_codes", c.Enroll.RecoveryCodes, 0, 20)
	durRange("enroll.pending_timeout", c.Enroll.PendingTimeout, time.Minute, 24*time.Hour)

	if d := c.Audit.Destination; d != "stderr" && d != "syslog" && !filepath.IsAbs(d) {
		bad("audit.destination", `must be "stderr", "syslog" or an absolute file path, not %q`, d)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
