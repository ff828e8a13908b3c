//go:build root

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
handshake_timeout = "5s"
max_startups = "5:50:60"
allow_tcp_forwarding = true
permit_open = ["localhost:22", "*:443"]
accept_env = ["LANG"]
banner = "hello"
prompt = "Verification code (6 digits): "

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
	want.HandshakeTimeout = Duration{Duration: 5 * time.Second}
	want.MaxStartups = Startups{Start: 5, Rate: 50, Full: 60}
	want.AllowTCPForwarding = true
	want.PermitOpen = []string{"localhost:22", "*:443"}
	want.AcceptEnv = []string{"LANG"}
	want.Banner = "hello"
	want.Prompt = "Verification code (6 digits): "
	want.Socket = "/run/elsewhere.sock" // daemon.socket
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
}

// TestLoadConfigBareMaxStartups: the bare integer of earlier versions
// still loads, as "N:30:10N" (the default's proportions), and is marked so
// that the server can say so.
func TestLoadConfigBareMaxStartups(t *testing.T) {
	tests := []struct {
		text string
		want Startups
	}{
		{"max_startups = 10", Startups{Start: 10, Rate: 30, Full: 100, Bare: true}},
		{"max_startups = 1", Startups{Start: 1, Rate: 30, Full: 10, Bare: true}},
		{"max_startups = 50000", Startups{Start: 50000, Rate: 30, Full: 100000, Bare: true}},
		{`max_startups = "10:30:100"`, Startups{Start: 10, Rate: 30, Full: 100}},
		{`max_startups = "3:100:3"`, Startups{Start: 3, Rate: 100, Full: 3}},
		{`max_startups = " 4 : 20 : 8 "`, Startups{Start: 4, Rate: 20, Full: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			c, err := LoadConfig(writeFile(t, "[sshd]\n"+tt.text+"\nper_source_max_startups = 1\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.MaxStartups != tt.want {
				t.Errorf("got %+v, want %+v", c.MaxStartups, tt.want)
			}
		})
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
		{name: "unknown key", text: "[daemon]\nx = 1\n\n[sshd]\nlisten = \":22\"\nlisten_adress = \":2\"\n", want: ":6: unknown key \"sshd.listen_adress\""}, //nolint:misspell // a misspelt key is what this case tests
		{name: "unknown subtable", text: "[sshd]\n[sshd.extra]\na = 1\n", want: ":2: unknown table \"sshd.extra\""},
		{name: "dotted unknown key", text: "sshd.bogus = true\n", want: ":1: unknown key \"sshd.bogus\""},
		{name: "wrong type", text: "[sshd]\nmax_startups = true\n", want: `:2: key "sshd.max_startups": expected a string "start:rate:full" such as "10:30:100", got a boolean`},
		{name: "max_startups not a number", text: "[sshd]\nmax_startups = \"ten\"\n", want: `:2: key "sshd.max_startups": invalid value "ten": expected "start:rate:full" such as "10:30:100"`},
		{name: "max_startups two parts", text: "[sshd]\n\nmax_startups = \"10:30\"\n", want: `:3: key "sshd.max_startups": invalid value "10:30": expected "start:rate:full"`},
		{name: "max_startups bad part", text: "[sshd]\nmax_startups = \"10:x:100\"\n", want: `:2: key "sshd.max_startups": invalid value "10:x:100": "x" is not a whole number`},
		{name: "max_startups zero rate", text: "[sshd]\nmax_startups = \"10:0:100\"\n", want: `:2: key "sshd.max_startups": invalid value "10:0:100": rate must be a percentage between 1 and 100, got 0`},
		{name: "max_startups rate over 100", text: "[sshd]\nmax_startups = \"10:101:100\"\n", want: "rate must be a percentage between 1 and 100, got 101"},
		{name: "max_startups full below start", text: "[sshd]\nmax_startups = \"50:30:10\"\n", want: `:2: key "sshd.max_startups": invalid value "50:30:10": full (10) must be at least start (50)`},
		{name: "max_startups zero start", text: "[sshd]\nmax_startups = \"0:30:10\"\n", want: "start must be at least 1, got 0"},
		{name: "max_startups too large", text: "[sshd]\nmax_startups = \"10:30:100001\"\n", want: "full must be at most 100000, got 100001"},
		{name: "max_startups bare zero", text: "[sshd]\nmax_startups = 0\n", want: `:2: key "sshd.max_startups": must be between 1 and 100000, got 0`},
		{name: "zero handshake timeout", text: "[sshd]\nhandshake_timeout = \"0s\"\n", want: "sshd.handshake_timeout must be between 1s and 1h"},
		{name: "bad duration", text: "[sshd]\n\nlogin_grace_time = \"soon\"\n", want: ":3:"},
		{name: "syntax", text: "[sshd\n", want: "to end table name"},
		{name: "zero grace", text: "[sshd]\nlogin_grace_time = \"0s\"\n", want: "sshd.login_grace_time"},
		{name: "bad host key type", text: "[sshd]\nhost_key_types = [\"dsa\"]\n", want: "sshd.host_key_types"},
		{name: "relative key dir", text: "[sshd]\nhost_key_dir = \"keys\"\n", want: "sshd.host_key_dir"},
		{name: "bad permit_open", text: "[sshd]\npermit_open = [\"host\"]\n", want: "sshd.permit_open"},
		{name: "bad accept_env", text: "[sshd]\naccept_env = [\"A=B\"]\n", want: "sshd.accept_env"},
		{name: "per-source above global", text: "[sshd]\nmax_startups = \"2:30:2\"\nper_source_max_startups = 3\n", want: "sshd.per_source_max_startups must be 0 to the full value of max_startups (2)"},
		{name: "bad listen", text: "[sshd]\nlisten = \"nowhere\"\n", want: "sshd.listen"},
		{name: "bad log level", text: "[sshd]\nlog_level = \"loud\"\n", want: "sshd.log_level"},
		{name: "relative sftp server", text: "[sshd]\nsftp_server = \"sftp-server\"\n", want: "sshd.sftp_server"},
		{name: "a prompt with a newline", text: "[sshd]\nprompt = \"Code:\\nnext\"\n", want: "sshd.prompt: contains the control character U+000A; write the text on one line, without escapes"},
		{name: "a prompt with an escape sequence", text: "[sshd]\nprompt = \"\\u001b[31mCode: \"\n", want: "sshd.prompt: contains the control character U+001B"},
		{name: "a prompt with a C1 control", text: "[sshd]\nprompt = \"Code\\u009b: \"\n", want: "sshd.prompt: contains the control character U+009B"},
		{name: "an overlong prompt", text: "[sshd]\nprompt = \"" + strings.Repeat("a", 257) + "\"\n", want: "sshd.prompt: is 257 bytes long, at most 256"},
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
