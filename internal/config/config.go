// Package config loads and validates otpgate's TOML configuration file.
//
// Decoding is strict: unknown keys, wrong types and impossible values are
// errors that name the file, the line and the key. Defaults live in
// Default and validation in Validate; config.example.toml at the top of the
// repository documents every key and is tested to equal Default.
package config

import (
	"fmt"
	"time"
)

// DefaultPath is the configuration file used when -config is not given.
const DefaultPath = "/etc/otpgate/config.toml"

// Config is the whole configuration file.
type Config struct {
	// Issuer is the name shown in authenticator apps ("otpgate" or the
	// host's name).
	Issuer    string    `toml:"issuer"`
	TOTP      TOTP      `toml:"totp"`
	Daemon    Daemon    `toml:"daemon"`
	Store     Store     `toml:"store"`
	Policy    Policy    `toml:"policy"`
	RateLimit RateLimit `toml:"rate_limit"`
	Enroll    Enroll    `toml:"enroll"`
	Audit     Audit     `toml:"audit"`
	// SSHD configures otpgate-sshd; otpgated ignores it.
	SSHD SSHD `toml:"sshd"`
}

// TOTP holds the code parameters given to newly enrolled users and the
// verification window.
type TOTP struct {
	// Algorithm is "SHA1", "SHA256" or "SHA512".
	Algorithm string `toml:"algorithm"`
	// Digits is 6 to 8.
	Digits int `toml:"digits"`
	// Period is the time step in seconds.
	Period int `toml:"period"`
	// Skew is how many steps before and after the current one are accepted
	// (0 to 10).
	Skew int `toml:"skew"`
	// ClockHintSteps: a wrong code that matches a step up to this far outside
	// the window is still rejected, but the user is told their clock is off.
	// 0 disables the hint.
	ClockHintSteps int `toml:"clock_hint_steps"`
}

// Daemon configures otpgated's socket and state.
type Daemon struct {
	// Socket is the absolute path of the Unix socket otpgated listens on.
	Socket string `toml:"socket"`
	// StateDir is the absolute directory holding the secret store and the
	// rate-limit state.
	StateDir string `toml:"state_dir"`
	// MaxConnsPerUID caps concurrent connections from one peer uid (root
	// is capped separately, higher, so users cannot starve logins).
	MaxConnsPerUID int `toml:"max_conns_per_uid"`
	// RequestTimeout bounds reading a request and writing its reply.
	RequestTimeout Duration `toml:"request_timeout"`
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string `toml:"log_level"`
}

// Store chooses where otpgated keeps per-user state. Changes take effect
// only after a restart.
type Store struct {
	// Backend is "bolt" (the embedded store in Daemon.StateDir) or
	// "postgres" (a PostgreSQL database shared by a fleet of servers).
	Backend string `toml:"backend"`
	// DSNFile is the absolute path of a file holding the PostgreSQL
	// connection string; otpgated refuses it unless it is a regular file
	// owned by root with mode 0600. Used by the "postgres" backend only.
	DSNFile string `toml:"dsn_file"`
	// Timeout bounds each database operation (100ms to 1m): with the
	// database unreachable, a request fails (and is denied) after this long.
	Timeout Duration `toml:"timeout"`
	// MaxConns caps otpgated's connections to the database (1 to 1000).
	MaxConns int `toml:"max_conns"`
}

// Policy decides who must use a code. Exemption wins over requirement.
type Policy struct {
	// Default is "optional" (users without an enrollment log in without a
	// code) or "required" (they are refused until they enroll).
	Default string `toml:"default"`
	// RequiredUsers and RequiredGroups must use a code whatever Default is.
	RequiredUsers  []string `toml:"required_users"`
	RequiredGroups []string `toml:"required_groups"`
	// ExemptUsers and ExemptGroups never use a code. A name may not be both
	// required and exempt in the same file.
	ExemptUsers  []string `toml:"exempt_users"`
	ExemptGroups []string `toml:"exempt_groups"`
	// ExemptNetworks are CIDR prefixes ("10.0.0.0/8", "2001:db8::/32"):
	// logins whose remote address (PAM_RHOST, or otpgate-sshd's peer) is
	// inside one skip the code. An empty or unparseable remote host (a host
	// name with sshd's UseDNS, sudo without a remote host) never matches.
	ExemptNetworks []string `toml:"exempt_networks"`
	// Remember, when above zero (at most 720h), lets a user who gave a
	// code over SSH skip it for this long on later logins from the same
	// remote address with the same public key. Zero turns it off.
	Remember Duration `toml:"remember"`
	// JumpHosts are the addresses ("10.0.0.5") and networks
	// ("10.0.1.0/24") of jump hosts (bastions). A login from one of them
	// needs no code when the same user gave a code with the same public key,
	// on this server or another of the same store, within JumpWindow: the
	// second hop of "ssh -J". Empty (the default) turns it off.
	JumpHosts []string `toml:"jump_hosts"`
	// JumpWindow is how long after an accepted code a login through a jump
	// host may follow it (1s to MaxJumpWindow; default 60s).
	JumpWindow Duration `toml:"jump_window"`
	// EnrollOnLogin lets a user who must use a code but is not enrolled
	// enroll inside an SSH login, after a verified public key.
	EnrollOnLogin bool `toml:"enroll_on_login"`
	// EnrollOnLoginUntil, a date "YYYY-MM-DD" (UTC) or "", ends
	// EnrollOnLogin at the start of that day.
	EnrollOnLoginUntil string `toml:"enroll_on_login_until"`
	// EnrollOnLoginDays, when above zero (at most MaxEnrollOnLoginDays),
	// ends EnrollOnLogin for each user this many days after it was first
	// offered to them (the first login that would otherwise have been
	// refused). Zero means no per-user limit.
	EnrollOnLoginDays int `toml:"enroll_on_login_days"`
}

