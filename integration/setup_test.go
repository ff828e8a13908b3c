//go:build integration

package integration

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/otp"
)

// setupWatched are the files otpgate setup may write, and the directories
// where it may leave backups or a drop-in.
var setupWatched = []string{"/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d", "/etc/pam.d/sshd",
	"/etc/pam.d/sudo", "/etc/pam.d/sudo-i", "/etc/ssh", "/etc/pam.d"}

// setupEnv is a pamEnv whose /etc/ssh and /etc/pam.d are the host's
// Debian 12 stock files (the container's /etc is an overlay of the
// host's), with otpgate setup run as an administrator would.
type setupEnv struct {
	*pamSSHD
}

func newSetupEnv(t *testing.T) *setupEnv {
	t.Helper()
	container.Require(t, "/usr/sbin/sshd", "ssh", "ssh-keygen", "sudo", "chpasswd", "usermod")
	e := newPAMEnv(t)
	c := e.c
	for _, f := range []string{"/etc/ssh/sshd_config", "/etc/pam.d/sshd", "/etc/pam.d/sudo", "/etc/pam.d/sudo-i", "/etc/pam.d/login"} {
		if _, err := os.Stat(c.Path(f)); err != nil {
			t.Fatalf("the container has no %s (a Debian 12 host with openssh-server and sudo is expected): %v", f, err)
		}
	}
	if s := string(c.ReadFile(t, "/etc/pam.d/sshd")); !strings.Contains(s, "\n@include common-auth\n") {
		t.Fatalf("/etc/pam.d/sshd is not Debian's stock file (no '@include common-auth'):\n%s", s)
	}
	c.MkdirAll(t, "/run/sshd", 0o755)
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/id_ed25519")
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/stranger")
	c.WriteFile(t, pamWorkDir+"/askpass", []byte(pamAskpass), 0o755)
	return &setupEnv{pamSSHD: &pamSSHD{pamEnv: e}}
}

// addAdmin creates an administrator (group sudo) with the suite's key and
// a password.
func (e *setupEnv) addAdmin(name string) {
	e.t.Helper()
	e.c.AddUser(e.t, name, "sudo")
	e.addSSHUser(name)
	e.setPassword(name, pamSudoPassword)
}

// setup runs otpgate setup as root with SUDO_USER=admin ("" for none) and
// returns its output and exit code.
func (e *setupEnv) setup(admin string, args ...string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if admin != "" {
		env = append(env, "SUDO_USER="+admin)
	}
	out, code, err := e.c.Exec(ctx, "env", append(append(env, e.bin, "setup"), args...)...)
	if code < 0 {
		e.t.Fatalf("otpgate setup %v: %v\n%s", args, err, out)
	}
	return out, code
}

// snapshot hashes every watched file and lists every watched directory.
func (e *setupEnv) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	for _, p := range setupWatched {
		fi, err := os.Stat(e.c.Path(p))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			continue
		}
		if fi.IsDir() {
			ents, err := os.ReadDir(e.c.Path(p))
			if err != nil {
				e.t.Fatal(err)
			}
			var names []string
			for _, d := range ents {
				names = append(names, d.Name())
			}
			sort.Strings(names)
			fmt.Fprintf(&b, "%s/: %s\n", p, strings.Join(names, " "))
			continue
		}
		sum := sha256.Sum256(e.c.ReadFile(e.t, p))
		fmt.Fprintf(&b, "%s: %s %04o\n", p, hex.EncodeToString(sum[:]), fi.Mode().Perm())
	}
	return b.String()
}

