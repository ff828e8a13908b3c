//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// TestPAMModule drives pam_otpgate.so with pamtester through the real
// otpgated: every reply class, every failure of the daemon or of the Go
// library, and the peer-credential rules for an unprivileged caller.
func TestPAMModule(t *testing.T) {
	e := newPAMEnv(t)
	lib := pamGoLib
	services := map[string]string{
		"otp-alone":    "auth required pam_otpgate.so debug\n",
		"otp-permit":   "auth required pam_otpgate.so\nauth required pam_permit.so\n",
		"otp-nosock":   "auth required pam_otpgate.so socket=/run/otpgate/absent.sock\nauth required pam_permit.so\n",
		"otp-failopen": "auth required pam_otpgate.so socket=/run/otpgate/absent.sock fail=open\nauth required pam_permit.so\n",
		"otp-badarg":   "auth required pam_otpgate.so no_such_argument fail=maybe socket=/run/otpgate/absent.sock\nauth required pam_permit.so\n",
		"otp-nolib":    "auth required pam_otpgate.so golib=" + pamGoLibDir + "/absent.so\nauth required pam_permit.so\n",
		"otp-wlib":     "auth required pam_otpgate.so golib=" + pamGoLibDir + "/writable.so\nauth required pam_permit.so\n",
		"otp-ulib":     "auth required pam_otpgate.so golib=" + pamGoLibDir + "/alice.so\nauth required pam_permit.so\n",
		"otp-wdir":     "auth required pam_otpgate.so golib=/srv/opendir/lib.so\nauth required pam_permit.so\n",
		"otp-rellib":   "auth required pam_otpgate.so golib=usr/lib/otpgate/libpam_otpgate_go.so\nauth required pam_permit.so\n",
		"otp-prompt":   "auth required pam_otpgate.so [prompt=Code from your phone: ]\nauth required pam_permit.so\n",
		"otp-extraarg": "auth required pam_otpgate.so nullok secret=/etc/x timeout=abc\nauth required pam_permit.so\n",
	}
	for name, stack := range services {
		e.writePAMService(name, stack)
	}
	// Copies of the Go library that the loader must refuse to load.
	e.c.Run(t, "install", "-m", "0666", lib, pamGoLibDir+"/writable.so")
	e.c.Run(t, "chmod", "0666", pamGoLibDir+"/writable.so") // install honours the umask
	e.addUser("alice")
	e.c.Run(t, "install", "-o", "alice", "-m", "0644", lib, pamGoLibDir+"/alice.so")
	e.c.Run(t, "install", "-d", "-m", "0777", "/srv/opendir")
	e.c.Run(t, "install", "-m", "0644", lib, "/srv/opendir/lib.so")

	for _, u := range []string{"okuser", "baduser", "spaceuser", "pasteuser", "replayuser", "lockeduser", "bob", "promptuser", "argsuser"} {
		e.enroll(u)
	}
	e.enroll("recoveryuser", "12345678", "87654321")
	e.enroll("alice")
	e.addUser("plainuser")
	e.addUser(pamRequired)

	lockedMsg := e.lock("lockeduser")
	requiredMsg := e.checkMessage(pamRequired, "enroll_required")
	replayCode := e.code("replayuser")

	tests := []struct {
		name       string
		runAs      string // "" is root
		service    string
		user       string
		input      func() string
		want       string
		wantPrompt string   // "" means no prompt may appear
		wantOut    []string // further text the transcript must contain
	}{
		{"right code", "", "otp-alone", "okuser", func() string { return e.code("okuser") }, pamOK, pamCodePrompt, nil},
		{"wrong code", "", "otp-alone", "baduser", func() string { return e.wrongCode("baduser") }, pamAuthErr, pamCodePrompt, []string{"Wrong code."}},
		{"a code as apps display it", "", "otp-alone", "spaceuser", func() string { c := e.code("spaceuser"); return c[:3] + " " + c[3:] }, pamOK, pamCodePrompt, nil},
		{"a long paste is refused in words and asked again", "", "otp-alone", "pasteuser", func() string { return strings.Repeat("8", 200) + "\n" + e.code("pasteuser") }, pamOK, pamCodePrompt, []string{"A code is 6 digits."}},
		{"first use of a code", "", "otp-permit", "replayuser", func() string { return replayCode }, pamOK, pamCodePrompt, nil},
		{"replayed code", "", "otp-permit", "replayuser", func() string { return replayCode }, pamAuthErr, pamCodePrompt, []string{"This code was already used"}},
		// refused: the application must stop asking (PAM_MAXTRIES).
		{"locked user with the right code", "", "otp-permit", "lockeduser", func() string { return e.code("lockeduser") }, pamMaxTries, "", []string{lockedMsg}},
		{"required user not enrolled", "", "otp-permit", pamRequired, func() string { return "" }, pamMaxTries, "", []string{requiredMsg}},
		{"not enrolled: ignored, so the module alone denies", "", "otp-alone", "plainuser", func() string { return "" }, pamPermDenied, "", nil},
		{"not enrolled: ignored, pam_permit admits", "", "otp-permit", "plainuser", func() string { return "" }, pamOK, "", nil},
		{"recovery code", "", "otp-permit", "recoveryuser", func() string { return "87654321" }, pamOK, pamCodePrompt, []string{"Recovery code accepted; only 1 left: run 'otpgate recovery-codes' to make new ones."}},
		{"custom prompt", "", "otp-prompt", "promptuser", func() string { return e.code("promptuser") }, pamOK, "Code from your phone: ", nil},
		{"unknown arguments are not fatal", "", "otp-extraarg", "argsuser", func() string { return e.code("argsuser") }, pamOK, pamCodePrompt, nil},
		{"daemon socket absent, enrolled user", "", "otp-nosock", "bob", func() string { return e.code("bob") }, pamUnavail, "", []string{protocol.UnavailableText}},
		{"daemon socket absent, user without enrollment", "", "otp-nosock", "plainuser", func() string { return "" }, pamUnavail, "", []string{protocol.UnavailableText}},
		{"fail=open skips the module when the daemon is absent", "", "otp-failopen", "bob", func() string { return "" }, pamOK, "", nil},
		{"unknown and malformed arguments stay closed", "", "otp-badarg", "plainuser", func() string { return "" }, pamUnavail, "", []string{protocol.UnavailableText}},
		{"go library missing", "", "otp-nolib", "plainuser", func() string { return "" }, pamUnavail, "", nil},
		{"go library world-writable", "", "otp-wlib", "plainuser", func() string { return "" }, pamUnavail, "", nil},
		{"go library owned by a user", "", "otp-ulib", "plainuser", func() string { return "" }, pamUnavail, "", nil},
		{"go library in a world-writable directory", "", "otp-wdir", "plainuser", func() string { return "" }, pamUnavail, "", nil},
		{"go library path relative", "", "otp-rellib", "plainuser", func() string { return "" }, pamUnavail, "", nil},
		// The daemon answers for unknown users as for users without
		// enrollment (no enumeration), so the transcript is the same.
		{"unknown user is answered like a user without enrollment", "", "otp-alone", "nosuchuser", func() string { return "" }, pamPermDenied, "", nil},
		{"unprivileged caller for herself", "alice", "otp-permit", "alice", func() string { return e.code("alice") }, pamOK, pamCodePrompt, nil},
		{"unprivileged caller for another user", "alice", "otp-permit", "bob", func() string { return e.code("bob") }, pamUnavail, "", []string{protocol.UnavailableText}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.pamtester(tt.runAs, tt.service, tt.user, tt.input()+"\n")
			if !strings.Contains(res.out, tt.want) {
				t.Fatalf("pamtester %s %s: want %q, got (exit %d):\n%s", tt.service, tt.user, tt.want, res.exit, res.out)
			}
			if (tt.want == pamOK) != (res.exit == 0) {
				t.Errorf("pamtester exit status %d with %q", res.exit, tt.want)
			}
			// The relay's one text is shown only before it fails closed.
			if tt.want != pamUnavail && strings.Contains(res.out, protocol.UnavailableText) {
				t.Errorf("%q shown although otpgated answered:\n%s", protocol.UnavailableText, res.out)
			}
			if tt.wantPrompt == "" {
				if strings.Contains(res.out, pamCodePrompt) {
					t.Errorf("a prompt appeared although none may:\n%s", res.out)
				}
			} else if !strings.Contains(res.out, tt.wantPrompt) {
				t.Errorf("prompt %q missing:\n%s", tt.wantPrompt, res.out)
			}
			for _, s := range tt.wantOut {
				if !containsMessage(res.out, s) {
					t.Errorf("transcript lacks %q:\n%s", s, res.out)
				}
			}
		})
	}

	// During a package upgrade the loader itself may be briefly absent:
	// libpam must then fail the recommended stack, not skip the line.
	t.Run("loader file missing denies the stack", func(t *testing.T) {
		e.writePAMService("otp-noloader", "auth required "+e.pamModuleDir()+"/pam_otpgate_absent.so\nauth required pam_permit.so\n")
		res := e.pamtester("", "otp-noloader", "plainuser", "\n")
		if res.exit == 0 || strings.Contains(res.out, pamOK) {
			t.Fatalf("stack with a missing module admitted the user:\n%s", res.out)
		}
	})

	// The unprivileged caller's request for bob must not have touched bob:
	// his code still works for root.
	t.Run("a refused request does not use up the victim's code", func(t *testing.T) {
		res := e.pamtester("", "otp-permit", "bob", e.code("bob")+"\n")
		if !strings.Contains(res.out, pamOK) {
			t.Fatalf("bob's own code refused after alice's attempt:\n%s", res.out)
		}
	})

	// A daemon that accepts the connection but never answers: the module
	// must give up after timeout= seconds and deny.
	t.Run("daemon stopped with SIGSTOP times out and denies", func(t *testing.T) {
		e.writePAMService("otp-timeout", "auth required pam_otpgate.so timeout=2\nauth required pam_permit.so\n")
		e.enroll("stopuser")
		if err := e.daemon.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := e.daemon.Signal(syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		res := e.pamtester("", "otp-timeout", "stopuser", "000000\n")
		elapsed := time.Since(start)
		if !strings.Contains(res.out, pamUnavail) || !strings.Contains(res.out, protocol.UnavailableText) {
			t.Fatalf("want %q and %q with a stopped daemon, got:\n%s", protocol.UnavailableText, pamUnavail, res.out)
		}
		if elapsed > 10*time.Second {
			t.Errorf("denial took %v with timeout=2", elapsed)
		}
	})
}

