package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SSHD is the [sshd] section, read by otpgate-sshd (package sshd, which
// also validates it: otpgated ignores the section). otpgate-sshd talks to
// otpgated on daemon.socket.
//
// Settings marked "reloadable" take effect for new connections after
// SIGHUP; the others need a restart.
type SSHD struct {
	// Listen is the TCP address to listen on.
	Listen string `toml:"listen"`
	// HostKeyDir holds the host keys (ssh_host_<type>_key), created on first
	// start. It must be a directory owned by root and not writable by
	// others; it is created 0700.
	HostKeyDir string `toml:"host_key_dir"`
	// HostKeyTypes lists the host key types to use: "ed25519", "ecdsa"
	// (P-256) and "rsa" (3072 bits, SHA-2 signatures only).
	HostKeyTypes []string `toml:"host_key_types"`
	// Socket is otpgated's socket, copied from daemon.socket when the file
	// is loaded (reloadable).
	Socket string `toml:"-"`
	// LoginGraceTime closes connections that have not authenticated in
	// time (reloadable).
	LoginGraceTime Duration `toml:"login_grace_time"`
	// MaxAuthTries is the number of failed authentication attempts allowed
	// per connection (reloadable).
	MaxAuthTries int `toml:"max_auth_tries"`
	// HandshakeTimeout closes connections that have not sent their
	// version string and finished the first key exchange in time; it is
	// shorter than LoginGraceTime so that idle connections give their
	// unauthenticated slot back quickly (reloadable).
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	// MaxStartups drops new connections at random, with a probability
	// that grows with the number of unauthenticated connections, as
	// OpenSSH's MaxStartups does (reloadable).
	MaxStartups Startups `toml:"max_startups"`
	// PerSourceMaxStartups caps concurrent unauthenticated connections from
	// one IPv4 address or IPv6 /64; 0 means no per-source cap (reloadable).
	PerSourceMaxStartups int `toml:"per_source_max_startups"`
	// ClientAliveInterval is how often an authenticated client is probed;
	// 0 disables probes (reloadable).
	ClientAliveInterval Duration `toml:"client_alive_interval"`
	// ClientAliveCountMax unanswered probes in a row close the connection
	// (reloadable).
	ClientAliveCountMax int `toml:"client_alive_count_max"`
	// MaxSessions caps the open session channels of one connection
	// (reloadable).
	MaxSessions int `toml:"max_sessions"`
	// PermitRootLogin allows logins as uid 0 (reloadable).
	PermitRootLogin bool `toml:"permit_root_login"`
	// AllowTCPForwarding allows direct-tcpip channels (ssh -J, -W, -L)
	// (reloadable). Remote forwarding (-R) and Unix-socket forwarding are
	// never allowed.
	AllowTCPForwarding bool `toml:"allow_tcp_forwarding"`
	// PermitOpen lists the destinations forwarding may reach, as
	// "host:port" with "*" allowed for either part; "any" allows all
	// (reloadable).
	PermitOpen []string `toml:"permit_open"`
	// AcceptEnv lists the environment variables a client may set; "*"
	// and "?" are wildcards (reloadable).
	AcceptEnv []string `toml:"accept_env"`
	// SFTPServer is the sftp-server binary run as the user for the "sftp"
	// subsystem; empty disables sftp (reloadable).
	SFTPServer string `toml:"sftp_server"`
	// ShutdownTimeout is how long SIGTERM waits for sessions to finish
	// before closing them (reloadable).
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// Banner is sent to clients before authentication; empty sends none
	// (reloadable).
	Banner string `toml:"banner"`
	// Prompt replaces the text of otpgated's code prompt for logins
	// through otpgate-sshd; empty keeps otpgated's (reloadable). At most
	// 256 bytes, no control characters.
	Prompt string `toml:"prompt"`
	// LogLevel is "debug", "info", "warn" or "error" (reloadable).
	LogLevel string `toml:"log_level"`
	// UsePAM runs the PAM service PAMService for every login: its account
	// stack after authentication (a refusal ends the connection) and its
	// session stack around every shell, command and subsystem, whose
	// environment the process receives. Authentication never goes through
	// PAM (otpgated checks the code) (reloadable).
	UsePAM bool `toml:"use_pam"`
	// PAMService is the service name, the file in /etc/pam.d (reloadable).
	PAMService string `toml:"pam_service"`
	// AllowAgentForwarding lets clients forward their ssh-agent (ssh -A),
	// except with keys whose authorized_keys line says
	// no-agent-forwarding or restrict (reloadable).
	AllowAgentForwarding bool `toml:"allow_agent_forwarding"`
}

// defaultSSHD is the [sshd] section's defaults.
func defaultSSHD(socket string) SSHD {
	return SSHD{
		Listen:               "0.0.0.0:2222",
		HostKeyDir:           "/etc/otpgate/sshd",
		HostKeyTypes:         []string{"ed25519"},
		Socket:               socket,
		LoginGraceTime:       Duration{30 * time.Second},
		MaxAuthTries:         6,
		HandshakeTimeout:     Duration{10 * time.Second},
		MaxStartups:          Startups{Start: 10, Rate: 30, Full: 100},
		PerSourceMaxStartups: 3,
		ClientAliveInterval:  Duration{15 * time.Second},
		ClientAliveCountMax:  3,
		MaxSessions:          10,
		PermitOpen:           []string{"any"},
		AcceptEnv:            []string{"LANG", "LC_*"},
		SFTPServer:           "/usr/lib/openssh/sftp-server",
		ShutdownTimeout:      Duration{10 * time.Second},
		LogLevel:             "info",
		UsePAM:               true,
		PAMService:           "otpgate-sshd",
	}
}

// MaxStartupsLimit is the largest number of unauthenticated connections
// sshd.max_startups may allow.
const MaxStartupsLimit = 100000

// Startups is sshd.max_startups, written "start:rate:full" as OpenSSH's
// MaxStartups: below start unauthenticated connections, every new
// connection is accepted; from start on, a new one is dropped with a
// probability of rate percent, rising linearly to 100% at full.
type Startups struct {
	Start int
	Rate  int
	Full  int
	// Bare is set when the file gave a bare integer N, the form of earlier
	// versions, which is read as "N:30:10N" (the default's proportions;
	// full at most MaxStartupsLimit).
	Bare bool
}

// String writes s as the file does: "10:30:100".
func (s Startups) String() string { return fmt.Sprintf("%d:%d:%d", s.Start, s.Rate, s.Full) }

// MarshalText writes s as "start:rate:full".
func (s Startups) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalTOML reads "start:rate:full" or a bare integer.
func (s *Startups) UnmarshalTOML(v any) error {
	var err error
	switch v := v.(type) {
	case string:
		*s, err = ParseStartups(v)
	case int64:
		*s, err = startupsFromInt(v)
	default:
		err = fmt.Errorf("expected %s, got %s", kindStartups.expected(), goTypeName(v))
	}
	return err
}

// ParseStartups parses "start:rate:full" and checks that 1 <= start <=
// full <= MaxStartupsLimit and 1 <= rate <= 100.
func ParseStartups(v string) (Startups, error) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return Startups{}, fmt.Errorf(`invalid value %q: expected "start:rate:full" such as "10:30:100"`, v)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return Startups{}, fmt.Errorf(`invalid value %q: %q is not a whole number; expected "start:rate:full" such as "10:30:100"`, v, p)
		}
		n[i] = x
	}
	s := Startups{Start: n[0], Rate: n[1], Full: n[2]}
	if err := s.Check(); err != nil {
		return Startups{}, fmt.Errorf("invalid value %q: %w", v, err)
	}
	return s, nil
}

// startupsFromInt reads the bare integer form.
func startupsFromInt(n int64) (Startups, error) {
	if n < 1 || n > MaxStartupsLimit {
		return Startups{}, fmt.Errorf(`must be between 1 and %d, got %d (or better "start:rate:full" such as "10:30:100")`, MaxStartupsLimit, n)
	}
	return Startups{Start: int(n), Rate: 30, Full: int(min(10*n, MaxStartupsLimit)), Bare: true}, nil
}

// Check reports what is wrong with s, or nil.
func (s Startups) Check() error {
	switch {
	case s.Start < 1:
		return fmt.Errorf("start must be at least 1, got %d", s.Start)
	case s.Rate < 1 || s.Rate > 100:
		return fmt.Errorf("rate must be a percentage between 1 and 100, got %d", s.Rate)
	case s.Full < s.Start:
		return fmt.Errorf("full (%d) must be at least start (%d)", s.Full, s.Start)
	case s.Full > MaxStartupsLimit:
		return fmt.Errorf("full must be at most %d, got %d", MaxStartupsLimit, s.Full)
	}
	return nil
}
