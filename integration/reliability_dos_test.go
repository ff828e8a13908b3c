//go:build integration

package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// floodEnv, set to "SOCKET COUNT", makes this test binary (re-executed
// inside a container as an unprivileged user) the local DoS client of
// TestReliabilityLocalDoS instead of running tests.
const floodEnv = "OTPGATE_RELIABILITY_FLOOD"

// floodBin is where the test binary is bound inside the container.
const floodBin = "/opt/otpgate-test/integration.test"

func init() {
	if v := os.Getenv(floodEnv); v != "" {
		os.Exit(floodMain(v))
	}
}

// floodMain opens COUNT connections to SOCKET and holds them: the even
// ones idle, the odd ones with half a request (a frame header announcing
// 1000 bytes, then 10 of them). It prints "ready OPENED FAILED" once they
// are open, waits for stdin to close, then reads whatever each connection
// received and prints "done OPENED BUSY": BUSY connections got the
// daemon's "too many connections" reply.
func floodMain(arg string) int {
	f := strings.Fields(arg)
	if len(f) != 2 {
		fmt.Fprintf(os.Stderr, "%s: want SOCKET COUNT, got %q\n", floodEnv, arg)
		return 2
	}
	count, err := strconv.Atoi(f[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var conns []net.Conn
	failed := 0
	var half [4 + 10]byte
	binary.BigEndian.PutUint32(half[:4], 1000)
	copy(half[4:], `{"v":1,"id"`)
	for i := range count {
		c, err := net.Dial("unix", f[0])
		if err != nil {
			failed++
			continue
		}
		if i%2 == 1 {
			_, _ = c.Write(half[:])
		}
		conns = append(conns, c)
	}
	fmt.Printf("ready %d %d\n", len(conns), failed)
	_, _ = io.Copy(io.Discard, os.Stdin)
	busy := 0
	buf := make([]byte, 4096)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _ := io.ReadAtLeast(c, buf, 4)
		if n > 0 && strings.Contains(string(buf[:n]), `"busy"`) {
			busy++
		}
		c.Close()
	}
	fmt.Printf("done %d %d\n", len(conns), busy)
	return 0
}

// fdCount returns how many file descriptors host pid has open.
func fdCount(t testing.TB, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("read the fds of otpgated: %v", err)
	}
	return len(fds)
}

// TestReliabilityLocalDoS: an unprivileged user (with its open-file
// limit raised) opens thousands of idle and half-written connections to
// otpgated and holds them while root runs PAM verifications through
// pam_otpgate.so, one during the connect burst and one once the flood is
// established: both succeed (pamtester runs under a deadline), the per-uid
// cap is enforced and logged with the user's uid, and once the burst is
// answered otpgated holds no more descriptors than the cap allows (the
// transient peak while it refuses the burst is reported).
func TestReliabilityLocalDoS(t *testing.T) {
	conns := 5000
	if soak() {
		conns = 15000
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	container.Require(t, "prlimit")
	e := newPAMEnv(t, container.WithBind(exe, floodBin, true))
	e.writePAMService("otp-dos", "auth required pam_otpgate.so\nauth required pam_permit.so\n")
	e.enroll("victim")
	e.enroll("victim2")
	mallory := e.c.AddUser(t, "mallory")
	pid := e.daemon.HostPid()
	base := fdCount(t, pid)

	u, err := e.c.LookupUser("mallory")
	if err != nil {
		t.Fatal(err)
	}
	// Sample otpgated's descriptors all along: the peak is reported, the
	// count once the flood is established is asserted.
	peak := base
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				peak = max(peak, len(fds))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	limit := strconv.Itoa(conns + 64)
	cmd := e.c.Command("prlimit", "--nofile="+limit+":"+limit, "--",
		"setpriv", "--reuid="+strconv.Itoa(u.UID), "--regid="+strconv.Itoa(u.GID), "--init-groups", "--", floodBin)
	cmd.Env = append(cmd.Env, floodEnv+"="+pamSocket+" "+strconv.Itoa(conns))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// A first root login runs while the connections are being opened.
	burstLogin := e.c.Command("timeout", "-k", "5", "30", "pamtester", "otp-dos", "victim2", "authenticate")
	burstLogin.Stdin = strings.NewReader(e.code("victim2") + "\n")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = e.c.Kill(cmd) // teardown: Wait below reaps it either way
		_ = cmd.Wait()
	}()
	burstOut, burstErr := burstLogin.CombinedOutput()
	lines := bufio.NewScanner(stdout)
	var opened, failed int
	if !lines.Scan() {
		t.Fatalf("the flood client printed nothing: %s", stderr.String())
	}
	if _, err := fmt.Sscanf(lines.Text(), "ready %d %d", &opened, &failed); err != nil {
		t.Fatalf("flood client: %q: %v", lines.Text(), err)
	}
	if opened < conns*9/10 {
		t.Fatalf("the flood client opened only %d of %d connections (%d failed): %s", opened, conns, failed, stderr.String())
	}
	if burstErr != nil || !strings.Contains(string(burstOut), pamOK) {
		t.Errorf("root's PAM verification while the flood connected: %v\n%s", burstErr, burstOut)
	}

	// Refused connections are answered and closed; only the cap's are
	// held. Wait (with a deadline) for the accept backlog to drain.
	bound := base + relConnCap + 8 // the cap, root's own, listener, store, key, epoll, stdio
	held := fdCount(t, pid)
	for deadline := time.Now().Add(30 * time.Second); held > bound && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		held = fdCount(t, pid)
	}
	res := e.pamtester("", "otp-dos", "victim", e.code("victim")+"\n")
	if res.exit != 0 || !strings.Contains(res.out, pamOK) {
		t.Errorf("root's PAM verification while the flood holds its connections: exit %d\n%s", res.exit, res.out)
	}
	held = max(held, fdCount(t, pid))
	if held > bound {
		t.Errorf("otpgated holds %d fds while %d connections of uid %d are open (%d before); want at most %d", held, opened, mallory, base, bound)
	}
	close(stopSampling)
	<-sampled

	stdin.Close()
	var total, busy int
	if !lines.Scan() {
		t.Fatalf("the flood client did not finish: %s", stderr.String())
	}
	if _, err := fmt.Sscanf(lines.Text(), "done %d %d", &total, &busy); err != nil {
		t.Fatalf("flood client: %q: %v", lines.Text(), err)
	}
	if busy < total-relConnCap {
		t.Errorf("%d of %d connections got the busy reply; want all but the cap of %d", busy, total, relConnCap)
	}
	wantLog := fmt.Sprintf(`msg="connection refused: too many connections from this uid" peer_uid=%d`, mallory)
	if !strings.Contains(e.daemon.Output(), wantLog) {
		t.Errorf("otpgated did not log the per-uid cap for uid %d (%s)", mallory, wantLog)
	}
	t.Logf("local DoS: %d connections held by uid %d (%d refused at connect), %d refused as busy by the daemon, two root PAM verifications succeeded (one during the connect burst); otpgated fds: %d before, %d held with the flood established, peak %d while the burst was being refused", opened, mallory, failed, busy, base, held, peak)
}
