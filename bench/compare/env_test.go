//go:build benchcompare

package compare

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// In-container paths.
const (
	toolDir     = "/opt/otpgate-bench" // pamload, bound read-only
	workDir     = "/tmp/bench"
	usersFile   = workDir + "/users.txt" // "user base32secret" for pamload
	oathDir     = "/var/lib/oath"
	oathFile    = oathDir + "/users.oath"
	oathPrist   = workDir + "/users.oath.pristine"
	stateDir    = "/var/lib/otpgate"
	statePrist  = "/var/lib/otpgate.pristine"
	daemonSock  = "/run/otpgate/otpgated.sock"
	daemonConf  = "/etc/otpgate/config.toml"
	auditLog    = "/var/log/otpgate-audit.log"
	firstUID    = 100000
	userPrefix  = "bu"
	cmdDeadline = 10 * time.Minute
	refLib      = "/usr/lib/otpgate/libpam_reference_go.so"
)

// services are the PAM services compared, in table order.
var services = []string{"permit", "ga", "oath", "otpgate"}

var serviceName = map[string]string{
	"permit":  "pam_permit (floor)",
	"ga":      "google-authenticator",
	"oath":    "pam_oath",
	"otpgate": "otpgate",
	"refgo":   "reference Go library (returns at once)",
}

var serviceStack = map[string]string{
	"permit":  "auth required pam_permit.so\naccount required pam_permit.so\n",
	"ga":      "auth required pam_google_authenticator.so\naccount required pam_permit.so\n",
	"oath":    "auth required pam_oath.so usersfile=" + oathFile + " window=1 digits=6\naccount required pam_permit.so\n",
	"otpgate": "auth required pam_otpgate.so\naccount required pam_permit.so\n",
	// The loader with the suite's reference library (testdata/reflib),
	// measured only in the fresh-process CPU cells.
	"refgo": "auth required pam_otpgate.so golib=" + refLib + "\naccount required pam_permit.so\n",
}

// altLibs are BENCH_FRESH_ALT's files in OTPGATE_BIN: other builds of
// libpam_otpgate_go.so that TestFresh measures as services alt0, alt1, ...
func altLibs() []string { return strings.Fields(os.Getenv("BENCH_FRESH_ALT")) }

// daemonConfig is otpgated's configuration: the built-in defaults (skew 1,
// like WINDOW_SIZE 3 and window=1 of the peers), with the audit log in a
// file rather than the test's stderr buffer.
var daemonConfig = fmt.Sprintf(`[daemon]
socket = %q
state_dir = %q

[audit]
destination = %q
`, daemonSock, stateDir, auditLog)

type benchUser struct {
	name   string
	uid    int
	secret []byte
}

func (u benchUser) base32() string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(u.secret)
}

// gaFile is ~/.google_authenticator as `google-authenticator -t -d -w 3`
// writes it (TOTP, DISALLOW_REUSE, WINDOW_SIZE 3, no RATE_LIMIT, 5 scratch
// codes).
func (u benchUser) gaFile() []byte {
	var b strings.Builder
	b.WriteString(u.base32() + "\n")
	b.WriteString("\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n")
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&b, "%08d\n", (u.uid*7919+i*104729)%100000000)
	}
	return []byte(b.String())
}

// env is one container with N users enrolled in all three modules.
type env struct {
	t       *testing.T
	c       *container.Container
	variant string // "tmpfs" or "ext4"
	n       int
	users   []benchUser
	daemon  *container.Process
	// altUsers offsets the first user of each BENCH_FRESH_ALT service.
	altUsers map[string]int
}