// refuses runs setup --apply, expects it to refuse with each piece of want
// in its output, and expects every watched file to be unchanged.
func (e *setupEnv) refuses(t *testing.T, admin, target string, want ...string) {
	t.Helper()
	before := e.snapshot()
	out, code := e.setup(admin, target, "--apply")
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, out)
	}
	for _, w := range append(want, "refusing to apply: nothing was changed") {
		if !strings.Contains(out, w) {
			t.Errorf("output does not say %q:\n%s", w, out)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("files changed although setup refused:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// totp computes user's current code with the project's otp package (the
// other logins use oathtool).
func (e *setupEnv) totp(user string) string {
	e.t.Helper()
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.secrets[user])
	if err != nil {
		e.t.Fatal(err)
	}
	return otp.TOTP(secret, time.Now(), otp.DefaultParams())
}

// TestSetup runs otpgate setup sshd and setup sudo on Debian 12's stock
// files in a container: the guards refuse without changing anything, the
// dry run prints the diff, --apply writes a configuration that the real
// sshd and sudo use (key then code, root with a key only, password then
// code for sudo), a second run is a no-op and otpgate doctor is content.
func TestSetup(t *testing.T) {
	e := newSetupEnv(t)
	e.addAdmin("admin1")
	e.enroll("admin1")
	e.addAdmin("admin2") // never enrolled
	e.addSSHUser("alice")
	e.enroll("alice")
	e.addAdmin("sudoer")
	e.enroll("sudoer")
	e.c.WriteFile(t, "/etc/sudoers.d/setuptest", []byte("Defaults timestamp_timeout=0\n"), 0o440)
	// root: the suite's key in /root/.ssh (a tmpfs in the container).
	e.c.MkdirAll(t, "/root/.ssh", 0o700)
	e.c.WriteFile(t, "/root/.ssh/authorized_keys", e.c.ReadFile(t, pamWorkDir+"/id_ed25519.pub"), 0o600)
	stock := map[string][]byte{}
	for _, f := range []string{"/etc/pam.d/sshd", "/etc/pam.d/sudo", "/etc/pam.d/sudo-i", "/etc/pam.d/login"} {
		stock[f] = e.c.ReadFile(t, f)
	}

	t.Run("before setup, doctor's fixes name otpgate setup", func(t *testing.T) {
		r := e.doctor()
		want := map[string]string{"sshd-kbdinteractive": "otpgate setup sshd", "sshd-authmethods-any": "otpgate setup sshd",
			"pam-sshd-missing": "otpgate setup sshd", "pam-sudo-missing": "otpgate setup sudo"}
		for _, f := range r.Findings {
			if cmd, ok := want[f.ID]; ok {
				delete(want, f.ID)
				if !strings.HasPrefix(f.Fix, "run '"+cmd+"'") {
					t.Errorf("%s: the fix does not start with %q: %s", f.ID, "run '"+cmd+"'", f.Fix)
				}
			}
		}
		for id := range want {
			t.Errorf("doctor on Debian's stock files does not report %s:\n%s", id, describeReport(r))
		}
	})
	t.Run("dry run prints the diff and changes nothing", func(t *testing.T) {
		before := e.snapshot()
		out, code := e.setup("admin1", "sshd")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, w := range []string{"+++ /etc/ssh/sshd_config.d/00-otpgate.conf", "+AuthenticationMethods publickey,keyboard-interactive",
			"+Match User root", "-@include common-auth", "+auth       required     pam_otpgate.so", "ok    otpgated answers",
			"ok    admin1 (who runs this) is enrolled", "Nothing was changed"} {
			if !strings.Contains(out, w) {
				t.Errorf("dry run does not say %q:\n%s", w, out)
			}
		}
		if after := e.snapshot(); after != before {
			t.Errorf("the dry run changed files:\n%s\n%s", before, after)
		}
	})
	t.Run("otpgated stopped: refuses", func(t *testing.T) {
		if err := e.daemon.Stop(); err != nil {
			t.Fatal(err)
		}
		defer e.restartDaemon()
		e.refuses(t, "admin1", "sshd", "otpgated does not answer on "+pamSocket, "systemctl start otpgated")
		e.refuses(t, "admin1", "sudo", "otpgated does not answer")
	})
	t.Run("loader missing: refuses", func(t *testing.T) {
		loader := e.pamModuleDir() + "/pam_otpgate.so"
		e.c.Run(t, "mv", loader, loader+".away")
		defer e.c.Run(t, "mv", loader+".away", loader)
		e.refuses(t, "admin1", "sshd", "the PAM module "+loader+" cannot be examined", "make -C pam install")
	})
	t.Run("admin not enrolled, root's password locked: refuses", func(t *testing.T) {
		e.c.Run(t, "usermod", "-p", "*", "root")
		e.refuses(t, "admin2", "sshd", "admin2 (who runs this) is not enrolled, and root cannot log in on the console", "otpgate enroll")
	})
	t.Run("admin not enrolled, root's password locked: --force goes ahead", func(t *testing.T) {
		defer func() { // back to the stock files for the tests below
			for _, svc := range []string{"sudo", "sudo-i"} {
				e.c.WriteFile(t, "/etc/pam.d/"+svc, stock["/etc/pam.d/"+svc], 0o644)
			}
			e.c.Run(t, "sh", "-c", "rm -f /etc/pam.d/sudo*.otpgate-backup-*")
		}()
		out, code := e.setup("admin2", "sudo", "--apply", "--force")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, w := range []string{"FAIL  admin2 (who runs this) is not enrolled, and root cannot log in on the console",
			"--force: going ahead although the administrator check failed.", "wrote /etc/pam.d/sudo (backup: "} {
			if !strings.Contains(out, w) {
				t.Errorf("output does not say %q:\n%s", w, out)
			}
		}
	})
	t.Run("otpgated stopped: --force does not override it", func(t *testing.T) {
		if err := e.daemon.Stop(); err != nil {
			t.Fatal(err)
		}
		defer e.restartDaemon()
		before := e.snapshot()
		out, code := e.setup("admin1", "sudo", "--apply", "--force")
		if code != 1 || !strings.Contains(out, "otpgated does not answer") || !strings.Contains(out, "refusing to apply: nothing was changed") {
			t.Errorf("exit %d, want 1 and a refusal:\n%s", code, out)
		}
		if after := e.snapshot(); after != before {
			t.Errorf("files changed although setup refused:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("admin not enrolled, console guarded: refuses", func(t *testing.T) {
		e.setPassword("root", "root-console-pw")
		login := strings.Replace(string(stock["/etc/pam.d/login"]), "@include common-auth\n", "@include common-auth\nauth required pam_otpgate.so\n", 1)
		e.c.WriteFile(t, "/etc/pam.d/login", []byte(login), 0o644)
		defer e.c.WriteFile(t, "/etc/pam.d/login", stock["/etc/pam.d/login"], 0o644)
		e.refuses(t, "admin2", "sshd", "the console login (/etc/pam.d/login) also uses pam_otpgate")
		e.refuses(t, "admin2", "sudo", "the console login (/etc/pam.d/login) also uses pam_otpgate")
	})
	t.Run("a drop-in read first that sets PasswordAuthentication yes: refuses, naming it", func(t *testing.T) {
		const aaa = "/etc/ssh/sshd_config.d/00-aaa.conf"
		e.c.WriteFile(t, aaa, []byte("PasswordAuthentication yes\n"), 0o644)
		defer e.c.Run(t, "rm", aaa)
		e.refuses(t, "admin1", "sshd", aaa+":1: passwordauthentication yes")
	})

	t.Run("apply sshd", func(t *testing.T) {
		out, code := e.setup("admin1", "sshd", "--apply")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, w := range []string{"wrote /etc/ssh/sshd_config.d/00-otpgate.conf (new file)", "wrote /etc/pam.d/sshd (backup: /etc/pam.d/sshd.otpgate-backup-",
			"systemctl reload ssh", "Keep this root session open"} {
			if !strings.Contains(out, w) {
				t.Errorf("output does not say %q:\n%s", w, out)
			}
		}
		backups, _ := filepath.Glob(e.c.Path("/etc/pam.d/sshd.otpgate-backup-*"))
		if len(backups) != 1 {
			t.Fatalf("backups of /etc/pam.d/sshd: %v", backups)
		}
		if data, _ := os.ReadFile(backups[0]); string(data) != string(stock["/etc/pam.d/sshd"]) {
			t.Errorf("the backup is not the original file")
		}
		if fi, err := os.Stat(backups[0]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("backup mode: %v %v", fi.Mode(), err)
		}
		if fi, err := os.Stat(e.c.Path("/etc/pam.d/sshd")); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("/etc/pam.d/sshd mode: %v %v", fi.Mode(), err)
		}
		root := e.c.Run(t, "/usr/sbin/sshd", "-T", "-C", "user=root,host=localhost,addr=127.0.0.1")
		if !strings.Contains(root, "\nauthenticationmethods publickey\n") {
			t.Errorf("sshd -T for root:\n%s", root)
		}
	})

	// The system sshd with the configuration as written, on a loopback port.
	e.c.Background(t, "/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config", "-p", fmt.Sprint(pamSSHDPort),
		"-o", "ListenAddress=127.0.0.1", "-o", "PidFile="+pamWorkDir+"/sshd.pid")
	e.c.WaitForPort(t, pamSSHDPort, 15*time.Second)

	t.Run("key and code (oathtool) log in", func(t *testing.T) {
		r := e.login("admin1", "id_ed25519", e.code("admin1"))
		if !r.loggedIn("admin1") {
			t.Fatalf("login refused (exit %d):\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.prompts, pamCodePrompt) {
			t.Errorf("no code prompt: %q", r.prompts)
		}
	})
	t.Run("key and code (otp package) log in", func(t *testing.T) {
		if r := e.login("alice", "id_ed25519", e.totp("alice")); !r.loggedIn("alice") {
			t.Fatalf("login refused (exit %d):\n%s", r.exit, r.out)
		}
	})
	t.Run("key without a code is refused", func(t *testing.T) {
		r := e.login("alice", "id_ed25519", "")
		if r.loggedIn("alice") || r.exit == 0 {
			t.Fatalf("logged in without a code:\n%s", r.out)
		}
		if r := e.login("alice", "id_ed25519", e.wrongCode("alice")); r.loggedIn("alice") || r.exit == 0 {
			t.Fatalf("logged in with a wrong code:\n%s", r.out)
		}
	})
	t.Run("no key, no prompt", func(t *testing.T) {
		r := e.login("admin1", "stranger", e.code("admin1"))
		if r.loggedIn("admin1") || r.exit == 0 || r.prompts != "" {
			t.Fatalf("without the key: exit %d, prompts %q:\n%s", r.exit, r.prompts, r.out)
		}
	})
	t.Run("root logs in with the key only", func(t *testing.T) {
		r := e.login("root", "id_ed25519", "")
		if !r.loggedIn("root") {
			t.Fatalf("root refused (exit %d):\n%s", r.exit, r.out)
		}
		if r.prompts != "" {
			t.Errorf("root was asked: %q", r.prompts)
		}
	})
	t.Run("second sshd run is a no-op", func(t *testing.T) {
		before := e.snapshot()
		out, code := e.setup("admin1", "sshd", "--apply")
		if code != 0 || !strings.Contains(out, "sshd is already configured: nothing to change.") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if after := e.snapshot(); after != before {
			t.Errorf("the second run changed files:\n%s\n%s", before, after)
		}
	})

	t.Run("a check after writing fails: every file is restored", func(t *testing.T) {
		// A stack whose include is missing passes the plan (the module line
		// is right) but not doctor's check of the written file.
		const inc = "/etc/pam.d/common-session-noninteractive"
		e.c.Run(t, "mv", inc, inc+".away")
		defer e.c.Run(t, "mv", inc+".away", inc)
		before := e.c.Run(t, "sha256sum", "/etc/pam.d/sudo", "/etc/pam.d/sudo-i")
		out, code := e.setup("admin1", "sudo", "--apply")
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		for _, w := range []string{"wrote /etc/pam.d/sudo (backup: ", "included file common-session-noninteractive cannot be read",
			"restored every file as it was"} {
			if !strings.Contains(out, w) {
				t.Errorf("output does not say %q:\n%s", w, out)
			}
		}
		if after := e.c.Run(t, "sha256sum", "/etc/pam.d/sudo", "/etc/pam.d/sudo-i"); after != before {
			t.Errorf("not restored:\n%s\n%s", before, after)
		}
		e.c.Run(t, "sh", "-c", "rm /etc/pam.d/sudo*.otpgate-backup-*")
	})
	t.Run("apply sudo, then sudo asks for the code", func(t *testing.T) {
		out, code := e.setup("admin1", "sudo", "--apply")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, svc := range []string{"sudo", "sudo-i"} {
			got := string(e.c.ReadFile(t, "/etc/pam.d/"+svc))
			want := strings.Replace(string(stock["/etc/pam.d/"+svc]), "@include common-auth\n", "@include common-auth\nauth       required   pam_otpgate.so\n", 1)
			if got != want {
				t.Errorf("/etc/pam.d/%s:\n%s\nwant:\n%s", svc, got, want)
			}
		}
		if r := e.sudo("sudoer", nil, pamSudoPassword, e.wrongCode("sudoer")); r.ran() || r.exit == 0 {
			t.Fatalf("sudo ran with a wrong code:\n%s", r.out)
		}
		r := e.sudo("sudoer", nil, pamSudoPassword, e.code("sudoer"))
		if !r.ran() {
			t.Fatalf("sudo refused (exit %d):\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("sudo did not ask for the code:\n%s", r.out)
		}
		out, code = e.setup("admin1", "sudo", "--apply")
		if code != 0 || !strings.Contains(out, "sudo is already configured") {
			t.Errorf("second sudo run: exit %d:\n%s", code, out)
		}
	})

	t.Run("otpgate doctor reports no problem with sshd, PAM and sudo, and advises nothing against them", func(t *testing.T) {
		r := e.doctor()
		t.Logf("doctor's findings after setup:\n%s", describeReport(r))
		for _, f := range r.Findings {
			if !setupFinding(f.ID) {
				continue
			}
			if f.Severity != doctor.Info {
				t.Errorf("doctor after setup: %s %s %s: %s", f.Severity, f.ID, f.Where, f.Problem)
			} else if !strings.HasPrefix(f.Fix, "none needed") {
				t.Errorf("doctor after setup advises a change to what setup wrote: %s %s: %s\nfix: %s", f.ID, f.Where, f.Problem, f.Fix)
			}
		}
		if !r.Has("sshd-root-key-only") {
			t.Errorf("doctor does not note root's key-only rule:\n%s", describeReport(r))
		}
	})
}

// setupFinding reports whether a doctor finding is about what otpgate
// setup writes or checks: sshd, the PAM stacks, sudo, the console and the
// administrators.
func setupFinding(id string) bool {
	for _, p := range []string{"sshd", "pam", "sudo", "console", "admin"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// doctor runs otpgate doctor --json as root and returns its report.
func (e *setupEnv) doctor() *doctor.Report {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, code, _ := e.c.Exec(ctx, e.bin, "doctor", "--json")
	if code < 0 || code > 1 {
		e.t.Fatalf("otpgate doctor: exit %d\n%s", code, out)
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("no report: %v\n%s", err, out)
	}
	return &r
}
