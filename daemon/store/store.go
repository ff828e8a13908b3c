// Package store defines where otpgated keeps its per-user state, and the
// rules for the state directory. Implementations (package bolt; later
// postgres) must make Update atomic and durable: when Update returns nil,
// the new record is on stable storage (fsync'd), and concurrent Updates of
// the same user are serialized.
package store

import (
	"errors"
	"time"
)

// ErrNotFound is returned by Get for a user without a record.
var ErrNotFound = errors.New("store: no record for user")

// ErrStop ends a listing without error when a List callback returns it.
var ErrStop = errors.New("store: stop listing")

// ErrReadOnly is wrapped by every Update error once a commit has failed
// (for example fsync returned EIO). A failed fsync is never retried: the
// kernel may already have dropped the unwritten pages, so a retry could
// report success for data that is not on disk ("fsyncgate"). Reads still
// work, so the daemon can keep denying; writes need a restart.
var ErrReadOnly = errors.New("store: store is read-only after a failed write; restart otpgated after fixing the disk")

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("store: store is closed")

// Record is everything the daemon knows about one user. Secrets inside are
// sealed (package seal); recovery codes are stored only as hashes
// (package recovery).
type Record struct {
	User string `json:"user"`

	// Active is the confirmed enrollment, nil when the user has none.
	Active *Enrollment `json:"active,omitempty"`
	// Pending is an enrollment waiting for its first code; it cannot
	// authenticate. It replaces Active only when confirmed.
	Pending *Enrollment `json:"pending,omitempty"`

	// LastStep is the highest TOTP step ever accepted for this user. Only
	// strictly later steps are accepted (replay protection). It never
	// decreases, not even when the clock goes backwards.
	LastStep uint64 `json:"last_step"`
	// LastCode says where and when the code of LastStep (or the last
	// recovery code) was accepted; nil in records from before it was kept.
	LastCode *CodeUse `json:"last_code,omitempty"`

	// Failures counts consecutive failed attempts; a success or an admin
	// unlock resets it.
	Failures int `json:"failures"`
	// FailuresFromBlockedSources counts, of Failures, those that came from
	// an address already blocked once for this user (Sources): they count
	// towards the admin lock at max_consecutive_failures but not towards
	// the temporary lockouts, so that a guesser at one address cannot keep
	// the owner locked out. Reset with Failures.
	FailuresFromBlockedSources int `json:"failures_from_blocked_sources,omitempty"`
	// Lockouts counts lockouts in the current failure streak (for backoff).
	Lockouts int `json:"lockouts"`
	// LockedUntil is the end of the current lockout (zero: not locked).
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// AdminLocked is set when the user hit the hard failure cap; only an
	// admin unlock clears it.
	AdminLocked bool `json:"admin_locked,omitempty"`

	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastFailure is when the last failure was counted. An address-wide
	// record (rate_limit.source_max_failures) forgets its failures, and
	// is deleted, source_lockout after it.
	LastFailure time.Time `json:"last_failure,omitzero"`

	// Sources holds per-remote-address failure state for this user
	// (rate_limit.per_source_max_failures), keyed by address (an IPv6
	// address by its /64).
	Sources map[string]*SourceState `json:"sources,omitempty"`

	// Remembered are the devices that skip the code for a while
	// (policy.remember), oldest first, at most a few.
	Remembered []RememberedDevice `json:"remembered,omitempty"`

	// EnrollOfferedAt is when enrollment at login was first offered to
	// this user (policy.enroll_on_login_days counts from it). It survives
	// the user's own disable; an admin reset clears it.
	EnrollOfferedAt time.Time `json:"enroll_offered_at,omitzero"`
}

// How an enrollment was made (Enrollment.Method).
const (
	MethodCLI    = "cli"    // the user's own 'otpgate enroll'
	MethodLogin  = "login"  // inside an SSH login (policy.enroll_on_login)
	MethodAdmin  = "admin"  // 'otpgate admin enroll' for the user
	MethodImport = "import" // 'otpgate admin import' from another tool
)