// newEnv starts a container and provisions n users. On "ext4" the homes,
// pam_oath's usersfile and otpgated's state directory are directories of
// the host's ext4 disk bound into the container, so fsync is real.
func newEnv(t *testing.T, variant string, n int, tools string) *env {
	t.Helper()
	opts := []container.Option{container.WithBind(tools, toolDir, true)}
	if variant == "ext4" {
		base, err := os.MkdirTemp("/var/tmp", "otpgate-bench-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
		for _, d := range []string{"home", "oath", "otpgate"} {
			if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		opts = append(opts,
			container.WithBind(filepath.Join(base, "home"), "/home", false),
			container.WithBind(filepath.Join(base, "oath"), oathDir, false),
			container.WithBind(filepath.Join(base, "otpgate"), stateDir, false))
	}
	e := &env{t: t, c: container.Start(t, opts...), variant: variant, n: n}
	start := time.Now()
	e.provision()
	t.Logf("%s N=%d: provisioned in %v", variant, n, time.Since(start).Round(time.Millisecond))
	return e
}

func (e *env) run(name string, args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdDeadline)
	defer cancel()
	out, _, err := e.c.Exec(ctx, name, args...)
	if err != nil {
		e.t.Fatalf("%v\n%s", err, out)
	}
	return out
}

func (e *env) path(p string) string { return e.c.Path(p) }

// provision writes n users straight into passwd, shadow and group (useradd
// would take minutes at 10 000), their homes with ~/.google_authenticator,
// pam_oath's usersfile, the PAM services, and imports the same secrets into
// otpgated with `otpgate admin import --from oath`.
func (e *env) provision() {
	t := e.t
	e.users = make([]benchUser, e.n)
	var passwd, shadow, group, list, oath strings.Builder
	for i := range e.users {
		u := benchUser{name: fmt.Sprintf("%s%06d", userPrefix, i), uid: firstUID + i, secret: make([]byte, 20)}
		if _, err := rand.Read(u.secret); err != nil {
			t.Fatal(err)
		}
		e.users[i] = u
		fmt.Fprintf(&passwd, "%s:x:%d:%d::/home/%s:/bin/bash\n", u.name, u.uid, u.uid, u.name)
		fmt.Fprintf(&shadow, "%s:*:20000:0:99999:7:::\n", u.name)
		fmt.Fprintf(&group, "%s:x:%d:\n", u.name, u.uid)
		fmt.Fprintf(&list, "%s %s\n", u.name, u.base32())
		fmt.Fprintf(&oath, "HOTP/T30 %s - %s\n", u.name, hex.EncodeToString(u.secret))
	}
	appendFile(t, e.path("/etc/passwd"), passwd.String())
	appendFile(t, e.path("/etc/shadow"), shadow.String())
	appendFile(t, e.path("/etc/group"), group.String())
	e.c.MkdirAll(t, workDir, 0o755)
	e.c.WriteFile(t, usersFile, []byte(list.String()), 0o644)
	e.c.MkdirAll(t, oathDir, 0o755)
	e.c.WriteFile(t, oathPrist, []byte(oath.String()), 0o600)
	e.c.WriteFile(t, oathFile, []byte(oath.String()), 0o600)
	for _, u := range e.users {
		home := e.path("/home/" + u.name)
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(home, u.uid, u.uid); err != nil {
			t.Fatal(err)
		}
	}
	e.resetGA()
	for svc, stack := range serviceStack {
		e.c.WriteFile(t, "/etc/pam.d/bench-"+svc, []byte(stack), 0o644)
	}

	// otpgate: the module where Debian keeps PAM modules, the Go library
	// where the loader looks for it, then the daemon, then the import.
	pamDir := strings.TrimSpace(e.run("pkg-config", "--variable=libdir", "pam")) + "/security"
	e.run("install", "-D", "-o", "root", "-g", "root", "-m", "0644", container.Bin(t, "pam_otpgate.so"), pamDir+"/pam_otpgate.so")
	e.run("install", "-D", "-o", "root", "-g", "root", "-m", "0644", container.Bin(t, "libpam_otpgate_go.so"), "/usr/lib/otpgate/libpam_otpgate_go.so")
	e.run("install", "-D", "-o", "root", "-g", "root", "-m", "0644", toolDir+"/"+refLibFile, refLib)
	e.altUsers = map[string]int{}
	for i, f := range altLibs() {
		e.altUsers[fmt.Sprintf("alt%d", i)] = (i + 1) * e.n / 8
		lib := fmt.Sprintf("/usr/lib/otpgate/libpam_alt%d_go.so", i)
		e.run("install", "-D", "-o", "root", "-g", "root", "-m", "0644", container.Bin(t, f), lib)
		e.c.WriteFile(t, fmt.Sprintf("/etc/pam.d/bench-alt%d", i), []byte("auth required pam_otpgate.so golib="+lib+"\naccount required pam_permit.so\n"), 0o644)
	}
	e.c.WriteFile(t, daemonConf, []byte(daemonConfig), 0o644)
	e.run("chmod", "0700", stateDir)
	e.startDaemon()
	// One command for every user: the usersfile pam_oath reads.
	start := time.Now()
	out := e.run(container.Bin(t, "otpgate"), "admin", "import", "--from", "oath", "--config", daemonConf, oathFile)
	t.Logf("otpgate admin import of %d users: %v (%s)", e.n, time.Since(start).Round(time.Millisecond), lastLine(out))
	// The pristine state, restored before every pass.
	e.daemon.Stop()
	e.run("rm", "-rf", statePrist)
	e.run("cp", "-a", stateDir, statePrist)
	e.startDaemon()
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func appendFile(t *testing.T, p, data string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) startDaemon() {
	e.t.Helper()
	e.daemon = e.c.Background(e.t, container.Bin(e.t, "otpgated"), "-config", daemonConf)
	e.c.WaitForSocket(e.t, daemonSock, 30*time.Second)
}

// resetGA rewrites every ~/.google_authenticator to its pristine content
// (no used codes), owned by the user, mode 0400, as the module wants it.
func (e *env) resetGA() {
	for _, u := range e.users {
		p := e.path("/home/" + u.name + "/.google_authenticator")
		tmp := p + ".bench"
		if err := os.WriteFile(tmp, u.gaFile(), 0o400); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Chown(tmp, u.uid, u.uid); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			e.t.Fatal(err)
		}
	}
}

// reset restores svc's state to what provision left (no code used, no
// failure counted), so that every measured login is the first use of a
// fresh code. Not timed.
func (e *env) reset(svc string) {
	e.t.Helper()
	switch svc {
	case "ga":
		e.resetGA()
	case "oath":
		e.run("cp", oathPrist, oathFile)
	case "otpgate":
		if err := e.daemon.Stop(); err != nil {
			e.t.Fatal(err)
		}
		e.run("sh", "-c", fmt.Sprintf("rm -rf %s/* && cp -a %s/. %s/", stateDir, statePrist, stateDir))
		e.startDaemon()
	}
}

// pass is one pamload run.
type pass struct {
	secs     float64
	cpuMS    float64 // workers' CPU time (pamload's cpu_ms)
	daemonMS float64 // otpgated's CPU time during the pass
	records  []record
	rcs      map[string]int
}

type record struct {
	user            int
	ok              bool
	rc              int
	total, auth, wl float64
	cpu             float64 // the transaction's process (fresh model only), ms
}

// pamload runs one pass of pamload for svc with the given flags.
func (e *env) pamload(svc string, args ...string) pass {
	e.t.Helper()
	recs := workDir + "/records.txt"
	argv := append([]string{"-s", "bench-" + svc, "-u", usersFile, "--records", recs}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), cmdDeadline)
	defer cancel()
	name := toolDir + "/pamload"
	if extra := os.Getenv("BENCH_PAMLOAD_ENV"); extra != "" {
		// Experiments only, e.g. GOMAXPROCS=1 for the Go runtime that
		// pam_otpgate starts in the PAM client.
		argv = append(append(strings.Fields(extra), name), argv...)
		name = "env"
	}
	d0 := e.daemonCPU()
	out, code, err := e.c.Exec(ctx, name, argv...)
	d1 := e.daemonCPU()
	if err != nil && code != 1 {
		e.t.Fatalf("pamload %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	p := pass{rcs: map[string]int{}, daemonMS: d1 - d0}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "RESULT ") {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "secs="); ok {
					p.secs, _ = strconv.ParseFloat(v, 64)
				}
				if v, ok := strings.CutPrefix(f, "cpu_ms="); ok {
					p.cpuMS, _ = strconv.ParseFloat(v, 64)
				}
			}
		}
		if rest, ok := strings.CutPrefix(line, "RC "); ok {
			// RC <code> <message...> count=<k>
			i := strings.LastIndex(rest, " count=")
			k, _ := strconv.Atoi(rest[i+len(" count="):])
			_, msg, _ := strings.Cut(rest[:i], " ")
			p.rcs[msg] += k
		}
	}
	f, err := os.Open(e.path(recs))
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var idx, user, ok, rc int
		var r record
		var start float64
		if _, err := fmt.Sscan(sc.Text(), &idx, &user, &ok, &rc, &r.total, &r.auth, &r.wl, &start, &r.cpu); err != nil {
			e.t.Fatalf("records line %q: %v", sc.Text(), err)
		}
		r.user, r.ok, r.rc = user, ok == 1, rc
		p.records = append(p.records, r)
	}
	return p
}