// TestPAMParallelSameCode runs 32 pamtester processes at once with the same
// valid code: exactly one may succeed.
func TestPAMParallelSameCode(t *testing.T) {
	const n = 32
	e := newPAMEnv(t)
	e.writePAMService("otp-alone", "auth required pam_otpgate.so\n")
	e.enroll("racer")
	code := e.code("racer")

	var wg sync.WaitGroup
	results := make([]pamResult, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = e.pamtester("", "otp-alone", "racer", code+"\n")
		}()
	}
	close(start)
	wg.Wait()

	// The others are replays (PAM_AUTH_ERR) until the replays lock the
	// account (the refused verdict, PAM_MAXTRIES).
	var ok, authErr int
	for i, r := range results {
		switch {
		case strings.Contains(r.out, pamOK):
			ok++
		case strings.Contains(r.out, pamAuthErr), strings.Contains(r.out, pamMaxTries):
			authErr++
		default:
			t.Errorf("run %d: unexpected result (exit %d):\n%s", i, r.exit, r.out)
		}
	}
	if ok != 1 || authErr != n-1 {
		t.Fatalf("%d runs with one code: %d succeeded, %d failed with PAM_AUTH_ERR or PAM_MAXTRIES; want 1 and %d", n, ok, authErr, n-1)
	}
}

