package sshd

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// dialTimeout bounds connecting a forwarded channel's destination.
const dialTimeout = 10 * time.Second

// directTCPIPMsg is the extra data of a "direct-tcpip" channel (RFC 4254
// 7.2).
type directTCPIPMsg struct {
	DestAddr string
	DestPort uint32
	OrigAddr string
	OrigPort uint32
}

// forwardAllowed applies the policy to a destination before anything is
// dialed: allow_tcp_forwarding, the key's no-port-forwarding/restrict, the
// server's permit_open and the key's permitopen= must all allow it.
func (u *userConn) forwardAllowed(host string, port uint32) bool {
	if !u.cfg.AllowTCPForwarding || u.perms.Extensions[extNoForward] != "" {
		return false
	}
	if host == "" || port == 0 || port > 65535 || strings.ContainsAny(host, "\x00/ ") {
		return false
	}
	if !permitted(u.cfg.PermitOpen, host, port) {
		return false
	}
	if keyList, ok := u.perms.Extensions[extPermitOpen]; ok && !permitted(strings.Split(keyList, "\n"), host, port) {
		return false
	}
	return true
}

// handleDirectTCPIP serves ssh -J, -W and -L: once the policy allows the
// destination, it connects to it as the user (see dialAsUser) and copies
// both ways.
func (u *userConn) handleDirectTCPIP(nch ssh.NewChannel) {
	var m directTCPIPMsg
	if err := ssh.Unmarshal(nch.ExtraData(), &m); err != nil {
		nch.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	log := u.log.With("dest", net.JoinHostPort(m.DestAddr, strconv.FormatUint(uint64(m.DestPort), 10)))
	if !u.forwardAllowed(m.DestAddr, m.DestPort) {
		log.Info("forwarding refused")
		nch.Reject(ssh.Prohibited, "administratively prohibited")
		return
	}
	cred, err := u.acct.credential()
	if err != nil {
		log.Error("forwarding refused: user credentials", "err", err)
		nch.Reject(ssh.ConnectionFailed, "connect failed")
		return
	}
	dst, err := u.dial(context.Background(), cred, net.JoinHostPort(m.DestAddr, strconv.FormatUint(uint64(m.DestPort), 10)))
	if err != nil {
		log.Info("forwarding failed", "err", err)
		nch.Reject(ssh.ConnectionFailed, "connect failed")
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		dst.Close()
		return
	}
	log.Info("forwarding opened")
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(dst, ch)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(ch, dst)
		ch.CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
	ch.Close()
	dst.Close()
	log.Info("forwarding closed")
}
