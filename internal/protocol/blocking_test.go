//go:build root

package protocol

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot fails a test that serves a socket the client must accept:
// the client talks only to a server running as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root (the client refuses a server that is not root)")
	}
}

// serveOnce listens on a new socket and hands the first connection to
// handle in a goroutine; the test waits for handle to return.
func serveOnce(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return sock
}

// reply reads one request and answers with what mk returns for it.
func reply(mk func(*Request) *Response) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		frame, err := ReadFrame(c)
		if err != nil {
			return
		}
		req, err := DecodeRequest(frame)
		if err != nil {
			return
		}
		b, err := EncodeResponse(mk(req))
		if err != nil {
			return
		}
		_ = WriteFrame(c, b) // the client reports a missing reply
	}
}

// rawReply reads one request and writes b as is.
func rawReply(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := ReadFrame(c); err == nil {
			_, _ = c.Write(b)
		}
	}
}

func frameOf(s string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

func TestDo(t *testing.T) {
	requireRoot(t)
	codes := []string{"aaaa-1111"}
	tests := []struct {
		name    string
		handle  func(net.Conn)
		timeout time.Duration
		// want checks the result.
		want func(t *testing.T, resp *Response, err error)
	}{
		{"a reply to the request", reply(func(r *Request) *Response {
			if r.Op != OpEnrollConfirm || r.User != "alice" || r.Code != "123456" || r.ID == 0 {
				return &Response{ResponseHeader: ResponseHeader{V: Version, ID: r.ID, Error: &Error{Code: ErrBadRequest, Message: "unexpected request"}}}
			}
			return &Response{ResponseHeader: ResponseHeader{V: Version, ID: r.ID}, RecoveryCodes: codes}
		}), 0, func(t *testing.T, resp *Response, err error) {
			if err != nil || len(resp.RecoveryCodes) != 1 || resp.RecoveryCodes[0] != codes[0] {
				t.Fatalf("reply %+v, error %v", resp, err)
			}
		}},
		{"an error reply is returned as the error", reply(func(r *Request) *Response {
			return &Response{ResponseHeader: ResponseHeader{V: Version, ID: r.ID, Error: &Error{Code: ErrLocked, Message: "locked for 60 s", RetryAfter: 60}}}
		}), 0, func(t *testing.T, resp *Response, err error) {
			var perr *Error
			if !errors.As(err, &perr) || perr.Code != ErrLocked || perr.RetryAfter != 60 || resp == nil {
				t.Fatalf("reply %+v, error %v", resp, err)
			}
		}},
		{"a refusal before the request is read", func(c net.Conn) {
			b, _ := EncodeResponse(&Response{ResponseHeader: ResponseHeader{V: Version, Error: &Error{Code: ErrBusy, Message: "too many connections"}}})
			_ = WriteFrame(c, b) // the client reports a missing reply
		}, 0, func(t *testing.T, resp *Response, err error) {
			var perr *Error
			if !errors.As(err, &perr) || perr.Code != ErrBusy {
				t.Fatalf("reply %+v, error %v", resp, err)
			}
		}},
		{"a reply to another request", reply(func(r *Request) *Response {
			return &Response{ResponseHeader: ResponseHeader{V: Version, ID: r.ID + 1}, RecoveryCodes: codes}
		}), 0, wantUnavailable("reply is for request")},
		{"a reply with ID 0 that is not an error", reply(func(r *Request) *Response {
			return &Response{ResponseHeader: ResponseHeader{V: Version}, RecoveryCodes: codes}
		}), 0, wantUnavailable("reply is for request 0")},
		{"a reply in another version", reply(func(r *Request) *Response {
			return &Response{ResponseHeader: ResponseHeader{V: Version + 1, ID: r.ID}, RecoveryCodes: codes}
		}), 0, wantUnavailable("protocol version")},
		{"malformed JSON", rawReply(frameOf(`{"v":1,`)), 0, wantUnavailable("malformed response")},
		{"an unknown field", rawReply(frameOf(`{"v":1,"id":0,"shell":true}`)), 0, wantUnavailable("unknown field")},
		{"an oversized frame", rawReply([]byte{0, 0x10, 0, 0}), 0, wantUnavailable("frame exceeds 64 KiB")},
		{"a truncated frame", rawReply(frameOf(`{"v":1}`)[:6]), 0, wantUnavailable("unexpected EOF")},
		{"a close without a reply", func(c net.Conn) {}, 0, wantUnavailable("otpgated is not reachable")},
		{"no reply in time", func(c net.Conn) {
			_, _ = ReadFrame(c)
			time.Sleep(time.Second)
		}, 300 * time.Millisecond, wantUnavailable("no answer in time")},
		{"a trickling reply cannot extend the deadline", func(c net.Conn) {
			_, _ = ReadFrame(c)
			for _, b := range frameOf(`{"v":1,"id":0,"error":{"code":"busy","message":"x"}}`) {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}, 300 * time.Millisecond, wantUnavailable("no answer in time")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := serveOnce(t, tt.handle)
			c := &Client{Socket: sock, Timeout: tt.timeout}
			start := time.Now()
			resp, err := c.Do(context.Background(), &Request{Op: OpEnrollConfirm, User: "alice", Code: "123456"})
			if tt.timeout > 0 && time.Since(start) > tt.timeout+500*time.Millisecond {
				t.Errorf("took %v with a timeout of %v", time.Since(start), tt.timeout)
			}
			tt.want(t, resp, err)
		})
	}
}

func wantUnavailable(msg string) func(*testing.T, *Response, error) {
	return func(t *testing.T, resp *Response, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), msg) || resp != nil {
			t.Fatalf("reply %+v, error %v; want %v containing %q", resp, err, ErrUnavailable, msg)
		}
	}
}

