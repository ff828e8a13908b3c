// Package daemon is otpgated: the only process that holds users' TOTP
// secrets and their replay and rate-limit state.
//
// It answers requests from the PAM module, otpgate-sshd and the otpgate CLI
// on a Unix socket, authorizes each by the peer's credentials (SO_PEERCRED),
// decides by policy whether a code is needed, verifies codes with replay
// protection and rate limiting in one durable store transaction, and writes
// one audit line per decision. Every decision fails closed: an internal
// error never admits anyone.
package daemon
