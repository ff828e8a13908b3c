// Package sshd implements otpgate-sshd, a standalone SSH server built on
// golang.org/x/crypto/ssh that asks for a TOTP code after a public key.
//
// A client first proves a key listed in the user's ~/.ssh/authorized_keys
// (read with StrictModes-style checks). The server then opens otpgated's
// login dialogue and relays it with keyboard-interactive: otpgated's
// prompts and words become challenges, the answers go back as typed, and
// otpgated's verdict decides. Only a key the client has proven is ever
// used for a decision (CVE-2024-45337), and every failure to reach the
// daemon or to understand its answer denies the login, after the one text
// the server owns (protocol.UnavailableText).
//
// Authenticated users get sessions (shell, exec, pty, env, signals, the
// system's sftp-server) running as themselves, and optionally direct-tcpip
// forwarding (ssh -J, -W, -L) within the configured policy.
//
// The server never loads PAM modules: it runs in a Go runtime, and loading
// the otpgate PAM module (another Go runtime) into it is unsafe; the daemon
// is asked directly instead. See docs/sshd.md.
package sshd
