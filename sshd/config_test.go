package sshd

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := Validate(&c); err != nil {
		t.Fatal(err)
	}
	if c.AllowTCPForwarding || c.PermitRootLogin {
		t.Error("forwarding and root login must be off by default")
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	p := writeFile(t, `issuer = "x"
[daemon]
socket = "/run/elsewhere.sock"

[sshd]
listen = "127.0.0.1:2200"
login_grace_time = "10s"
max_startups = 20
allow_tcp_forwarding = true
permit_open = ["localhost:22", "*:443"]
accept_env = ["LANG"]
banner = "hello"

[policy]
default = "required"
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Listen = "127.0.0.1:2200"
	want.LoginGraceTime = Duration{Duration: 10 * time.Second}
	want.MaxStartups = 20
	want.AllowTCPForwarding = true
	want.PermitOpen = []string{"localhost:22", "*:443"}
	want.AcceptEnv = []string{"LANG"}
	want.Banner = "hello"
	want.Socket = "/run/elsewhere.sock" // daemon.socket
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
}

func TestLoadConfigWithoutSection(t *testing.T) {
	c, err := LoadConfig(writeFile(t, "[totp]\ndigits = 6\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*c, DefaultConfig()) {
		t.Errorf("got %+v, want the defaults", *c)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // substring after the file name
	}{
		{name: "unknown key", text: "[daemon]\nx = 1\n\n[sshd]\nlisten = \":22\"\nlisten_adress = \":2\"\n", want: ":6: unknown key \"sshd.listen_adress\""},
		{name: "unknown subtable", text: "[sshd]\n[sshd.extra]\na = 1\n", want: ":2: unknown table \"sshd.extra\""},
		{name: "dotted unknown key", text: "sshd.bogus = true\n", want: ":1: unknown key \"sshd.bogus\""},
		{name: "wrong type", text: "[sshd]\nmax_startups = \"ten\"\n", want: ":2: key \"sshd.max_startups\": expected an integer"},
		{name: "bad duration", text: "[sshd]\n\nlogin_grace_time = \"soon\"\n", want: ":3:"},
		{name: "syntax", text: "[sshd\n", want: "to end table name"},
		{name: "zero grace", text: "[sshd]\nlogin_grace_time = \"0s\"\n", want: "sshd.login_grace_time"},
		{name: "bad host key type", text: "[sshd]\nhost_key_types = [\"dsa\"]\n", want: "sshd.host_key_types"},
		{name: "relative key dir", text: "[sshd]\nhost_key_dir = \"keys\"\n", want: "sshd.host_key_dir"},
		{name: "bad permit_open", text: "[sshd]\npermit_open = [\"host\"]\n", want: "sshd.permit_open"},
		{name: "bad accept_env", text: "[sshd]\naccept_env = [\"A=B\"]\n", want: "sshd.accept_env"},
		{name: "per-source above global", text: "[sshd]\nmax_startups = 2\nper_source_max_startups = 3\n", want: "sshd.per_source_max_startups"},
		{name: "bad listen", text: "[sshd]\nlisten = \"nowhere\"\n", want: "sshd.listen"},
		{name: "bad log level", text: "[sshd]\nlog_level = \"loud\"\n", want: "sshd.log_level"},
		{name: "relative sftp server", text: "[sshd]\nsftp_server = \"sftp-server\"\n", want: "sshd.sftp_server"},
		{name: "sshd not a table", text: "sshd = 1\n", want: "sshd"},
		{name: "unknown key in another section", text: "[daemon]\nsockett = \"/x\"\n", want: ":2: unknown key \"daemon.sockett\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.text)
			_, err := LoadConfig(p)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), p) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q after the file name", err, tt.want)
			}
		})
	}
}

func TestPermitOpenAndAcceptEnv(t *testing.T) {
	tests := []struct {
		entries []string
		host    string
		port    uint32
		want    bool
	}{
		{[]string{"any"}, "example.org", 22, true},
		{[]string{"localhost:22"}, "LOCALHOST", 22, true},
		{[]string{"localhost:22"}, "localhost", 23, false},
		{[]string{"*:443"}, "10.0.0.1", 443, true},
		{[]string{"db:*"}, "db", 5432, true},
		{[]string{"[::1]:22"}, "::1", 22, true},
		{nil, "localhost", 22, false},
	}
	for _, tt := range tests {
		if got := permitted(tt.entries, tt.host, tt.port); got != tt.want {
			t.Errorf("permitted(%q, %s:%d) = %v", tt.entries, tt.host, tt.port, got)
		}
	}
	for name, want := range map[string]bool{"LANG": true, "LC_ALL": true, "LC_": true, "LD_PRELOAD": false, "LANGUAGE": false} {
		if got := envAccepted([]string{"LANG", "LC_*"}, name); got != want {
			t.Errorf("envAccepted(%q) = %v", name, got)
		}
	}
}
