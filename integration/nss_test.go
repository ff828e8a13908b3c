//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// libnssExtrausers is the NSS module of Debian's libnss-extrausers: users
// in /var/lib/extrausers/{passwd,group,shadow}, which nothing in otpgate
// reads as files. It stands for every source that is not /etc/passwd
// (LDAP, sssd/AD).
const libnssExtrausers = "/usr/lib/libnss_extrausers.so.2"

// nssOnlyNsswitch makes the container's NSS ask the extrausers source after
// the files.
const nssOnlyNsswitch = `passwd:         files extrausers
group:          files extrausers
shadow:         files extrausers
gshadow:        files
hosts:          files
`

// nssUser is a user of the extrausers source.
type nssUser struct {
	name     string
	uid, gid int
	shell    string
	expire   string // the shadow expiry field (days since 1970), "" for none
}

// home is u's home directory, which useExtraUsers creates.
func (u nssUser) home() string { return "/srv/nsshome/" + u.name }

// useExtraUsers puts users (and the group lines in groups) into the
// container's extrausers source only, with nsswitch.conf asking it after
// the files, creates their homes with the suite's public key (pub, may be
// nil) authorized, and checks that NSS sees them and /etc/passwd does not.
func useExtraUsers(t *testing.T, c *container.Container, users []nssUser, groups string, pub []byte) {
	t.Helper()
	if _, err := os.Stat(libnssExtrausers); err != nil {
		t.Fatalf("%v: apt-get install libnss-extrausers (scripts/install-deps.sh installs every prerequisite)", err)
	}
	var passwd, shadow strings.Builder
	for _, u := range users {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:NSS only:%s:%s\n", u.name, u.uid, u.gid, u.home(), u.shell)
		fmt.Fprintf(&shadow, "%s:*:19000:0:99999:7::%s:\n", u.name, u.expire)
	}
	c.MkdirAll(t, "/var/lib/extrausers", 0o755)
	c.WriteFile(t, "/var/lib/extrausers/passwd", []byte(passwd.String()), 0o644)
	c.WriteFile(t, "/var/lib/extrausers/group", []byte(groups), 0o644)
	c.WriteFile(t, "/var/lib/extrausers/shadow", []byte(shadow.String()), 0o640)
	c.WriteFile(t, "/etc/nsswitch.conf", []byte(nssOnlyNsswitch), 0o644)
	etcPasswd := string(c.ReadFile(t, "/etc/passwd"))
	c.MkdirAll(t, path.Dir(users[0].home()), 0o755)
	for _, u := range users {
		if strings.Contains(etcPasswd, "\n"+u.name+":") || strings.HasPrefix(etcPasswd, u.name+":") {
			t.Fatalf("%s is in the container's /etc/passwd: the test needs a user only NSS knows", u.name)
		}
		if got, _, err := c.Exec(context.Background(), "getent", "passwd", u.name); !strings.HasPrefix(got, u.name+":x:") {
			ls, _, _ := c.Exec(context.Background(), "sh", "-c", "ls -l /var/lib/extrausers "+libnssExtrausers+"; cat /var/lib/extrausers/passwd /etc/nsswitch.conf")
			t.Fatalf("getent passwd %s = %q (%v): the extrausers source is not in use:\n%s", u.name, got, err, ls)
		}
		c.MkdirAll(t, u.home(), 0o755)
		if pub != nil {
			c.MkdirAll(t, u.home()+"/.ssh", 0o700)
			c.WriteFile(t, u.home()+"/.ssh/authorized_keys", pub, 0o600)
		}
		c.Run(t, "chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), u.home())
	}
}

// TestSSHDLoginNSSOnlyUser: a user that exists only in a non-files NSS
// source logs in to otpgate-sshd with key and code, and the session runs
// with the uid, groups, home and shell of that source's record. A second
// such user, whose shadow entry (in the same source) says the account
// expired, is refused.
func TestSSHDLoginNSSOnlyUser(t *testing.T) {
	e := newSSHDEnv(t, "")
	const (
		gid      = 7300 // nssgrp, only in extrausers
		extraGID = 7310 // nssextra, which lists both users
	)
	user := nssUser{name: "nssuser", uid: 7301, gid: gid, shell: "/bin/bash"}
	expired := nssUser{name: "nssold", uid: 7302, gid: gid, shell: "/bin/sh", expire: "1"} // 1970-01-02
	useExtraUsers(t, e.c, []nssUser{user, expired},
		fmt.Sprintf("nssgrp:x:%d:\nnssextra:x:%d:%s,%s\n", gid, extraGID, user.name, expired.name),
		e.c.ReadFile(t, sshdWorkDir+"/id_ed25519.pub"))
	e.enroll(user.name)
	e.enroll(expired.name)

	t.Run("key and code: the session has the source's uid, groups, home and shell", func(t *testing.T) {
		r := e.ssh(user.name, "id_ed25519", e.code(user.name), nil, `id -u; id -G; echo "$HOME"; echo "$SHELL"`)
		want := fmt.Sprintf("%d\n%d %d\n%s\n/bin/bash\n", user.uid, gid, extraGID, user.home())
		if r.exit != 0 || !strings.Contains(r.out, want) {
			t.Fatalf("exit %d, output:\n%s\nwant it to contain:\n%s\notpgate-sshd:\n%s", r.exit, r.out, want, e.server.Output())
		}
		if !strings.Contains(r.prompts, sshdPrompt) {
			t.Errorf("askpass was not asked %q: %q", sshdPrompt, r.prompts)
		}
	})
	t.Run("wrong code is still refused", func(t *testing.T) {
		if r := e.ssh(user.name, "id_ed25519", e.wrongCode(user.name), nil, "echo IN"); r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("an account the source's shadow entry says expired is refused", func(t *testing.T) {
		r := e.ssh(expired.name, "id_ed25519", e.code(expired.name), nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !e.waitLog("account expired on 1970-01-02", sshdCmdLimit) {
			t.Errorf("otpgate-sshd did not log the expiry:\n%s", e.server.Output())
		}
	})
}

// TestCLIImportAllUsersNSSOnlyUser: admin import --from
// google-authenticator --all-users finds the file of a user that only a
// non-files NSS source knows, and oathtool's code for it is then accepted.
func TestCLIImportAllUsersNSSOnlyUser(t *testing.T) {
	e := newCLIEnv(t)
	u := nssUser{name: "nssga", uid: 7401, gid: 7400, shell: "/bin/sh"}
	useExtraUsers(t, e.c, []nssUser{u}, "nssga:x:7400:\n", nil)
	secret := otp.EncodeSecret(randomSecret(t, 20))
	file := u.home() + "/.google_authenticator"
	e.c.WriteFile(t, file, []byte(secret+"\n\" TOTP_AUTH\n"), 0o400)
	e.c.Run(t, "chown", fmt.Sprintf("%d:%d", u.uid, u.gid), file)

	out, code := e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--all-users")
	if code != 0 || !strings.Contains(out, "Imported 1 user(s).") {
		t.Fatalf("import --all-users: exit %d\n%s", code, out)
	}
	if st := e.status(u.name); st.State != protocol.StateActive {
		t.Fatalf("%s after the import: %+v", u.name, st)
	}
	if v := e.verify(u.name, e.oathtool(secret)); stepOutcome(v) != protocol.OutcomeAccept {
		t.Errorf("oathtool's code for the imported secret: %+v", v)
	}
}

// TestDoctorNSSOnlyRequiredGroup: otpgate doctor counts the members of a
// required group that only a non-files NSS source knows, by primary gid
// and by the group's member list, and warns that they are not enrolled.
// (libnss-extrausers serves no uid or gid below 1000, so the group is not
// sudo; administrators are found the same way.)
func TestDoctorNSSOnlyRequiredGroup(t *testing.T) {
	e := newDoctorEnv(t)
	primary := nssUser{name: "nssops", uid: 7501, gid: 7500, shell: "/bin/bash"}
	listed := nssUser{name: "nssmember", uid: 7502, gid: 7502, shell: "/bin/bash"}
	useExtraUsers(t, e.c, []nssUser{primary, listed}, "nssops:x:7500:nssmember\nnssmember:x:7502:\n", nil)
	if err := e.daemon.Stop(); err != nil {
		t.Logf("stop otpgated: %v", err)
	}
	e.c.WriteFile(t, pamConfig, []byte(strings.Replace(pamDaemonConfig, "required_users = [", `required_groups = ["nssops"]`+"\nrequired_users = [", 1)), 0o644)
	e.restartDaemon()

	r, _ := e.doctorRun()
	for _, f := range r.Findings {
		if f.ID != "required-not-enrolled" {
			continue
		}
		for _, u := range []string{primary.name, listed.name} {
			if !strings.Contains(f.Problem, u) {
				t.Errorf("the finding does not name %s: %q", u, f.Problem)
			}
		}
		if f.Severity != doctor.Warning {
			t.Errorf("severity %s, want %s", f.Severity, doctor.Warning)
		}
		return
	}
	t.Fatalf("no required-not-enrolled finding for the members of nssops; got:\n%s", describeReport(r))
}
