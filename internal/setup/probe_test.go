package setup

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// serveSSH accepts connections on a loopback port with cfg until the test
// ends and returns the address.
func serveSSH(t *testing.T, cfg *ssh.ServerConfig) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if sc, _, _, err := ssh.NewServerConn(c, cfg); err == nil {
					sc.Close()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestOfferedMethods(t *testing.T) {
	errNo := errors.New("no")
	pubkey := func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, errNo }
	password := func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return nil, errNo }
	kbdint := func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		return nil, errNo
	}
	tests := []struct {
		name  string
		cfg   *ssh.ServerConfig
		want  []string
		alone []string
	}{
		{"a key only", &ssh.ServerConfig{PublicKeyCallback: pubkey}, []string{"publickey"}, nil},
		{"a key or a password", &ssh.ServerConfig{PublicKeyCallback: pubkey, PasswordCallback: password},
			[]string{"password", "publickey"}, []string{"password"}},
		{"a key or keyboard-interactive", &ssh.ServerConfig{PublicKeyCallback: pubkey, KeyboardInteractiveCallback: kbdint},
			[]string{"publickey", "keyboard-interactive"}, []string{"keyboard-interactive"}},
		{"no authentication at all", &ssh.ServerConfig{NoClientAuth: true}, []string{"none"}, []string{"none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveSSH(t, tt.cfg)
			got, err := OfferedMethods(context.Background(), addr, "alice", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("OfferedMethods = %q, want %q", got, tt.want)
			}
			if alone := FirstFactorAlone(got); !reflect.DeepEqual(alone, tt.alone) {
				t.Errorf("FirstFactorAlone(%q) = %q, want %q", got, alone, tt.alone)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if got, err := OfferedMethods(context.Background(), addr, "alice", 5*time.Second); err == nil {
			t.Errorf("OfferedMethods on a closed port = %q, want an error", got)
		}
	})
}

func TestProbeAddr(t *testing.T) {
	tests := []struct{ listen, want string }{
		{"0.0.0.0:22", "127.0.0.1:22"},
		{"[::]:22", "[::1]:22"},
		{"192.0.2.1:2222", "192.0.2.1:2222"},
		{"[2001:db8::1]:22", "[2001:db8::1]:22"},
	}
	for _, tt := range tests {
		if got, err := ProbeAddr(tt.listen); err != nil || got != tt.want {
			t.Errorf("ProbeAddr(%q) = %q, %v, want %q", tt.listen, got, err, tt.want)
		}
	}
	if _, err := ProbeAddr("22"); err == nil {
		t.Errorf("ProbeAddr(\"22\") gave no error")
	}
}