// RateLimit bounds guessing. Failures are counted per user across every
// entry point and survive restarts.
type RateLimit struct {
	// MaxFailures consecutive failures lock the user for Lockout.
	MaxFailures int `toml:"max_failures"`
	// Lockout is the first lockout's length.
	Lockout Duration `toml:"lockout"`
	// Backoff multiplies the lockout after each further lockout (>= 1).
	Backoff float64 `toml:"backoff"`
	// MaxLockout caps one lockout's length.
	MaxLockout Duration `toml:"max_lockout"`
	// MaxConsecutiveFailures locks the user until an admin unlocks them
	// (at most 100, NIST SP 800-63B 5.2.2).
	MaxConsecutiveFailures int `toml:"max_consecutive_failures"`
	// PerSourceMaxFailures consecutive failures for one user from one
	// remote address block that address for that user for
	// PerSourceLockout (longer at each further block), before the per-user
	// limit is reached, so that a guesser at one address cannot lock the
	// owner out: once blocked, an address's failures no longer count
	// towards the user's temporary lockouts (0: off; must be below
	// MaxFailures; default DefaultPerSourceMaxFailures).
	PerSourceMaxFailures int `toml:"per_source_max_failures"`
	// PerSourceLockout is how long such an address stays blocked.
	PerSourceLockout Duration `toml:"per_source_lockout"`
	// SourceMaxFailures failures from one remote address, across all
	// users and within SourceLockout of each other, block that address for
	// every user for SourceLockout (0: off). Successes clear nothing.
	SourceMaxFailures int `toml:"source_max_failures"`
	// SourceLockout is how long such an address stays blocked.
	SourceLockout Duration `toml:"source_lockout"`
}

// Enroll configures new enrollments.
type Enroll struct {
	// SecretBytes is the secret length (at least 16; 20 = 160 bits).
	SecretBytes int `toml:"secret_bytes"`
	// RecoveryCodes is how many one-time recovery codes a user gets (0-20).
	RecoveryCodes int `toml:"recovery_codes"`
	// PendingTimeout: an unconfirmed enrollment expires after this long.
	PendingTimeout Duration `toml:"pending_timeout"`
}

// Audit configures the audit log: one line per decision.
type Audit struct {
	// Destination is "stderr", "syslog", or an absolute file path.
	Destination string `toml:"destination"`
}

// Duration is a time.Duration written in TOML as a string such as "30s",
// "5m" or "1h30m".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string such as "90s" or "1h30m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// parseDuration is time.ParseDuration with an error that says which form
// is expected: "5 minutes" or a bare "300" are the usual mistakes.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`invalid duration %q: expected a number with a unit, such as "90s", "5m" or "1h30m"`, s)
	}
	return v, nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// DefaultPerSourceMaxFailures is rate_limit.per_source_max_failures when the
// file does not set it: 3, or one below max_failures when that is lower, so
// that one address is blocked before its guesses lock the user out (off only
// when max_failures is 1 and no lower limit exists).
func DefaultPerSourceMaxFailures(maxFailures int) int {
	return max(0, min(3, maxFailures-1))
}

// Default returns the built-in defaults; config.example.toml must match it.
func Default() Config {
	return Config{
		Issuer: "otpgate",
		TOTP:   TOTP{Algorithm: "SHA1", Digits: 6, Period: 30, Skew: 1, ClockHintSteps: 20},
		Daemon: Daemon{
			Socket:         "/run/otpgate/otpgated.sock",
			StateDir:       "/var/lib/otpgate",
			MaxConnsPerUID: 16,
			RequestTimeout: Duration{10 * time.Second},
			LogLevel:       "info",
		},
		Store: Store{
			Backend:  "bolt",
			DSNFile:  "/etc/otpgate/postgres.dsn",
			Timeout:  Duration{5 * time.Second},
			MaxConns: 8,
		},
		Policy: Policy{Default: "optional", JumpWindow: Duration{time.Minute}},
		RateLimit: RateLimit{
			MaxFailures:            5,
			Lockout:                Duration{time.Minute},
			Backoff:                2,
			MaxLockout:             Duration{time.Hour},
			MaxConsecutiveFailures: 100,
			PerSourceMaxFailures:   DefaultPerSourceMaxFailures(5),
			PerSourceLockout:       Duration{15 * time.Minute},
			SourceLockout:          Duration{time.Hour},
		},
		Enroll: Enroll{SecretBytes: 20, RecoveryCodes: 10, PendingTimeout: Duration{15 * time.Minute}},
		Audit:  Audit{Destination: "stderr"},
		SSHD:   defaultSSHD("/run/otpgate/otpgated.sock"),
	}
}
