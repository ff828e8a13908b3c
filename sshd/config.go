package sshd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/otpgate/otpgate/internal/protocol"
)

// DefaultConfigPath is the shared otpgate configuration file; otpgate-sshd
// reads only its [sshd] section.
const DefaultConfigPath = "/etc/otpgate/config.toml"

// Config is the [sshd] section of the otpgate configuration file.
//
// Settings marked "reloadable" take effect for new connections after
// SIGHUP; the others need a restart.
type Config struct {
	// Listen is the TCP address to listen on.
	Listen string `toml:"listen"`
	// HostKeyDir holds the host keys (ssh_host_<type>_key), created on first
	// start. It must be a directory owned by root and not writable by
	// others; it is created 0700.
	HostKeyDir string `toml:"host_key_dir"`
	// HostKeyTypes lists the host key types to use: "ed25519", "ecdsa"
	// (P-256) and "rsa" (3072 bits, SHA-2 signatures only).
	HostKeyTypes []string `toml:"host_key_types"`
	// Socket is otpgated's socket (reloadable).
	Socket string `toml:"socket"`
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

// Duration is a time.Duration written in TOML as a string such as "30s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		Listen:               "0.0.0.0:2222",
		HostKeyDir:           "/etc/otpgate/sshd",
		HostKeyTypes:         []string{"ed25519"},
		Socket:               protocol.DefaultSocket,
		LoginGraceTime:       Duration{30 * time.Second},
		MaxAuthTries:         6,
		MaxStartups:          10,
		PerSourceMaxStartups: 3,
		ClientAliveInterval:  Duration{15 * time.Second},
		ClientAliveCountMax:  3,
		MaxSessions:          10,
		PermitRootLogin:      false,
		AllowTCPForwarding:   false,
		PermitOpen:           []string{"any"},
		AcceptEnv:            []string{"LANG", "LC_*"},
		SFTPServer:           "/usr/lib/openssh/sftp-server",
		ShutdownTimeout:      Duration{10 * time.Second},
		LogLevel:             "info",
	}
}

// Validate reports the first impossible setting, naming its key.
func (c *Config) Validate() error {
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
	if c.MaxStartups < 1 || c.MaxStartups > 100000 {
		return errors.New("sshd.max_startups must be 1 to 100000")
	}
	if c.PerSourceMaxStartups < 0 || c.PerSourceMaxStartups > c.MaxStartups {
		return errors.New("sshd.per_source_max_startups must be 0 to max_startups")
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
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		return fmt.Errorf("sshd.log_level: %w", err)
	}
	return nil
}

var decodeLineRE = regexp.MustCompile(`^toml: line (\d+) (.*)$`)

// fileSections is what LoadConfig decodes: only [sshd]; every other
// section belongs to other programs and is left alone.
type fileSections struct {
	Sshd Config `toml:"sshd"`
}

// LoadConfig reads the [sshd] section of the otpgate configuration file at
// file, on top of DefaultConfig, and validates it. Other sections are
// ignored, but unknown keys inside [sshd] are errors ("FILE:LINE: unknown
// key sshd.x"). A missing [sshd] section yields the defaults.
func LoadConfig(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("sshd: read config: %w", err)
	}
	return parseConfig(file, data)
}

func parseConfig(file string, data []byte) (*Config, error) {
	fs := fileSections{Sshd: DefaultConfig()}
	md, err := toml.Decode(string(data), &fs)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", file, pe.Position.Line, pe.Message)
		}
		// Type errors read "toml: line N (last key "k"): ...".
		if m := decodeLineRE.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", file, m[1], m[2])
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if t := md.Type("sshd"); t != "" && t != "Hash" {
		return nil, fmt.Errorf("%s: sshd must be a table", file)
	}
	for _, k := range md.Undecoded() {
		if len(k) < 2 || k[0] != "sshd" {
			continue
		}
		name := k.String()
		if line := keyLine(data, k); line > 0 {
			return nil, fmt.Errorf("%s:%d: unknown key %s", file, line, name)
		}
		return nil, fmt.Errorf("%s: unknown key %s", file, name)
	}
	c := fs.Sshd
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &c, nil
}

// keyLine finds the line defining key (["sshd", "x", ...]) by scanning the
// file: a "x =" line inside [sshd], a [sshd.x] table header, or a dotted
// "sshd.x =" at the top level. It returns 0 when it cannot tell.
func keyLine(data []byte, key toml.Key) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	table := ""
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			h := strings.Trim(line, "[] \t")
			if i := strings.IndexByte(h, '#'); i >= 0 {
				h = strings.Trim(h[:i], "[] \t")
			}
			table = strings.ReplaceAll(h, " ", "")
			if table == "sshd."+key[1] {
				return n
			}
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			continue
		}
		lhs := strings.ReplaceAll(strings.TrimSpace(line[:eq]), " ", "")
		lhs = strings.Trim(lhs, `"`)
		full := lhs
		if table != "" {
			full = table + "." + lhs
		}
		if full == "sshd."+key[1] || strings.HasPrefix(full, "sshd."+key[1]+".") {
			return n
		}
	}
	return 0
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
