package protocol

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds one request's round trip unless the caller's
// context is shorter. A login must never hang on the daemon.
const DefaultTimeout = 10 * time.Second

// ErrUnavailable wraps every failure to reach the daemon (no socket,
// refused, timed out, connection dropped). Callers fail closed on it.
var ErrUnavailable = errors.New("otpgated is not reachable")

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
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	socket, timeout := c.config()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	payload, err := prepareRequest(req)
	if err != nil {
		return nil, err
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, unavailable(socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return nil, unavailable(socket, err)
		}
	}
	uid, err := peerUID(conn)
	if err != nil {
		return nil, unavailable(socket, err)
	}
	return exchange(conn, socket, uid, payload, req)
}

// exchange sends payload on conn, connected to socket and served by uid,
// and returns the reply to req.
func exchange(conn io.ReadWriter, socket string, uid uint32, payload []byte, req *Request) (*Response, error) {
	// Only root's otpgated may hear a code: a socket planted by a user
	// (e.g. on a misconfigured path) is refused before anything is sent.
	if uid != 0 {
		return nil, fmt.Errorf("%w: %s is served by uid %d, not root; refusing to use it", ErrUnavailable, socket, uid)
	}
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
	return decodeReply(frame, req)
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
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("request id: %w", err)
	}
	req.ID = binary.BigEndian.Uint64(idb[:])
	payload, err := EncodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	return payload, nil
}

// decodeReply decodes the reply frame to req. A reply carrying an *Error
// is returned as that error.
func decodeReply(frame []byte, req *Request) (*Response, error) {
	resp, err := DecodeResponse(frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// Connection-level refusals come before the request is read, with ID 0.
	if resp.ID != req.ID && (resp.ID != 0 || resp.Error == nil) {
		return nil, fmt.Errorf("%w: reply is for request %d, not %d", ErrUnavailable, resp.ID, req.ID)
	}
	if resp.Error != nil {
		return resp, resp.Error
	}
	return resp, nil
}

func unavailable(socket string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w at %s (is it running? start it with: systemctl start otpgated): %v", ErrUnavailable, socket, err)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w at %s: no answer in time", ErrUnavailable, socket)
	}
	return fmt.Errorf("%w at %s: %v", ErrUnavailable, socket, err)
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

// peerUID reads the server's uid with SO_PEERCRED.
func peerUID(conn net.Conn) (uint32, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, errors.New("not a Unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("peer credentials: %w", cerr)
	}
	return cred.Uid, nil
}
