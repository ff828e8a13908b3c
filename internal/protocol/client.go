package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
)

// DefaultTimeout bounds one request's round trip unless the caller's
// context is shorter. A login must never hang on the daemon.
const DefaultTimeout = 10 * time.Second

// ErrUnavailable wraps every failure to reach the daemon (no socket,
// refused, timed out, connection dropped). Callers fail closed on it.
var ErrUnavailable = errors.New("otpgated is not reachable")

// ErrNoUsableStep marks, besides ErrUnavailable, a dialogue reply that was
// read but holds no valid step (none, an unknown verdict, prompts and a
// verdict at once): otpgated answered, the answer is not understood.
var ErrNoUsableStep = errors.New("no usable step")

// Client talks to otpgated. The zero value uses DefaultSocket and
// DefaultTimeout. A Client opens one connection per request and closes it
// before returning, so no daemon socket is ever inherited by a child
// process.
type Client struct {
	// Socket is the daemon's socket path; empty means DefaultSocket.
	Socket string
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
}

// SocketFromEnv returns flagValue if set, else $OTPGATE_SOCKET, else
// DefaultSocket. Only the CLI uses the environment; PAM modules and
// servers take the socket from their configuration.
func SocketFromEnv(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if s := os.Getenv("OTPGATE_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket
}

// Do sends req (setting its version and a fresh ID) and returns the reply.
// A reply carrying an *Error is returned as that error. Failures to reach
// the daemon wrap ErrUnavailable.
//
// The request is bounded by c.Timeout and by ctx's deadline, whichever
// comes first; a ctx already done sends nothing. Do opens one connection,
// closes it before returning (it is never inherited), and refuses a server
// that is not root before it sends anything.
//
// Do blocks the calling thread in plain system calls, with SO_SNDTIMEO and
// SO_RCVTIMEO set to the time left, rather than parking the goroutine on
// the runtime's network poller. The PAM module runs on a thread borrowed
// from a C program, in a process whose Go runtime lives for one login: the
// poller would register the socket with epoll, arm deadline timers, hand
// the goroutine to another thread while it waits, and wake the runtime's
// sysmon thread from its deep sleep. Blocking calls need none of that, and
// keep package net out of what the module links.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	socket, timeout := c.config()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	payload, err := prepareRequest(req)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, unavailable(socket, err)
	}
	conn, err := dialRoot(socket, deadline)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return exchange(conn, socket, payload, req)
}

// dialRoot connects to otpgated's socket before deadline and checks that
// the server is root. Only root's otpgated may hear a code: a socket
// planted by a user (e.g. on a misconfigured path) is refused before
// anything is sent.
func dialRoot(socket string, deadline time.Time) (*blockingConn, error) {
	conn, err := dialBlocking(socket, deadline)
	if err != nil {
		return nil, unavailable(socket, err)
	}
	uid, err := conn.peerUID()
	if err != nil {
		conn.Close()
		return nil, unavailable(socket, err)
	}
	if uid != 0 {
		conn.Close()
		return nil, fmt.Errorf("%w: %s is served by uid %d, not root; refusing to use it", ErrUnavailable, socket, uid)
	}
	return conn, nil
}

// exchange sends payload on conn, connected to socket (by dialRoot), and
// returns the reply to req. A reply carrying an *Error is returned with
// that error.
func exchange(conn io.ReadWriter, socket string, payload []byte, req *Request) (*Response, error) {
	frame, err := roundTrip(conn, socket, payload)
	if err != nil {
		return nil, err
	}
	resp, err := DecodeResponse(frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := resp.check(req); err != nil {
		if resp.Error != nil && errors.Is(err, resp.Error) {
			return resp, err // an error reply
		}
		return nil, err
	}
	return resp, nil
}

// roundTrip sends payload on conn, connected to socket, and reads the
// reply's frame.
func roundTrip(conn io.ReadWriter, socket string, payload []byte) ([]byte, error) {
	// A daemon refusing the connection (too many from this uid) may reply
	// and close before reading the request: read its reply even when the
	// write failed.
	werr := WriteFrame(conn, payload)
	frame, err := ReadFrame(conn)
	if err != nil {
		if werr != nil {
			err = werr
		}
		return nil, unavailable(socket, err)
	}
	return frame, nil
}

// check checks that h answers req, and returns an error reply as its
// *Error.
func (h *ResponseHeader) check(req *Request) error {
	// Connection-level refusals come before the request is read, with ID 0.
	if h.ID != req.ID && (h.ID != 0 || h.Error == nil) {
		return fmt.Errorf("%w: reply is for request %d, not %d", ErrUnavailable, h.ID, req.ID)
	}
	if h.Error != nil {
		return h.Error
	}
	return nil
}

// config returns the socket and timeout, defaults applied.
func (c *Client) config() (socket string, timeout time.Duration) {
	socket, timeout = c.Socket, c.Timeout
	if socket == "" {
		socket = DefaultSocket
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return socket, timeout
}

// prepareRequest sets req's version and a fresh ID and encodes it.
func prepareRequest(req *Request) ([]byte, error) {
	req.V = Version
	// The ID only pairs a reply with its request on a connection of the
	// caller's own; it need not be secret, only fresh.
	req.ID = rand.Uint64() //nolint:gosec // pairs a reply with its request on the caller's own connection; not a secret
	payload, err := EncodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	return payload, nil
}

func unavailable(socket string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w at %s (is it running? start it with: systemctl start otpgated): %w", ErrUnavailable, socket, err)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w at %s: no answer in time", ErrUnavailable, socket)
	}
	return fmt.Errorf("%w at %s: %w", ErrUnavailable, socket, err)
}

// ListUsers fetches every enrolled user with admin_list, page by page.
func (c *Client) ListUsers(ctx context.Context) ([]UserStatus, error) {
	var all []UserStatus
	after := ""
	for {
		resp, err := c.Do(ctx, &Request{Op: OpAdminList, After: after})
		if err != nil {
			return nil, err
		}
		all = append(all, resp.Users...)
		if resp.Next == "" {
			return all, nil
		}
		if resp.Next <= after {
			return nil, fmt.Errorf("%w: admin_list cursor did not advance", ErrUnavailable)
		}
		after = resp.Next
	}
}
