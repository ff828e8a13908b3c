//go:build integration

package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
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

// TestSSHDLoginNSSOnlyUser: a user that exists only in a non-files NSS
// source logs in to otpgate-sshd with key and code, and the session runs
// with the uid, groups, home and shell of that source's record. A second
// such user, whose shadow entry (in the same source) says the account
// expired, is refused.
func TestSSHDLoginNSSOnlyUser(t *testing.T) {
	if _, err := os.Stat(libnssExtrausers); err != nil {
		t.Fatalf("%v: apt-get install libnss-extrausers (scripts/install-deps.sh installs every prerequisite)", err)
	}
	e := newSSHDEnv(t, "")
	c := e.c
	const (
		user, expired = "nssuser", "nssold"
		uid, gid      = 7301, 7300 // gid: the group nssgrp, also only in extrausers
		extraGID      = 7310       // nssextra, which lists both users
		oldUID        = 7302
	)
	c.MkdirAll(t, "/var/lib/extrausers", 0o755)
	c.WriteFile(t, "/var/lib/extrausers/passwd", []byte(fmt.Sprintf(
		"%s:x:%d:%d:NSS only:/srv/nsshome/%s:/bin/bash\n%s:x:%d:%d::/srv/nsshome/%s:/bin/sh\n",
		user, uid, gid, user, expired, oldUID, gid, expired)), 0o644)
	c.WriteFile(t, "/var/lib/extrausers/group", []byte(fmt.Sprintf(
		"nssgrp:x:%d:\nnssextra:x:%d:%s,%s\n", gid, extraGID, user, expired)), 0o644)
	// No expiry for nssuser; nssold expired on 1970-01-02.
	c.WriteFile(t, "/var/lib/extrausers/shadow", []byte(fmt.Sprintf(
		"%s:*:19000:0:99999:7:::\n%s:*:19000:0:99999:7::1:\n", user, expired)), 0o640)
	c.WriteFile(t, "/etc/nsswitch.conf", []byte(nssOnlyNsswitch), 0o644)
	if strings.Contains(string(c.ReadFile(t, "/etc/passwd")), user+":") {
		t.Fatalf("%s is in the container's /etc/passwd: the test needs a user only NSS knows", user)
	}
	if got := strings.TrimSpace(c.Run(t, "getent", "passwd", user)); !strings.HasPrefix(got, user+":x:") {
		t.Fatalf("getent passwd %s = %q: the extrausers source is not in use", user, got)
	}
	pub := c.ReadFile(t, sshdWorkDir+"/id_ed25519.pub")
	c.MkdirAll(t, "/srv/nsshome", 0o755)
	for _, u := range []struct {
		name string
		uid  int
	}{{user, uid}, {expired, oldUID}} {
		home := "/srv/nsshome/" + u.name
		c.MkdirAll(t, home, 0o755)
		c.MkdirAll(t, home+"/.ssh", 0o700)
		c.WriteFile(t, home+"/.ssh/authorized_keys", pub, 0o600)
		c.Run(t, "chown", "-R", fmt.Sprintf("%d:%d", u.uid, gid), home)
		e.enroll(u.name)
	}

	t.Run("key and code: the session has the source's uid, groups, home and shell", func(t *testing.T) {
		r := e.ssh(user, "id_ed25519", e.code(user), nil, `id -u; id -G; echo "$HOME"; echo "$SHELL"`)
		want := fmt.Sprintf("%d\n%d %d\n/srv/nsshome/%s\n/bin/bash\n", uid, gid, extraGID, user)
		if r.exit != 0 || !strings.Contains(r.out, want) {
			t.Fatalf("exit %d, output:\n%s\nwant it to contain:\n%s\notpgate-sshd:\n%s", r.exit, r.out, want, e.server.Output())
		}
		if !strings.Contains(r.prompts, sshdPrompt) {
			t.Errorf("askpass was not asked %q: %q", sshdPrompt, r.prompts)
		}
	})
	t.Run("wrong code is still refused", func(t *testing.T) {
		if r := e.ssh(user, "id_ed25519", e.wrongCode(user), nil, "echo IN"); r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("an account the source's shadow entry says expired is refused", func(t *testing.T) {
		r := e.ssh(expired, "id_ed25519", e.code(expired), nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !e.waitLog("account expired on 1970-01-02", sshdCmdLimit) {
			t.Errorf("otpgate-sshd did not log the expiry:\n%s", e.server.Output())
		}
	})
}