// TestPAMPasswordAndCode checks password_and_code: one prompt, the code
// split off the end, the rest handed to pam_unix in PAM_AUTHTOK.
func TestPAMPasswordAndCode(t *testing.T) {
	e := newPAMEnv(t)
	e.writePAMService("otp-pw", `auth required pam_otpgate.so password_and_code
auth [success=1 default=ignore] pam_unix.so use_first_pass
auth requisite pam_deny.so
auth required pam_permit.so
`)
	// Without the module, pam_unix use_first_pass has no PAM_AUTHTOK.
	e.writePAMService("unix-first-pass", `auth required pam_otpgate.so
auth [success=1 default=ignore] pam_unix.so use_first_pass
auth requisite pam_deny.so
auth required pam_permit.so
`)
	const password = "correct horse 42"
	for _, u := range []string{"pwok", "pwbadpass", "pwbadcode", "pwnormal"} {
		e.enroll(u)
		e.setPassword(u, password)
	}
	tests := []struct {
		name, service, user string
		input               func() string
		want                string
		prompt              string
	}{
		{"right password and code", "otp-pw", "pwok", func() string { return password + e.code("pwok") }, pamOK, pamPassAndCode},
		{"wrong password, right code", "otp-pw", "pwbadpass", func() string { return "wrong" + e.code("pwbadpass") }, pamAuthErr, pamPassAndCode},
		{"right password, wrong code", "otp-pw", "pwbadcode", func() string { return password + e.wrongCode("pwbadcode") }, pamAuthErr, pamPassAndCode},
		// otpgated asks again; nothing more is typed.
		{"password typed alone is too short", "otp-pw", "pwbadcode", func() string { return "12345" }, "pamtester: Conversation error", pamPassAndCode},
		// The ordinary mode never sets PAM_AUTHTOK: pwnormal's Unix password
		// is set to the very code typed, so pam_unix use_first_pass would
		// accept it if the module handed the answer on.
		{"ordinary mode does not pass the answer on", "unix-first-pass", "pwnormal", func() string {
			code := e.code("pwnormal")
			e.setPassword("pwnormal", code)
			return code
		}, pamAuthErr, pamCodePrompt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.pamtester("", tt.service, tt.user, tt.input()+"\n")
			if !strings.Contains(res.out, tt.want) {
				t.Fatalf("want %q, got (exit %d):\n%s", tt.want, res.exit, res.out)
			}
			if !strings.Contains(res.out, tt.prompt) {
				t.Errorf("prompt %q missing:\n%s", tt.prompt, res.out)
			}
			if strings.Contains(res.out, "Password: ") {
				t.Errorf("pam_unix prompted for a password although use_first_pass:\n%s", res.out)
			}
		})
	}
}

