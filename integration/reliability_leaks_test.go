//go:build integration

package integration

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// leakNeedles collects every secret a flow handled, in every form it could
// leak in.
type leakNeedles struct {
	texts []string         // case-insensitive substrings
	codes []*regexp.Regexp // 6-digit codes, matched between non-digits
}

// secret adds a raw TOTP secret: base32 (as shown), hex, base64 (how JSON
// encodes []byte) and the raw bytes.
func (n *leakNeedles) secret(raw []byte) {
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
	n.texts = append(n.texts, b32, hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), string(raw))
}

// code adds a TOTP code that was typed.
func (n *leakNeedles) code(c string) {
	n.codes = append(n.codes, regexp.MustCompile(`(^|[^0-9])`+c+`([^0-9]|$)`))
}

// recovery adds a recovery code as shown and normalized.
func (n *leakNeedles) recovery(c string) {
	n.texts = append(n.texts, c, strings.ReplaceAll(c, "-", ""))
}

// find returns a description of each needle found in haystack.
func (n *leakNeedles) find(haystack []byte) []string {
	var hits []string
	lower := strings.ToLower(string(haystack))
	for _, s := range n.texts {
		if s != "" && strings.Contains(lower, strings.ToLower(s)) {
			hits = append(hits, fmt.Sprintf("%q", s))
		}
	}
	for _, re := range n.codes {
		if re.Match(haystack) {
			hits = append(hits, "code "+re.String())
		}
	}
	return hits
}

// requestIDs matches the random request ids of replies, which could hold
// any six digits.
var requestIDs = regexp.MustCompile(`"id":[0-9]+`)

