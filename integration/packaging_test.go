//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// makeIn runs make with args in the repository and returns its combined
// output and error.
func makeIn(t *testing.T, args ...string) (string, error) {
	t.Helper()
	repo := container.RepoRoot()
	if repo == "" {
		t.Fatal("repository root not found from the working directory")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-s", "-C", repo}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pamSecurityDir is the system PAM module directory as the Makefiles find it.
func pamSecurityDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("pkg-config", "--variable=libdir", "pam").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("pkg-config --variable=libdir pam: %v (apt-get install libpam0g-dev pkg-config)", err)
	}
	return strings.TrimSpace(string(out)) + "/security"
}

// installedTree lists every entry below root as "MODE /path", sorted.
func installedTree(t *testing.T, root string) []string {
	t.Helper()
	var entries []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		kind := "f"
		if d.IsDir() {
			kind = "d"
		}
		entries = append(entries, fmt.Sprintf("%s %04o %s", kind, info.Mode().Perm(), strings.TrimPrefix(p, root)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(entries)
	return entries
}

// dirsOf returns "d 0755 DIR" for every parent directory of the paths.
func dirsOf(paths ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		for d := filepath.Dir(p); d != "/" && !seen[d]; d = filepath.Dir(d) {
			seen[d] = true
			out = append(out, "d 0755 "+d)
		}
	}
	return out
}

// TestMakeInstall installs into a DESTDIR and checks the exact tree and
// modes, that an existing config.toml is kept, that the units pass
// systemd-analyze verify once installed, and that uninstall removes
// everything but the configuration and refuses while /etc/pam.d uses the
// module.
func TestMakeInstall(t *testing.T) {
	container.Require(t, "make", "pkg-config", "install", "systemd-analyze", "man")
	dest := t.TempDir()
	if out, err := makeIn(t, "install", "DESTDIR="+dest); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	pamDir := pamSecurityDir(t)
	files := map[string]string{
		"/usr/local/sbin/otpgated":                           "0755",
		"/usr/local/sbin/otpgate-sshd":                       "0755",
		"/usr/local/bin/otpgate":                             "0755",
		pamDir + "/pam_otpgate.so":                           "0644",
		"/usr/lib/otpgate/libpam_otpgate_go.so":              "0644",
		"/etc/otpgate/config.toml":                           "0644",
		"/etc/pam.d/otpgate-sshd":                            "0644",
		"/usr/local/lib/systemd/system/otpgated.service":     "0644",
		"/usr/local/lib/systemd/system/otpgate-sshd.service": "0644",
		"/usr/local/share/man/man1/otpgate.1":                "0644",
		"/usr/local/share/man/man5/otpgate.toml.5":           "0644",
		"/usr/local/share/man/man8/otpgated.8":               "0644",
		"/usr/local/share/man/man8/otpgate-sshd.8":           "0644",
		"/usr/local/share/man/man8/pam_otpgate.8":            "0644",
	}
	var want, paths []string
	for p, mode := range files {
		want = append(want, "f "+mode+" "+p)
		paths = append(paths, p)
	}
	want = append(want, dirsOf(paths...)...)
	sort.Strings(want)
	if got := installedTree(t, dest); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("installed tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	t.Run("units run the installed binaries", func(t *testing.T) {
		for _, u := range []string{"otpgated", "otpgate-sshd"} {
			unit, err := os.ReadFile(dest + "/usr/local/lib/systemd/system/" + u + ".service")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(unit), "\nExecStart=/usr/local/sbin/"+u+" -config /etc/otpgate/config.toml\n") ||
				strings.Contains(string(unit), "/usr/sbin/") {
				t.Errorf("%s.service does not run /usr/local/sbin/%s:\n%s", u, u, unit)
			}
		}
	})

	t.Run("units pass systemd-analyze verify", func(t *testing.T) {
		c := container.Start(t, container.WithBind(dest, "/stage", true))
		// tar keeps merged-/usr's /lib symlink, which cp -a would not.
		c.Run(t, "sh", "-c", "tar -C /stage -cf - . | tar -C / -xf - --keep-directory-symlink")
		units := []string{"/usr/local/lib/systemd/system/otpgated.service", "/usr/local/lib/systemd/system/otpgate-sshd.service"}
		if out := c.Run(t, "systemd-analyze", append([]string{"verify"}, units...)...); strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify warned:\n%s", out)
		}
		// The offline exposure score (0 best, 10 worst) of the daemon.
		out, _, _ := c.Exec(context.Background(), "systemd-analyze", "security", "--offline=yes", units[0])
		m := regexp.MustCompile(`Overall exposure level for otpgated.service: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", out)
		}
		t.Logf("systemd-analyze security --offline=yes: otpgated.service exposure %s", m[1])
		if score, err := strconv.ParseFloat(m[1], 64); err != nil || score > 2.0 {
			t.Errorf("otpgated.service exposure %s, want at most 2.0", m[1])
		}
		if out := c.Run(t, "/usr/local/sbin/otpgated", "-check-config", "-config", "/etc/otpgate/config.toml"); strings.Contains(out, "error") {
			t.Errorf("the installed config.toml does not check: %s", out)
		}
	})

	t.Run("existing config.toml is kept", func(t *testing.T) {
		edited := []byte("# edited by the admin\nissuer = \"mine\"\n")
		if err := os.WriteFile(dest+"/etc/otpgate/config.toml", edited, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := makeIn(t, "install", "DESTDIR="+dest)
		if err != nil {
			t.Fatalf("make install over an existing tree: %v\n%s", err, out)
		}
		if got, _ := os.ReadFile(dest + "/etc/otpgate/config.toml"); !bytes.Equal(got, edited) {
			t.Errorf("config.toml overwritten:\n%s", got)
		}
		if !strings.Contains(out, "keeping the existing") {
			t.Errorf("install did not say it kept config.toml:\n%s", out)
		}
	})

	t.Run("uninstall refuses while pam.d uses the module", func(t *testing.T) {
		if err := os.MkdirAll(dest+"/etc/pam.d", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dest+"/etc/pam.d/sshd", []byte("auth required pam_otpgate.so\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := makeIn(t, "uninstall", "DESTDIR="+dest)
		if err == nil || !strings.Contains(out, "still use pam_otpgate.so") {
			t.Fatalf("uninstall with pam.d using the module: err %v\n%s", err, out)
		}
		if _, err := os.Stat(dest + pamDir + "/pam_otpgate.so"); err != nil {
			t.Errorf("refused uninstall removed the module: %v", err)
		}
		if err := os.RemoveAll(dest + "/etc/pam.d"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("uninstall keeps only the configuration", func(t *testing.T) {
		if out, err := makeIn(t, "uninstall", "DESTDIR="+dest); err != nil {
			t.Fatalf("make uninstall: %v\n%s", err, out)
		}
		var left []string
		for _, e := range installedTree(t, dest) {
			if strings.HasPrefix(e, "f ") {
				left = append(left, e)
			}
		}
		if strings.Join(left, "\n") != "f 0644 /etc/otpgate/config.toml" {
			t.Errorf("files left after uninstall:\n%s", strings.Join(left, "\n"))
		}
	})
}

// TestManPages renders each man page with groff and man-db, which must not
// warn, and checks that otpgate.toml(5) documents every key of
// config.example.toml.
func TestManPages(t *testing.T) {
	container.Require(t, "groff", "man")
	dir := filepath.Join(container.RepoRoot(), "packaging", "man")
	pages := []struct{ file, name string }{
		{"otpgate.1", "otpgate"}, {"otpgated.8", "otpgated"}, {"otpgate-sshd.8", "otpgate-sshd"},
		{"pam_otpgate.8", "pam_otpgate"}, {"otpgate.toml.5", "otpgate.toml"},
	}
	for _, p := range pages {
		t.Run(p.file, func(t *testing.T) {
			path := filepath.Join(dir, p.file)
			var stderr bytes.Buffer
			cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", path)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("groff -ww: %v\n%s", err, stderr.String())
			}
			stderr.Reset()
			cmd = exec.Command("man", "--warnings", "-l", path)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=0", "LC_ALL=C.UTF-8")
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Errorf("man --warnings -l: %v\n%s", err, stderr.String())
			}
			text := regexp.MustCompile(".\b").ReplaceAllString(string(out), "")
			if !regexp.MustCompile(`(?m)^NAME\n\s+` + regexp.QuoteMeta(p.name) + ` - `).MatchString(text) {
				t.Errorf("rendered page has no NAME line for %s:\n%.400s", p.name, text)
			}
		})
	}
	t.Run("otpgate.toml.5 lists every key of config.example.toml", func(t *testing.T) {
		example, err := os.ReadFile(filepath.Join(container.RepoRoot(), "config.example.toml"))
		if err != nil {
			t.Fatal(err)
		}
		page, err := os.ReadFile(filepath.Join(dir, "otpgate.toml.5"))
		if err != nil {
			t.Fatal(err)
		}
		section, n := "", 0
		for _, line := range strings.Split(string(example), "\n") {
			if m := regexp.MustCompile(`^\[(\w+)\]$`).FindStringSubmatch(line); m != nil {
				section = m[1] + "."
				continue
			}
			m := regexp.MustCompile(`^(\w+) = `).FindStringSubmatch(line)
			if m == nil {
				continue
			}
			n++
			key := strings.ReplaceAll(section+m[1], "-", `\-`)
			if !strings.Contains(string(page), ".B "+key+" ") {
				t.Errorf("otpgate.toml.5 does not document %s: run python3 packaging/man/gen-otpgate.toml.5.py", section+m[1])
			}
		}
		if n < 40 {
			t.Errorf("only %d keys found in config.example.toml", n)
		}
	})
}

// debBuiltRE finds the package file in dpkg-deb's output.
var debBuiltRE = regexp.MustCompile(`building package 'otpgate' in '([^']+\.deb)'`)