// TestPAMSymbols checks that the loader exports only pam_sm_* and the Go
// library only its entry point, and that the Go code never uses
// pam_set_data (its cleanup would run Go code in forked children).
func TestPAMSymbols(t *testing.T) {
	container.Require(t, "nm")
	want := map[string][]string{
		"pam_otpgate.so": {"pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_chauthtok",
			"pam_sm_close_session", "pam_sm_open_session", "pam_sm_setcred"},
		"libpam_otpgate_go.so": {"otpgate_pam_authenticate"},
	}
	for file, syms := range want {
		t.Run(file, func(t *testing.T) {
			out, err := exec.Command("nm", "-D", "--defined-only", container.Bin(t, file)).CombinedOutput()
			if err != nil {
				t.Fatalf("nm: %v\n%s", err, out)
			}
			var got []string
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 3 {
					got = append(got, f[2])
				}
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(syms) {
				t.Errorf("nm -D --defined-only %s:\n got %v\nwant %v", file, got, syms)
			}
		})
	}
	t.Run("fork-safety rules of the Go module", func(t *testing.T) {
		dir := filepath.Join(container.RepoRoot(), "pam", "module")
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files := 0
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, imp := range f.Imports {
				switch p := strings.Trim(imp.Path.Value, `"`); p {
				case "os/exec", "os/signal", "os/user":
					t.Errorf("%s imports %s", name, p)
				}
			}
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{".SetData(", "pam_set_data(", "os.Stderr", "go func", "time.AfterFunc", "time.NewTimer", "time.NewTicker", "time.Tick(", "time.After("} {
				if strings.Contains(string(src), bad) && !strings.HasSuffix(name, "stress_on.go") {
					t.Errorf("%s uses %s", name, bad)
				}
			}
		}
		if files < 3 {
			t.Fatalf("found only %d Go files in %s", files, dir)
		}
	})
}
