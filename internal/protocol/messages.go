package protocol

import "time"

// Version is the protocol version spoken by this package. A daemon answers a
// request with another version with an ErrUnsupportedVersion error.
const Version = 1

// DefaultSocket is where otpgated listens unless configured otherwise.
const DefaultSocket = "/run/otpgate/otpgated.sock"

// Op names an operation a client asks the daemon to perform.
type Op string

// The operations. Who may call each one is decided by the daemon from the
// caller's peer credentials, never from anything in the request.
const (
	OpPing          Op = "ping"           // liveness; anyone
	OpStatus        Op = "status"         // enrollment status of User; root or User
	OpEnrollBegin   Op = "enroll_begin"   // new pending secret for User; User or root
	OpEnrollConfirm Op = "enroll_confirm" // activate the pending secret with its first code
	OpDisable       Op = "disable"        // remove User's enrollment; User with Code, or root
	OpRecoveryCodes Op = "recovery_codes" // regenerate recovery codes; User with Code
	OpAdminList     Op = "admin_list"     // all enrolled users; root only
	OpAdminShow     Op = "admin_show"     // one user's status; root only
	OpAdminReset    Op = "admin_reset"    // delete User's enrollment and state; root only
	OpAdminUnlock   Op = "admin_unlock"   // clear User's failure counter and lockout; root only
	OpAdminImport   Op = "admin_import"   // store an existing secret for User; root only
	OpForget        Op = "forget"         // forget User's remembered devices; User or root, no code
	OpLoginStart    Op = "login_start"    // open a login dialogue for User on this connection; root or User
	OpLoginAnswer   Op = "login_answer"   // answer the prompts of the dialogue's last step
)

// Ops lists every known operation.
var Ops = []Op{OpPing, OpStatus, OpEnrollBegin, OpEnrollConfirm, OpDisable,
	OpRecoveryCodes, OpAdminList, OpAdminShow, OpAdminReset, OpAdminUnlock, OpAdminImport, OpForget,
	OpLoginStart, OpLoginAnswer}

// Known reports whether op is one of Ops.
func (op Op) Known() bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

// Request is one client request. Fields an operation does not use must be
// empty. Code and Import hold secrets: they are never logged.
type Request struct {
	V    int    `json:"v"`
	ID   uint64 `json:"id"`
	Op   Op     `json:"op"`
	User string `json:"user,omitempty"`
	// Code is a TOTP code or a recovery code typed by the user.
	Code string `json:"code,omitempty"`
	// Context for policy and the audit log: the PAM service (or "otpgate-sshd",
	// "otpgate"), the remote host, the terminal, and what the caller already
	// verified (e.g. SSH_AUTH_INFO_0 "publickey ssh-ed25519 AAAA...").
	Service  string `json:"service,omitempty"`
	RHost    string `json:"rhost,omitempty"`
	TTY      string `json:"tty,omitempty"`
	AuthInfo string `json:"auth_info,omitempty"`
	// PriorFactor is PriorFactorPassword when root's PAM module was told
	// (its enroll_after_password argument) that a password module ahead
	// of it in the stack must have succeeded; policy.enroll_on_login then
	// counts that password as the other factor. Empty otherwise.
	PriorFactor string `json:"prior_factor,omitempty"`
	// Force lets root re-enroll an active user without a code.
	Force bool `json:"force,omitempty"`
	// After is admin_list's cursor: list users sorting after this name.
	After string `json:"after,omitempty"`
	// Import is the payload of admin_import.
	Import *Import `json:"import,omitempty"`
	// Login opens a login dialogue (login_start).
	Login *LoginStart `json:"login,omitempty"`
	// Answers answer the last step's prompts, in order (login_answer).
	// They hold secrets: they are never logged.
	Answers []string `json:"answers,omitempty"`
}

// PriorFactorPassword is the only value of Request.PriorFactor.
const PriorFactorPassword = "password"

