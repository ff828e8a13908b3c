// Package otp implements HOTP (RFC 4226) and TOTP (RFC 6238) one-time
// passwords, base32 secrets (RFC 4648) and otpauth:// key URIs (the Google
// Authenticator Key Uri Format).
//
// The package is pure: no I/O, no logging and no global mutable state. Time
// is always a parameter, so callers (and tests) decide what "now" is. The
// only source of randomness is crypto/rand, in [GenerateSecret].
//
// # Verification
//
// [Verify] checks a code against a window of time steps around a centre
// step, compares in constant time, and returns the step that matched so the
// caller can refuse a second use of the same step (RFC 6238 §5.2). Replay
// state and rate limiting are the caller's job: this package keeps no state.
//
// # Panics
//
// [HOTP], [TOTP], [Step] and [StepStart] panic when given parameters that
// [Params.Validate] rejects (an unknown algorithm, digits outside 6..8, a
// period below 1 second): those are programming errors, and a code computed
// with a silently substituted parameter would be worse. [Verify] and
// [ValidCode] never panic; they report false instead.
//
// # References
//
//   - RFC 4226, HOTP: An HMAC-Based One-Time Password Algorithm.
//   - RFC 6238, TOTP: Time-Based One-Time Password Algorithm, with erratum
//     2866 (each hash uses its own test seed).
//   - RFC 4648, The Base16, Base32, and Base64 Data Encodings.
//   - https://github.com/google/google-authenticator/wiki/Key-Uri-Format
package otp