// TestReliabilityNoLeaks: enrollment, confirmation, valid,
// wrong and replayed codes, recovery codes, regenerated recovery codes and
// an admin import run against otpgated at log_level=debug. Then no secret
// (base32, hex, base64 or raw), no code typed and no recovery code appears
// in the daemon's log and audit output, in any reply (except the fields
// that deliver a new secret or new recovery codes to their owner), in
// /proc/<otpgated>/environ or cmdline, in the Go traceback of a crash, or
// in the store file. otpgated runs with RLIMIT_CORE 0 and, crashing with
// GOTRACEBACK=crash under an unlimited core limit, leaves no core file
// where a process that does not protect itself does.
func TestReliabilityNoLeaks(t *testing.T) {
	e := newRelEnv(t, relConfig("debug"))
	e.c.AddUser(t, "rleak")
	e.c.AddUser(t, "rleakimp")
	var n leakNeedles
	var replies []string
	ctx := context.Background()
	call := func(req *protocol.Request) *protocol.Response {
		t.Helper()
		resp, err := e.client.Do(ctx, req)
		if err != nil && resp == nil {
			t.Fatalf("%s %s: %v", req.Op, req.User, err)
		}
		// Blank the fields that hand a new secret or new recovery codes
		// to their owner; everything else must be clean.
		clean := *resp
		if clean.Enroll != nil {
			en := *clean.Enroll
			en.Secret, en.URI = "", ""
			clean.Enroll = &en
		}
		clean.RecoveryCodes = nil
		js, _ := json.Marshal(&clean)
		replies = append(replies, requestIDs.ReplaceAllString(string(js), `"id":0`))
		return resp
	}
	// verifyWant logs user in with code; the login's last step is a reply
	// like the others.
	verifyWant := func(user, code string, want protocol.Outcome) *protocol.LoginStep {
		t.Helper()
		n.code(code)
		st, err := testutil.Login(e.client, protocol.Request{User: user, Service: "sshd", RHost: "192.0.2.7", TTY: "ssh"}, code)
		if err != nil || stepOutcome(st) != want {
			t.Fatalf("login of %s: %+v (error %v), want %s", user, st, err, want)
		}
		js, _ := json.Marshal(st)
		replies = append(replies, string(js))
		return st
	}

	// Enrollment: begin, a wrong confirmation, the right one.
	begin := call(&protocol.Request{Op: protocol.OpEnrollBegin, User: "rleak"})
	if begin.Enroll == nil {
		t.Fatalf("enroll_begin: %+v", begin.Error)
	}
	raw, err := otp.DecodeSecret(begin.Enroll.Secret)
	if err != nil {
		t.Fatal(err)
	}
	n.secret(raw)
	u := &relUser{name: "rleak", secret: raw, params: otp.Params{Algorithm: otp.SHA1, Digits: begin.Enroll.Digits, Period: begin.Enroll.Period}}
	// The codes below are of steps center-1 to center+1; the window is ±1,
	// so the sequence must run within the step it starts in.
	awaitRoomInStep(u.params.Period, 20*time.Second)
	center := u.step()
	wrong := u.wrongCode()
	n.code(wrong)
	if resp := call(&protocol.Request{Op: protocol.OpEnrollConfirm, User: "rleak", Code: wrong}); resp.Error == nil {
		t.Fatal("enroll_confirm accepted a wrong code")
	}
	n.code(u.code(center - 1))
	confirm := call(&protocol.Request{Op: protocol.OpEnrollConfirm, User: "rleak", Code: u.code(center - 1)})
	if len(confirm.RecoveryCodes) == 0 {
		t.Fatalf("enroll_confirm: %+v", confirm.Error)
	}
	for _, c := range confirm.RecoveryCodes {
		n.recovery(c)
	}

	// Logins: valid, replayed, wrong, recovery codes.
	verifyWant("rleak", u.code(center), protocol.OutcomeAccept)
	verifyWant("rleak", u.code(center), protocol.OutcomeReplay)
	verifyWant("rleak", u.wrongCode(), protocol.OutcomeReject)
	verifyWant("rleak", u.code(center+12), protocol.OutcomeReject) // a clock hint
	if v := verifyWant("rleak", confirm.RecoveryCodes[0], protocol.OutcomeAccept); recoveryLeft(v) < 0 {
		t.Errorf("recovery code accepted without Recovery set: %+v", v)
	}
	verifyWant("rleak", confirm.RecoveryCodes[0], protocol.OutcomeReject)
	n.code(u.code(center + 1))
	regen := call(&protocol.Request{Op: protocol.OpRecoveryCodes, User: "rleak", Code: u.code(center + 1)})
	if len(regen.RecoveryCodes) == 0 {
		t.Fatalf("recovery_codes: %+v", regen.Error)
	}
	for _, c := range regen.RecoveryCodes {
		n.recovery(c)
	}
	verifyWant("rleak", regen.RecoveryCodes[1], protocol.OutcomeAccept)
	verifyWant("rleak", confirm.RecoveryCodes[1], protocol.OutcomeReject) // replaced
	call(&protocol.Request{Op: protocol.OpStatus, User: "rleak"})

	// An imported secret with scratch codes.
	imp := e.enroll("rleakimp", 30, "scratch1111", "scratch2222")
	n.secret(imp.secret)
	n.recovery("scratch1111")
	n.recovery("scratch2222")
	verifyWant("rleakimp", imp.code(imp.step()), protocol.OutcomeAccept)
	verifyWant("rleakimp", "scratch2222", protocol.OutcomeAccept)
	call(&protocol.Request{Op: protocol.OpAdminShow, User: "rleakimp"})
	call(&protocol.Request{Op: protocol.OpAdminList})
	// A pending re-enrollment forced by root leaves a second secret.
	again := call(&protocol.Request{Op: protocol.OpEnrollBegin, User: "rleakimp", Force: true})
	if again.Enroll == nil {
		t.Fatalf("forced enroll_begin: %+v", again.Error)
	}
	raw2, err := otp.DecodeSecret(again.Enroll.Secret)
	if err != nil {
		t.Fatal(err)
	}
	n.secret(raw2)

	pid := daemonHostPid(t, e.daemon)
	haystacks := map[string][]byte{"replies": []byte(strings.Join(replies, "\n"))}
	for _, f := range []string{"environ", "cmdline"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		haystacks["/proc/<otpgated>/"+f] = data
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Max core file size\s+0\s+0\s+bytes`).Match(limits) {
		t.Errorf("otpgated's core size limit is not 0:\n%s", limits)
	}
	e.stop()
	haystacks["otpgated log and audit (log_level=debug)"] = []byte(e.daemon.Output())
	haystacks["store file "+relDB] = e.c.ReadFile(t, relDB)

	// A crash: GOTRACEBACK=crash and SIGABRT print every goroutine and
	// would dump core; the core limit is raised first, as a careless
	// service manager might.
	const cores = "/var/tmp/cores"
	e.c.MkdirAll(t, cores, 0o733)
	control := e.c.Command("prlimit", "--core=unlimited", "--", "sleep", "60")
	control.Dir = cores
	cp := e.c.BackgroundCmd(t, control)
	if err := syscall.Kill(hostPidOf(t, cp, "/sleep"), syscall.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	_ = cp.Wait()
	if len(listCores(t, e.c.Path(cores))) == 0 {
		t.Fatalf("a process without protection left no core in %s (kernel.core_pattern is %q): the core check below would prove nothing", cores, readTrim("/proc/sys/kernel/core_pattern"))
	}
	e.c.Run(t, "sh", "-c", "rm -f "+cores+"/core*")
	crash := e.c.Command("prlimit", "--core=unlimited", "--", e.otpgatedBin, "-config", relConfigPath)
	crash.Dir = cores
	crash.Env = append(crash.Env, "GOTRACEBACK=crash")
	p := e.c.BackgroundCmd(t, crash)
	e.waitReady(p)
	verifyWant("rleakimp", imp.code(imp.step()+1), protocol.OutcomeAccept)
	if err := syscall.Kill(daemonHostPid(t, p), syscall.SIGABRT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("otpgated still running 30s after SIGABRT")
	}
	if !strings.Contains(p.Output(), "goroutine ") {
		t.Errorf("no traceback after SIGABRT with GOTRACEBACK=crash:\n%s", p.Output())
	}
	if got := listCores(t, e.c.Path(cores)); len(got) > 0 {
		t.Errorf("otpgated left core files after a crash: %v", got)
	}
	haystacks["traceback of a crash (GOTRACEBACK=crash)"] = []byte(p.Output())

	searched := 0
	for name, data := range haystacks {
		searched += len(data)
		if hits := n.find(data); len(hits) > 0 {
			t.Errorf("%s contains secrets: %s", name, strings.Join(hits, ", "))
		}
	}
	t.Logf("no leaks: %d needles (%d secret forms, %d codes) searched in %d places (%d bytes, %d replies): 0 hits; core limit 0, no core after a crash",
		len(n.texts)+len(n.codes), len(n.texts), len(n.codes), len(haystacks), searched, len(replies))
}

// listCores returns the core files in the host path dir.
func listCores(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "core*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readTrim returns the trimmed contents of a host file, or the error.
func readTrim(p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(data))
}
