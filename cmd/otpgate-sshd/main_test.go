package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/testutil"
)

func TestRunCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	testutil.Must(t, os.WriteFile(good, []byte("[daemon]\nsocket = \"/run/x.sock\"\n[sshd]\nlisten = \"127.0.0.1:2200\"\n"), 0o644))
	testutil.Must(t, os.WriteFile(bad, []byte("[sshd]\nlisten = \"127.0.0.1:2200\"\nbogus = 1\n"), 0o644))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "valid file", args: []string{"-config", good, "-check-config"}, code: 0, want: "is valid"},
		{name: "unknown key", args: []string{"-config", bad, "-check-config"}, code: 1, want: bad + ":3: unknown key \"sshd.bogus\""},
		{name: "missing explicit file", args: []string{"-config", filepath.Join(dir, "none.toml"), "-check-config"}, code: 1, want: "no such file"},
		{name: "stray argument", args: []string{"extra"}, code: 2, want: "usage:"},
		{name: "unknown flag", args: []string{"-frobnicate"}, code: 2, want: "flag provided but not defined"},
		{name: "help", args: []string{"-help"}, code: 0, want: "usage:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tt.args, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
		})
	}
}
