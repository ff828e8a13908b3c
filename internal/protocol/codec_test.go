//go:build root

package protocol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("a"), MaxFrame)} {
		if err := WriteFrame(&buf, p); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFrame(&buf)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("round trip of %d bytes: %v", len(p), err)
		}
	}
	if err := WriteFrame(&buf, make([]byte, MaxFrame+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized write: %v", err)
	}
}

func TestReadFrameRefusesBeforeAllocating(t *testing.T) {
	hdr := make([]byte, 4)
	binary.BigEndian.PutUint32(hdr, 1<<31)
	if _, err := ReadFrame(bytes.NewReader(hdr)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("2 GiB declared: %v", err)
	}
	binary.BigEndian.PutUint32(hdr, 10)
	if _, err := ReadFrame(bytes.NewReader(append(hdr, 'a', 'b'))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
}

func TestDecodeRequestValidation(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"a valid enroll_confirm", `{"v":1,"id":3,"op":"enroll_confirm","user":"alice","code":"123456"}`, ""},
		{"a valid list needs no user", `{"v":1,"id":3,"op":"admin_list"}`, ""},
		{"version 2 is refused", `{"v":2,"id":3,"op":"ping"}`, "unsupported protocol version 2"},
		{"an unknown op is refused", `{"v":1,"op":"shell"}`, "unknown operation"},
		{"an unknown field is refused", `{"v":1,"op":"ping","uid":0}`, "unknown field"},
		{"trailing data is refused", `{"v":1,"op":"ping"}{"v":1}`, "trailing data"},
		{"enroll_confirm needs a user", `{"v":1,"op":"enroll_confirm","code":"1"}`, "needs a user"},
		{"a control character in the user is refused", `{"v":1,"op":"status","user":"al\nice"}`, "control character"},
		{"an overlong user is refused", `{"v":1,"op":"status","user":"` + strings.Repeat("a", 257) + `"}`, "longer than 256"},
		{"import without payload is refused", `{"v":1,"op":"admin_import","user":"a"}`, "import payload"},
		{"payload on another op is refused", `{"v":1,"op":"status","user":"a","import":{"secret":"","algorithm":"","digits":0,"period":0}}`, "import payload"},
		{"a wrong type names the field", `{"v":1,"op":"status","user":7}`, `field "user"`},
		{"a password prior factor", `{"v":1,"op":"login_start","user":"a","prior_factor":"password","login":{}}`, ""},
		{"any other prior factor is refused", `{"v":1,"op":"login_start","user":"a","prior_factor":"publickey","login":{}}`, `prior_factor must be empty or "password"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.json))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDecodeErrorsNeverEchoTheCode(t *testing.T) {
	_, err := DecodeRequest([]byte(`{"v":1,"op":"enroll_confirm","user":"a","code":"987654",}`))
	if err == nil || strings.Contains(err.Error(), "987654") {
		t.Fatalf("error %v echoes input", err)
	}
}

// FuzzDecodeRequest: any bytes either decode to a request that validates
// and re-encodes to an equivalent request, or give an error; never a panic.
func FuzzDecodeRequest(f *testing.F) {
	req, err := DecodeRequest([]byte(`{"v":1,"id":1,"op":"ping"}`))
	if err != nil || req.Op != OpPing {
		f.Fatal("seed sanity check failed", err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			return
		}
		b, err := EncodeRequest(req)
		if err != nil {
			t.Fatalf("decoded request does not re-encode: %v", err)
		}
		again, err := DecodeRequest(b)
		if err != nil || again.Op != req.Op || again.User != req.User || again.Code != req.Code {
			t.Fatalf("re-decode differs: %v", err)
		}
	})
}

// FuzzReadFrame: a frame reader never returns more than MaxFrame bytes.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadFrame(bytes.NewReader(data))
		if err == nil && len(got) > MaxFrame {
			t.Fatalf("frame of %d bytes", len(got))
		}
	})
}

// TestFuzzSeedsExist guards against an empty seed corpus silently
// turning the fuzz targets into no-ops.
func TestFuzzSeedsExist(t *testing.T) {
	for _, name := range []string{"FuzzDecodeRequest", "FuzzReadFrame", "FuzzMarshalRequest", "FuzzParseStepReply"} {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
		if err != nil || len(files) < 3 {
			t.Fatalf("%s has %d seeds in testdata/fuzz; want at least 3", name, len(files))
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || !bytes.HasPrefix(b, []byte("go test fuzz v1\n")) {
				t.Fatalf("%s is not a go fuzz seed file", f)
			}
		}
	}
}

// TestClientRefusesANonRootServer: a socket served by another uid never
// gets the request, from Do or StartDialogue.
func TestClientRefusesANonRootServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root (it serves a socket as uid 65534)")
	}
	clients := []struct {
		name string
		do   func(c *Client) error
	}{
		{"Do", func(c *Client) error {
			_, err := c.Do(context.Background(), &Request{Op: OpEnrollConfirm, User: "alice", Code: "123456"})
			return err
		}},
		{"StartDialogue", func(c *Client) error {
			_, _, err := c.StartDialogue(&Request{Op: OpLoginStart, User: "alice", Service: "sshd", Login: &LoginStart{}})
			return err
		}},
	}
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) { refusesANonRootServer(t, cl.do) })
	}
}

func refusesANonRootServer(t *testing.T, do func(*Client) error) {
	dir, err := os.MkdirTemp("", "otpgate-fake-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	// A listener created by a process running as nobody: this test
	// binary, copied where nobody may execute it.
	bin := filepath.Join(dir, "fake")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{"OTPGATE_FAKE_SERVER=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(out)
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("listener: %q %v", line, err)
	}
	c := Client{Socket: sock, Timeout: 2 * time.Second}
	err = do(&c)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "uid 65534, not root") {
		t.Fatalf("error %v", err)
	}
	if line, _ := r.ReadString('\n'); line != "got 0\n" {
		t.Fatalf("the fake server received data: %q", line)
	}
}

func TestMain(m *testing.M) {
	if sock := os.Getenv("OTPGATE_FAKE_SERVER"); sock != "" {
		os.Exit(fakeServer(sock))
	}
	os.Exit(m.Run())
}

// fakeServer listens on sock, accepts one connection and reports how many
// bytes it received within a second.
func fakeServer(sock string) int {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ready")
	c, err := ln.Accept()
	if err != nil {
		return 1
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	n, _ := io.ReadFull(c, make([]byte, 100))
	fmt.Println("got", n)
	return 0
}
