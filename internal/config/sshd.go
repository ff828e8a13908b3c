package config

import "time"

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
	// MaxStartups caps concurrent unauthenticated connections; more are
	// closed at once (reloadable).
	MaxStartups int `toml:"max_startups"`
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
	// LogLevel is "debug", "info", "warn" or "error" (reloadable).
	LogLevel string `toml:"log_level"`
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
		MaxStartups:          10,
		PerSourceMaxStartups: 3,
		ClientAliveInterval:  Duration{15 * time.Second},
		ClientAliveCountMax:  3,
		MaxSessions:          10,
		PermitOpen:           []string{"any"},
		AcceptEnv:            []string{"LANG", "LC_*"},
		SFTPServer:           "/usr/lib/openssh/sftp-server",
		ShutdownTimeout:      Duration{10 * time.Second},
		LogLevel:             "info",
	}
}