func TestDoWithoutADaemon(t *testing.T) {
	dir := t.TempDir()
	// A socket file nobody listens on.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ctx := context.Background()
	// The cause stays visible to errors.Is, for callers that tell a
	// missing socket from a refused connection.
	for sock, cause := range map[string]error{filepath.Join(dir, "missing.sock"): unix.ENOENT, stale: unix.ECONNREFUSED} {
		t.Run(filepath.Base(sock), func(t *testing.T) {
			_, err := (&Client{Socket: sock}).Do(ctx, &Request{Op: OpPing})
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) || !strings.Contains(err.Error(), "is it running?") {
				t.Fatalf("error %v, want %v wrapping %v", err, ErrUnavailable, cause)
			}
		})
	}
	t.Run("an invalid request is not sent", func(t *testing.T) {
		_, err := (&Client{Socket: filepath.Join(dir, "missing.sock")}).Do(ctx, &Request{Op: OpEnrollConfirm, Code: "1"})
		if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "invalid request") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestDoHonoursTheContext: a context already done sends nothing, and a
// context deadline shorter than the client's timeout bounds the request.
func TestDoHonoursTheContext(t *testing.T) {
	requireRoot(t)
	t.Run("a cancelled context sends nothing", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "s.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := (&Client{Socket: sock}).Do(ctx, &Request{Op: OpPing}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("error %v, want %v", err, ErrUnavailable)
		}
		_ = ln.(*net.UnixListener).SetDeadline(time.Now())
		if c, err := ln.Accept(); err == nil {
			c.Close()
			t.Fatal("the client connected with a cancelled context")
		}
	})
	t.Run("the context's deadline bounds the request", func(t *testing.T) {
		sock := serveOnce(t, func(c net.Conn) {
			_, _ = ReadFrame(c)
			time.Sleep(time.Second)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := (&Client{Socket: sock, Timeout: time.Minute}).Do(ctx, &Request{Op: OpPing})
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer in time") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestDoConnectIsBounded: a listener whose backlog is full makes
// connect wait; the timeout bounds that wait too.
func TestDoConnectIsBounded(t *testing.T) {
	requireRoot(t)
	sock := filepath.Join(t.TempDir(), "full.sock")
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	// With a backlog of 0 the first connection fills the queue.
	cfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)
	if err := unix.Connect(cfd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := &Client{Socket: sock, Timeout: 300 * time.Millisecond}
	_, err = c.Do(context.Background(), &Request{Op: OpPing})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > time.Second {
		t.Fatalf("gave up after %v with a timeout of 300ms", d)
	}
}

// TestDoRestartsAfterSignals: signals to the blocked thread (the
// host program's, or the runtime's own SIGURG) interrupt a socket call
// that has a timeout even under SA_RESTART; the request must go on.
func TestDoRestartsAfterSignals(t *testing.T) {
	requireRoot(t)
	sock := serveOnce(t, func(c net.Conn) {
		time.Sleep(300 * time.Millisecond)
		reply(func(r *Request) *Response {
			time.Sleep(300 * time.Millisecond)
			return &Response{ResponseHeader: ResponseHeader{V: Version, ID: r.ID}, Status: &UserStatus{User: r.User, State: StateActive}}
		})(c)
	})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sent := 0
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if unix.Tgkill(os.Getpid(), tid, syscall.SIGURG) == nil {
					sent++
				}
			}
		}
	}()
	c := &Client{Socket: sock, Timeout: 5 * time.Second}
	resp, err := c.Do(context.Background(), &Request{Op: OpStatus, User: "alice"})
	close(stop)
	wg.Wait()
	if err != nil || resp.Status == nil || resp.Status.State != StateActive {
		t.Fatalf("reply %+v, error %v (%d signals sent)", resp, err, sent)
	}
	if sent < 20 {
		t.Fatalf("only %d signals sent", sent)
	}
}

// TestDoClosesItsSocket: no descriptor outlives a request, on
// success or failure.
func TestDoClosesItsSocket(t *testing.T) {
	requireRoot(t)
	openFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	handlers := []func(net.Conn){
		reply(func(r *Request) *Response {
			return &Response{ResponseHeader: ResponseHeader{V: Version, ID: r.ID}, Status: &UserStatus{User: r.User, State: StateActive}}
		}),
		rawReply(frameOf("{")),
		func(net.Conn) {},
	}
	var served sync.WaitGroup
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handlers[i%len(handlers)](c)
			c.Close()
			served.Done()
		}
	}()
	c := &Client{Socket: sock, Timeout: time.Second}
	// One round first, so that descriptors the runtime opens lazily exist.
	for round := 0; round < 2; round++ {
		before := openFDs()
		for range handlers {
			served.Add(1)
			_, _ = c.Do(context.Background(), &Request{Op: OpPing})
		}
		served.Wait()
		_, _ = (&Client{Socket: "/nonexistent/s.sock"}).Do(context.Background(), &Request{Op: OpPing})
		if got := openFDs(); got != before {
			t.Fatalf("round %d: %d descriptors open after the requests, %d before", round, got, before)
		}
	}
}