// RememberedDevice is one (remote address, public key) pair that gave a
// code at Since. It is honoured until Until, and never longer than the
// configured policy.remember after Since.
type RememberedDevice struct {
	Source      string    `json:"source"`
	Fingerprint string    `json:"fingerprint"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
}

// CodeUse is one accepted code: when, on which server, for which login.
// The replay refusal tells it to whoever types the code again, and
// policy.jump_hosts lets a login through a jump host follow it.
type CodeUse struct {
	// At is when the code was accepted.
	At time.Time `json:"at"`
	// Host is the host name of the otpgated that accepted it (in a fleet,
	// each server's own).
	Host string `json:"host,omitempty"`
	// Service and RHost are the PAM service and the remote host of that
	// login (RHost only from root callers, empty under sudo).
	Service string `json:"service,omitempty"`
	RHost   string `json:"rhost,omitempty"`
	// Fingerprint is the SHA256 fingerprint of the one public key the SSH
	// server verified before asking for the code; empty when the login
	// had none (sudo, the CLI, a password).
	Fingerprint string `json:"fingerprint,omitempty"`
}

// SourceState is the failure state of one remote address.
type SourceState struct {
	// Failures counts consecutive failures from this address.
	Failures int `json:"failures"`
	// Blocks counts the blocks this address has had for this user since
	// its last success: each lasts per_source_lockout times backoff to the
	// power of the blocks before it, and once an address was blocked its
	// failures no longer count towards the user's temporary lockouts.
	Blocks int `json:"blocks,omitempty"`
	// BlockedUntil is the end of this address's block (zero: not blocked).
	BlockedUntil time.Time `json:"blocked_until,omitzero"`
	// LastFailure is when the last failure happened (for pruning).
	LastFailure time.Time `json:"last_failure,omitzero"`
}

// Enrollment is one TOTP secret with its parameters and recovery codes.
type Enrollment struct {
	// SealedSecret is the secret sealed by package seal, bound to the user.
	SealedSecret []byte    `json:"sealed_secret"`
	Algorithm    string    `json:"algorithm"`
	Digits       int       `json:"digits"`
	Period       int       `json:"period"`
	CreatedAt    time.Time `json:"created_at"`
	// ActivatedAt is zero while pending.
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	// RecoverySalt salts the hashes of this enrollment's recovery codes.
	RecoverySalt []byte `json:"recovery_salt,omitempty"`
	// Recovery holds the hashes (package recovery's Hash) of the unused
	// recovery codes.
	Recovery [][]byte `json:"recovery,omitempty"`

	// BurnedSteps are future steps whose code a wrong attempt matched
	// (totp.clock_hint_steps): the attempt was told about its clock, so
	// that code must never be accepted when its step comes. Steps that
	// fell behind the verification window are dropped.
	BurnedSteps []uint64 `json:"burned_steps,omitempty"`

	// Method says how the enrollment was made (MethodCLI, MethodLogin,
	// MethodAdmin, MethodImport); empty for enrollments from before it
	// was recorded.
	Method string `json:"method,omitempty"`
	// Source and Fingerprint are, for MethodLogin, the remote address
	// and the SHA256 fingerprint of the public key of that login.
	Source      string `json:"source,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Store keeps Records. All methods are safe for concurrent use.
type Store interface {
	// Get returns the user's record, or ErrNotFound.
	Get(user string) (*Record, error)
	// Update runs fn on the user's current record (nil when there is none)
	// inside one transaction. fn returns the record to store, or nil to
	// delete it. fn may run more than once (batched commits retry), so it
	// must not have side effects outside the record. Update returns only
	// after the change is durable. If fn returns an error nothing changes
	// and Update returns that error.
	Update(user string, fn func(rec *Record) (*Record, error)) error
	// List calls fn for every record whose user name sorts after after
	// ("" for all), in user name order. If fn returns ErrStop, List stops
	// and returns nil.
	List(after string, fn func(rec *Record) error) error
	// Close flushes and closes the store.
	Close() error
}
