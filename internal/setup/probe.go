package setup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// errProbeDone ends a probe once sshd has named its methods.
var errProbeDone = errors.New("setup: probe done")

// OfferedMethods connects to the sshd at addr as user and returns the
// authentication methods sshd offers first: its answer to the "none"
// method. No credential is sent and no method is tried, so the host key
// is not checked either.
func OfferedMethods(ctx context.Context, addr, user string, timeout time.Duration) ([]string, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var offered []string
	answered := false
	cfg := &ssh.ClientConfig{
		User: user,
		// Only the list of methods is read; nothing secret is sent.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // only the offered methods are read; nothing secret is sent
		AuthCallback: func(c *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			offered, answered = slices.Clone(c.AllowedMethods), true
			return nil, errProbeDone
		},
		Timeout: timeout,
	}
	c, _, _, err := ssh.NewClientConn(conn, addr, cfg)
	if err == nil {
		c.Close()
		return []string{"none"}, nil // in without any credential
	}
	if !answered {
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	return offered, nil
}

// FirstFactorAlone returns the methods among offered that would log in
// without a public key first: password and keyboard-interactive (which,
// as the first method, runs the PAM stack on its own), and none.
func FirstFactorAlone(offered []string) []string {
	var out []string
	for _, m := range offered {
		switch m {
		case "password", "keyboard-interactive", "none":
			out = append(out, m)
		}
	}
	return out
}

// ProbeAddr turns one of `sshd -T`'s listenaddress values ("0.0.0.0:22",
// "[::]:22", "192.0.2.1:2222") into an address to connect to: a wildcard
// becomes the loopback address of its family.
func ProbeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listenaddress %q: %w", listen, err)
	}
	switch host {
	case "0.0.0.0", "":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