// daemonCPU is otpgated's user + system CPU time so far, in ms.
func (e *env) daemonCPU() float64 {
	if e.daemon == nil || e.daemon.HostPid() == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.daemon.HostPid()))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) * 1000 / 100 // USER_HZ is 100 on Linux
}

// versions describes the software measured.
func versions(t *testing.T) map[string]string {
	v := map[string]string{}
	q := func(key string, name string, args ...string) {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			v[key] = "?"
			return
		}
		v[key] = strings.TrimSpace(string(out))
	}
	for _, pkg := range []string{"libpam-google-authenticator", "libpam-oath", "liboath0", "libpam0g", "oathtool", "gcc"} {
		q(pkg, "dpkg-query", "-W", "-f", "${Version}", pkg)
	}
	q("kernel", "uname", "-r")
	q("go", "go", "env", "GOVERSION")
	q("otpgate", "git", "-C", container.RepoRoot(), "describe", "--always", "--dirty")
	q("cpu", "sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
	v["cpu"] = strings.Join(strings.Fields(strings.ReplaceAll(v["cpu"], "\n", " vCPU, ")), " ")
	q("memory", "sh", "-c", "awk '/MemTotal/{printf \"%.0f GiB\", $2/1048576}' /proc/meminfo")
	q("debian", "cat", "/etc/debian_version")
	return v
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