// TestDeb builds the package with `make deb`, checks its contents, and
// installs and removes it with dpkg in a container: the install must leave
// /etc/pam.d untouched, the installed units must verify and the daemon's
// configuration check, and removal must be refused while /etc/pam.d uses
// the module.
func TestDeb(t *testing.T) {
	container.Require(t, "make", "dpkg-deb", "dpkg", "apt-get", "systemd-analyze", "man", "sha256sum")
	out, err := makeIn(t, "deb")
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	m := debBuiltRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("make deb did not name the package it built:\n%s", out)
	}
	deb := m[1]
	t.Cleanup(func() { os.Remove(deb) })
	pamDir := pamSecurityDir(t)

	listing, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v", err)
	}
	contents := map[string]string{} // path -> "mode owner"
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		contents[strings.TrimPrefix(strings.TrimSuffix(f[len(f)-1], "/"), ".")] = f[0] + " " + f[1]
	}
	for path, want := range map[string]string{
		"/usr/sbin/otpgated":                       "-rwxr-xr-x root/root",
		"/usr/sbin/otpgate-sshd":                   "-rwxr-xr-x root/root",
		"/usr/bin/otpgate":                         "-rwxr-xr-x root/root",
		pamDir + "/pam_otpgate.so":                 "-rw-r--r-- root/root",
		"/usr/lib/otpgate/libpam_otpgate_go.so":    "-rw-r--r-- root/root",
		"/etc/otpgate/config.toml":                 "-rw-r--r-- root/root",
		"/etc/pam.d/otpgate-sshd":                  "-rw-r--r-- root/root",
		"/lib/systemd/system/otpgated.service":     "-rw-r--r-- root/root",
		"/lib/systemd/system/otpgate-sshd.service": "-rw-r--r-- root/root",
		"/usr/share/man/man1/otpgate.1.gz":         "-rw-r--r-- root/root",
		"/usr/share/man/man5/otpgate.toml.5.gz":    "-rw-r--r-- root/root",
		"/usr/share/man/man8/otpgated.8.gz":        "-rw-r--r-- root/root",
		"/usr/share/man/man8/otpgate-sshd.8.gz":    "-rw-r--r-- root/root",
		"/usr/share/man/man8/pam_otpgate.8.gz":     "-rw-r--r-- root/root",
		"/usr/share/doc/otpgate/copyright":         "-rw-r--r-- root/root",
		"/usr/share/doc/otpgate/pam.md":            "-rw-r--r-- root/root",
	} {
		if got := contents[path]; got != want {
			t.Errorf("package entry %s: %q, want %q", path, got, want)
		}
	}
	// otpgate-sshd's own PAM service is the one file in /etc/pam.d: it
	// changes no other service's stack.
	ownPAM := map[string]bool{"/etc/pam.d": true, "/etc/pam.d/otpgate-sshd": true}
	for path := range contents {
		if strings.HasPrefix(path, "/etc/") && path != "/etc/otpgate" && path != "/etc/otpgate/config.toml" && !ownPAM[path] {
			t.Errorf("package ships %s: only /etc/otpgate/config.toml and /etc/pam.d/otpgate-sshd belong in /etc", path)
		}
		if !ownPAM[path] && (strings.Contains(path, "pam.d") || strings.Contains(path, "pam-configs") || strings.Contains(path, "sshd_config")) {
			t.Errorf("package ships %s, which would change the PAM or sshd configuration", path)
		}
	}
	if fields, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Depends").Output(); err != nil ||
		!strings.Contains(string(fields), "Package: otpgate\n") || !strings.Contains(string(fields), "libpam0g") {
		t.Errorf("control fields: %v\n%s", err, fields)
	}

	c := container.Start(t)
	// Every other service's file is as it was (the directory gains
	// otpgate-sshd, so its mtime is not compared).
	pamState := "cd /etc/pam.d && sha256sum $(ls | grep -vx otpgate-sshd) && ls -ln | grep -v -e ' otpgate-sshd$' -e '^total ' && stat -c '%a %n' ."
	before := c.Run(t, "sh", "-c", pamState)
	// As docs/quickstart.md says: apt installs the local file (and would
	// fetch missing dependencies).
	c.Run(t, "apt-get", "install", "-y", "-q", "--no-install-recommends", deb)
	if after := c.Run(t, "sh", "-c", pamState); after != before {
		t.Errorf("apt-get install changed /etc/pam.d:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got, want := c.ReadFile(t, "/etc/pam.d/otpgate-sshd"), readRepoFile(t, "packaging/pam.d/otpgate-sshd"); !bytes.Equal(got, want) {
		t.Errorf("installed /etc/pam.d/otpgate-sshd differs from packaging/pam.d/otpgate-sshd:\n%s", got)
	}
	if st := c.Run(t, "dpkg-query", "-W", "-f=${Status}", "otpgate"); st != "install ok installed" {
		t.Errorf("dpkg status %q", st)
	}
	if out := c.Run(t, "systemd-analyze", "verify", "/lib/systemd/system/otpgated.service", "/lib/systemd/system/otpgate-sshd.service"); strings.TrimSpace(out) != "" {
		t.Errorf("installed units: systemd-analyze verify warned:\n%s", out)
	}
	c.Run(t, "/usr/sbin/otpgated", "-check-config", "-config", "/etc/otpgate/config.toml")
	if out := c.Run(t, "man", "-w", "otpgated"); strings.TrimSpace(out) != "/usr/share/man/man8/otpgated.8.gz" {
		t.Errorf("man -w otpgated: %q", out)
	}
	for _, enabled := range []string{"/etc/systemd/system/multi-user.target.wants/otpgated.service", "/etc/systemd/system/multi-user.target.wants/otpgate-sshd.service"} {
		if _, code, _ := c.Exec(context.Background(), "test", "-e", enabled); code == 0 {
			t.Errorf("apt-get install enabled a service: %s exists", enabled)
		}
	}

	// Removal while sshd's stack needs the module would lock everyone out.
	c.WriteFile(t, "/etc/pam.d/sshd-otp", []byte("auth required pam_otpgate.so\n"), 0o644)
	out, code, _ := c.Exec(context.Background(), "dpkg", "-r", "otpgate")
	if code == 0 || !strings.Contains(out, "still use pam_otpgate.so") {
		t.Errorf("dpkg -r with /etc/pam.d using the module: exit %d\n%s", code, out)
	}
	c.Run(t, "test", "-f", pamDir+"/pam_otpgate.so")
	c.Run(t, "rm", "/etc/pam.d/sshd-otp")
	c.Run(t, "dpkg", "-r", "otpgate")
	if _, code, _ := c.Exec(context.Background(), "test", "-e", "/usr/sbin/otpgated"); code == 0 {
		t.Error("/usr/sbin/otpgated still present after dpkg -r")
	}
	c.Run(t, "test", "-f", "/etc/otpgate/config.toml") // a conffile stays until purge
	c.Run(t, "dpkg", "-P", "otpgate")
	if _, code, _ := c.Exec(context.Background(), "test", "-e", "/etc/otpgate/config.toml"); code == 0 {
		t.Error("/etc/otpgate/config.toml still present after dpkg -P")
	}
}