// Import carries an existing secret migrated from another system.
type Import struct {
	// Secret is base32, as in an otpauth URI.
	Secret    string `json:"secret"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
	// RecoveryCodes are one-time codes to keep (e.g. google-authenticator
	// scratch codes); the daemon stores only their hashes.
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
	// Replace allows overwriting an existing enrollment.
	Replace bool `json:"replace,omitempty"`
}

// Response is the daemon's answer to one Request. Exactly one of Error or
// the result fields for the operation is set. It is composed of parts so
// that a client may decode only the parts it uses (a login dialogue
// decodes a ResponseHeader and a StepReply): the wire format is the same.
type Response struct {
	ResponseHeader

	Status *UserStatus  `json:"status,omitempty"`
	Users  []UserStatus `json:"users,omitempty"`
	// Next, on an admin_list page, is the After of the next page; empty
	// on the last page.
	Next          string      `json:"next,omitempty"`
	Enroll        *EnrollInfo `json:"enroll,omitempty"`
	RecoveryCodes []string    `json:"recovery_codes,omitempty"`
	// Forgotten, in reply to OpForget, is how many remembered devices
	// were forgotten.
	Forgotten int `json:"forgotten,omitempty"`

	StepReply
}

// ResponseHeader is what every Response carries: the protocol version,
// the ID of the request it answers, and the error reply, if any.
type ResponseHeader struct {
	V     int    `json:"v"`
	ID    uint64 `json:"id"`
	Error *Error `json:"error,omitempty"`
}

// StepReply is a login dialogue's part of a Response.
type StepReply struct {
	// Step is the next step of a login dialogue (login_start,
	// login_answer).
	Step *LoginStep `json:"step,omitempty"`
}

// ErrorCode classifies an error reply so that clients can branch on it.
type ErrorCode string

// Error codes.
const (
	ErrBadRequest         ErrorCode = "bad_request"
	ErrUnsupportedVersion ErrorCode = "unsupported_version"
	ErrPermissionDenied   ErrorCode = "permission_denied"
	ErrNotFound           ErrorCode = "not_found"    // no such user or enrollment
	ErrInvalidCode        ErrorCode = "invalid_code" // a code was needed and was wrong
	ErrLocked             ErrorCode = "locked"       // too many failures
	ErrConflict           ErrorCode = "conflict"     // e.g. already enrolled
	ErrBusy               ErrorCode = "busy"         // too many connections
	ErrInternal           ErrorCode = "internal"     // see the daemon's log
)

// Error is an error reply. Message is safe to show to the caller.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	// RetryAfter is set with ErrLocked: seconds until the lockout ends, or -1
	// when only an administrator can unlock.
	RetryAfter int64 `json:"retry_after,omitempty"`
}

func (e *Error) Error() string { return "otpgated: " + e.Message }

// Outcome names otpgated's decision on a login or a code, as its audit log
// records it (outcome=...). It is not sent to peers: a login's front end
// sees the LoginStep otpgated makes of it, and a code-taking operation
// (enroll_confirm, disable, recovery_codes) answers with a result or an
// Error.
type Outcome string

// Outcomes. Only OutcomeAccept admits the user; OutcomeNotEnrolled and
// OutcomeExempt tell the caller to skip the second factor; everything else
// denies.
const (
	// OutcomeAccept: the code was right and is now used up.
	OutcomeAccept Outcome = "accept"
	// OutcomeCodeRequired (check only): ask the user for a code.
	OutcomeCodeRequired Outcome = "code_required"
	// OutcomeReject: wrong code (Message may say the device clock is off).
	OutcomeReject Outcome = "reject"
	// OutcomeReplay: the code was right but was already used.
	OutcomeReplay Outcome = "replay"
	// OutcomeLocked: too many failures; RetryAfter says for how long.
	OutcomeLocked Outcome = "locked"
	// OutcomeEnrollRequired: policy requires a code and the user has none.
	OutcomeEnrollRequired Outcome = "enroll_required"
	// OutcomeRemembered (check only): the user gave a code from this
	// remote address with this public key within policy.remember; the
	// daemon admits without a code (an audited decision).
	OutcomeRemembered Outcome = "remembered"
	// OutcomeEnrollOffered (check only, policy.enroll_on_login): the user
	// must use a code and is not enrolled; the reply's Enroll holds a new
	// pending key to show, and the first code goes to OpEnrollConfirm.
	OutcomeEnrollOffered Outcome = "enroll_offered"
	// OutcomeNotEnrolled: the user has no code and policy does not require one.
	OutcomeNotEnrolled Outcome = "not_enrolled"
	// OutcomeExempt: policy exempts the user from codes.
	OutcomeExempt Outcome = "exempt"
)

// Enrollment states reported in UserStatus.State.
const (
	StateNone    = "none"
	StatePending = "pending"
	StateActive  = "active"
)

// UserStatus describes one user's enrollment and limiter state. It never
// contains the secret.
type UserStatus struct {
	User  string `json:"user"`
	State string `json:"state"`
	// PolicyRequires says otpgated's policy requires a code of User,
	// enrolled or not; whether a code is asked at login also depends on
	// the enrollment (see the CLI's "required").
	PolicyRequires    bool      `json:"policy_requires"`
	Exempt            bool      `json:"exempt"`
	Algorithm         string    `json:"algorithm,omitempty"`
	Digits            int       `json:"digits,omitempty"`
	Period            int       `json:"period,omitempty"`
	RecoveryRemaining int       `json:"recovery_remaining"`
	Failures          int       `json:"failures"`
	LockedUntil       time.Time `json:"locked_until,omitzero"`
	LockedByAdmin     bool      `json:"locked_by_admin,omitempty"`
	EnrolledAt        time.Time `json:"enrolled_at,omitzero"`
	// EnrolledVia says how the enrollment was made: "cli" (the user's
	// 'otpgate enroll'), "login" (inside an SSH login), "admin" ('otpgate
	// admin enroll') or "import"; empty when not recorded.
	EnrolledVia string `json:"enrolled_via,omitempty"`
	// EnrolledFrom and EnrolledKey are the remote address and the public
	// key fingerprint of an enrollment made at an SSH login.
	EnrolledFrom string    `json:"enrolled_from,omitempty"`
	EnrolledKey  string    `json:"enrolled_key,omitempty"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
	// BlockedSources lists remote addresses currently blocked for this
	// user by the per-source limit.
	BlockedSources []BlockedSource `json:"blocked_sources,omitempty"`
	// Remembered lists the devices (remote address and key fingerprint)
	// that skip the code until Until (policy.remember).
	Remembered []RememberedDevice `json:"remembered,omitempty"`
}

// RememberedDevice is one remembered (remote address, public key) pair.
type RememberedDevice struct {
	Source      string    `json:"source"`
	Fingerprint string    `json:"fingerprint"`
	Until       time.Time `json:"until"`
}

// BlockedSource is one remote address blocked for a user.
type BlockedSource struct {
	Source   string    `json:"source"`
	Until    time.Time `json:"until"`
	Failures int       `json:"failures"`
}

// EnrollInfo is returned once, to the enrolling user, by OpEnrollBegin.
type EnrollInfo struct {
	URI       string `json:"uri"`
	Secret    string `json:"secret"` // base32
	Issuer    string `json:"issuer"`
	Account   string `json:"account"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
	// QR, with OutcomeEnrollOffered, is the URI's QR code drawn in
	// half-block characters, at most 80 columns wide.
	QR string `json:"qr,omitempty"`
}
