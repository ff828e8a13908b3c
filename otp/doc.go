// Package otp implements HOTP (RFC 4226) and TOTP (RFC 6238) one-time
// passwords, base32 secrets and otpauth:// key URIs.
//
// The package is pure: no I/O, no logging, no global state. Time is always
// a parameter, so callers (and tests) decide what "now" is.
package otp
