package sshd

import (
	"errors"
	"fmt"
	"net"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/protocol"
)

// DefaultConfigPath is the shared otpgate configuration file; otpgate-sshd
// reads only its [sshd] section.
const DefaultConfigPath = "/etc/otpgate/config.toml"

// Config is the [sshd] section of the otpgate configuration file, defined
// with the rest of the file in package config so that one strict loader
// knows every key. Settings marked "reloadable" there take effect for new
// connections after SIGHUP; the others need a restart.
type Config = config.SSHD

// Startups is sshd.max_startups, "start:rate:full".
type Startups = config.Startups

// Duration is a time.Duration written in TOML as a string such as "30s".
type Duration = config.Duration

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return config.Default().SSHD
}

// Validate reports the first impossible setting of the [sshd] section,
// naming its key. (package config checks the other sections.)
func Validate(c *Config) error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("sshd.listen: %w", err)
	}
	if !filepath.IsAbs(c.HostKeyDir) {
		return fmt.Errorf("sshd.host_key_dir must be an absolute path")
	}
	if len(c.HostKeyTypes) == 0 {
		return errors.New("sshd.host_key_types must name at least one type")
	}
	seen := map[string]bool{}
	for _, t := range c.HostKeyTypes {
		if _, ok := hostKeyGenerators[t]; !ok {
			return fmt.Errorf("sshd.host_key_types: unknown type %q (want ed25519, ecdsa or rsa)", t)
		}
		if seen[t] {
			return fmt.Errorf("sshd.host_key_types: %q listed twice", t)
		}
		seen[t] = true
	}
	if !filepath.IsAbs(c.Socket) {
		return errors.New("sshd.socket must be an absolute path")
	}
	if c.LoginGraceTime.Duration <= 0 || c.LoginGraceTime.Duration > time.Hour {
		return errors.New("sshd.login_grace_time must be between 1s and 1h")
	}
	if c.MaxAuthTries < 1 || c.MaxAuthTries > 100 {
		return errors.New("sshd.max_auth_tries must be 1 to 100")
	}
	if c.HandshakeTimeout.Duration < time.Second || c.HandshakeTimeout.Duration > time.Hour {
		return errors.New("sshd.handshake_timeout must be between 1s and 1h")
	}
	if err := c.MaxStartups.Check(); err != nil {
		return fmt.Errorf("sshd.max_startups %q: %w", c.MaxStartups, err)
	}
	if c.PerSourceMaxStartups < 0 || c.PerSourceMaxStartups > c.MaxStartups.Full {
		return fmt.Errorf("sshd.per_source_max_startups must be 0 to the full value of max_startups (%d)", c.MaxStartups.Full)
	}
	if c.ClientAliveInterval.Duration < 0 {
		return errors.New("sshd.client_alive_interval must not be negative")
	}
	if c.ClientAliveCountMax < 1 {
		return errors.New("sshd.client_alive_count_max must be at least 1")
	}
	if c.MaxSessions < 1 || c.MaxSessions > 1000 {
		return errors.New("sshd.max_sessions must be 1 to 1000")
	}
	for _, p := range c.PermitOpen {
		if _, err := parsePermitOpen(p); err != nil {
			return fmt.Errorf("sshd.permit_open: %w", err)
		}
	}
	for _, p := range c.AcceptEnv {
		if _, err := path.Match(p, ""); err != nil || p == "" || strings.ContainsAny(p, "=[]\\") {
			return fmt.Errorf("sshd.accept_env: bad pattern %q", p)
		}
	}
	if c.SFTPServer != "" && !filepath.IsAbs(c.SFTPServer) {
		return errors.New("sshd.sftp_server must be an absolute path or empty")
	}
	if c.ShutdownTimeout.Duration < 0 {
		return errors.New("sshd.shutdown_timeout must not be negative")
	}
	if err := checkPrompt(c.Prompt); err != nil {
		return fmt.Errorf("sshd.prompt: %w", err)
	}
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		return fmt.Errorf("sshd.log_level: %w", err)
	}
	if c.UsePAM && !validPAMService(c.PAMService) {
		return fmt.Errorf("sshd.pam_service %q: want the name of a file in /etc/pam.d (letters, digits, '.', '_', '-')", c.PAMService)
	}
	return nil
}

// checkPrompt refuses what otpgated would refuse in a login's prompt text,
// so that the mistake shows when the file is loaded, not at every login.
func checkPrompt(p string) error {
	if len(p) > protocol.MaxPromptLen {
		return fmt.Errorf("is %d bytes long, at most %d", len(p), protocol.MaxPromptLen)
	}
	if !utf8.ValidString(p) {
		return errors.New("is not valid UTF-8")
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 {
			return fmt.Errorf("contains the control character %U; write the text on one line, without escapes", c)
		}
	}
	return nil
}

// LoadConfig reads the otpgate configuration file strictly (every section:
// unknown keys anywhere are "FILE:LINE: unknown key" errors), validates the
// [sshd] section, and returns it. A missing [sshd] section yields the
// defaults; sshd.Socket is the file's daemon.socket.
func LoadConfig(file string) (*Config, error) {
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	c := cfg.SSHD
	if err := Validate(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &c, nil
}

// permitOpen is one parsed permit_open entry; "" means any.
type permitOpen struct {
	host string
	port string
}

func parsePermitOpen(s string) (permitOpen, error) {
	if s == "any" {
		return permitOpen{host: "*", port: "*"}, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return permitOpen{}, fmt.Errorf("bad destination %q: want host:port, host:*, *:port or any", s)
	}
	if h == "" {
		return permitOpen{}, fmt.Errorf("bad destination %q: empty host", s)
	}
	if p != "*" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return permitOpen{}, fmt.Errorf("bad destination %q: bad port", s)
		}
	}
	return permitOpen{host: strings.ToLower(h), port: p}, nil
}

// allows reports whether host:port matches the entry. Host names are
// compared as requested, case-insensitively, not after resolution (as
// OpenSSH's PermitOpen does).
func (p permitOpen) allows(host string, port uint32) bool {
	if p.host != "*" && p.host != strings.ToLower(host) {
		return false
	}
	return p.port == "*" || p.port == strconv.FormatUint(uint64(port), 10)
}

// permitted reports whether host:port matches one of the entries.
func permitted(entries []string, host string, port uint32) bool {
	for _, e := range entries {
		p, err := parsePermitOpen(e)
		if err == nil && p.allows(host, port) {
			return true
		}
	}
	return false
}

// envAccepted reports whether a client may set the variable name.
func envAccepted(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
	}
	return false
}

// validPAMService reports whether name can be a PAM service: a plain file
// name, since libpam reads /etc/pam.d/NAME.
func validPAMService(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
