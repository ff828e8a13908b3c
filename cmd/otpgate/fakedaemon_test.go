package main

import (
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
)

// fakeDaemon is a stand-in for otpgated on a Unix socket in a temporary
// directory: it answers each request with handle and records what it was
// sent. Tests run as root, so the client's check that root serves the
// socket passes.
type fakeDaemon struct {
	socket string
	handle func(*protocol.Request) *protocol.Response

	mu   sync.Mutex
	reqs []protocol.Request
}

func newFakeDaemon(t *testing.T, handle func(*protocol.Request) *protocol.Response) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{socket: filepath.Join(t.TempDir(), "otpgated.sock"), handle: handle}
	ln, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatalf("fake otpgated: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			go d.serve(conn)
		}
	}()
	return d
}

func (d *fakeDaemon) serve(conn net.Conn) {
	defer conn.Close()
	frame, err := protocol.ReadFrame(conn)
	if err != nil {
		return
	}
	req, err := protocol.DecodeRequest(frame)
	var resp *protocol.Response
	if err != nil {
		resp = &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: protocol.ErrBadRequest, Message: "invalid request: " + err.Error()}}}
	} else {
		d.mu.Lock()
		d.reqs = append(d.reqs, *req)
		d.mu.Unlock()
		resp = d.handle(req)
	}
	resp.V = protocol.Version
	if req != nil {
		resp.ID = req.ID
	}
	b, err := protocol.EncodeResponse(resp)
	if err != nil {
		return
	}
	_ = protocol.WriteFrame(conn, b) // the client under test sees a failed write as a lost daemon
}

// requests returns the requests received so far.
func (d *fakeDaemon) requests() []protocol.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]protocol.Request(nil), d.reqs...)
}

// codeError is otpgated's answer to a wrong or unreadable code.
func codeError(msg string) *protocol.Response {
	return &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: protocol.ErrInvalidCode, Message: msg}}}
}
