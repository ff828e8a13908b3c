//go:build benchimport

package importlarge

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

const (
	socket   = "/run/otpgate/otpgated.sock"
	confPath = "/etc/otpgate/config.toml"
	usersOut = "/tmp/import.out"
	deadline = 50 * time.Minute
)

var daemonConfig = fmt.Sprintf(`[daemon]
socket = %q
state_dir = "/var/lib/otpgate"

[audit]
destination = "/var/log/otpgate-audit.log"
`, socket)

func sizes(t *testing.T, env, def string) []int {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		v = def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want sizes such as 10000,100000", env, v)
		}
		if n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// site is a container with n extra accounts and otpgated running.
type site struct {
	t       *testing.T
	c       *container.Container
	secrets [][]byte
}

func newSite(t *testing.T, n int, homes bool) *site {
	container.Require(t, "/usr/bin/time", "getent")
	s := &site{t: t, c: container.Start(t), secrets: make([][]byte, n)}
	var passwd, group strings.Builder
	for i := range n {
		s.secrets[i] = make([]byte, 20)
		if _, err := rand.Read(s.secrets[i]); err != nil {
			t.Fatal(err)
		}
		name, uid := s.user(i), 200000+i
		fmt.Fprintf(&passwd, "%s:x:%d:%d::/home/%s:/bin/sh\n", name, uid, uid, name)
		fmt.Fprintf(&group, "%s:x:%d:\n", name, uid)
		if homes {
			home := s.c.Path("/home/" + name)
			file := path.Join(home, ".google_authenticator")
			secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(s.secrets[i])
			s.must(os.Mkdir(home, 0o700))
			s.must(os.WriteFile(file, []byte(secret+"\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n"), 0o400))
			s.must(os.Chown(file, uid, uid))
			s.must(os.Chown(home, uid, uid))
		}
	}
	s.appendTo("/etc/passwd", passwd.String())
	s.appendTo("/etc/group", group.String())
	s.c.MkdirAll(t, path.Dir(confPath), 0o755)
	s.c.WriteFile(t, confPath, []byte(daemonConfig), 0o644)
	s.c.Run(t, "chmod", "0700", "/var/lib/otpgate")
	s.c.Background(t, container.Bin(t, "otpgated"), "-config", confPath)
	s.c.WaitForSocket(t, socket, 30*time.Second)
	return s
}

func (s *site) user(i int) string { return fmt.Sprintf("iu%06d", i) }

func (s *site) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) appendTo(p, data string) {
	s.t.Helper()
	f, err := os.OpenFile(s.c.Path(p), os.O_WRONLY|os.O_APPEND, 0)
	s.must(err)
	_, err = f.WriteString(data)
	s.must(err)
	s.must(f.Close())
}

// liveHeap matches the heap left live after a collection in a
// GODEBUG=gctrace=1 line ("gc 7 @0.1s 1%: …, 14->14->7 MB, …").
var liveHeap = regexp.MustCompile(`^gc \d+ .* \d+->\d+->(\d+) MB`)

// timeImport runs otpgate admin import ARGS under /usr/bin/time -v (and
// GODEBUG=gctrace=1), its output to a file, and returns the wall time, the
// peak RSS in KiB and the largest heap left live after a collection in MB.
func (s *site) timeImport(args ...string) (time.Duration, int, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	argv := append([]string{"-v", "env", "GODEBUG=gctrace=1", "sh", "-c", `exec "$@" >` + usersOut, "sh", container.Bin(s.t, "otpgate"), "admin", "import"}, args...)
	out, code, err := s.c.Exec(ctx, "/usr/bin/time", argv...)
	if err != nil || code != 0 {
		s.t.Fatalf("otpgate admin import %v: exit %d, %v\n%s", args, code, err, out)
	}
	result := strings.TrimSpace(string(s.c.ReadFile(s.t, usersOut)))
	if i := strings.LastIndex(result, "\nImported "); i < 0 || !strings.Contains(result[i:], fmt.Sprintf("Imported %d user(s).", len(s.secrets))) {
		s.t.Fatalf("import summary missing:\n%.500s", result[max(0, len(result)-500):])
	}
	var wall time.Duration
	rss, live := -1, 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Maximum resident set size (kbytes): "); ok {
			rss, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "Elapsed (wall clock) time (h:mm:ss or m:ss): "); ok {
			wall = parseClock(s.t, v)
		}
		if m := liveHeap.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			live = max(live, n)
		}
	}
	if rss < 0 || wall == 0 {
		s.t.Fatalf("no figures in /usr/bin/time's output:\n%s", out)
	}
	return wall, rss, live
}

// parseClock parses /usr/bin/time's h:mm:ss or m:ss.ss.
func parseClock(t *testing.T, v string) time.Duration {
	var d time.Duration
	for _, part := range strings.Split(v, ":") {
		f, err := strconv.ParseFloat(part, 64)
		if err != nil {
			t.Fatalf("wall time %q: %v", v, err)
		}
		d = d*60 + time.Duration(f*float64(time.Second))
	}
	return d
}

// TestImportUsersfile imports a pam_oath usersfile of each size in one
// command.
func TestImportUsersfile(t *testing.T) {
	for _, n := range sizes(t, "BENCH_IMPORT_OATH", "10000,100000") {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			s := newSite(t, n, false)
			var b strings.Builder
			for i, secret := range s.secrets {
				fmt.Fprintf(&b, "HOTP/T30 %s - %s 0 123456 2026-01-01T00:00:00L\n", s.user(i), hex.EncodeToString(secret))
			}
			s.c.WriteFile(t, "/root/users.oath", []byte(b.String()), 0o600)
			wall, rss, live := s.timeImport("--from", "oath", "/root/users.oath")
			t.Logf("| usersfile (%.1f MB) | %d | %v | %.2f ms | %.1f MB | %d MB |", float64(b.Len())/1e6, n, wall.Round(100*time.Millisecond),
				float64(wall.Microseconds())/1000/float64(n), float64(rss)/1024, live)
		})
	}
}

// TestImportAllUsers imports --from google-authenticator --all-users on a
// host with each number of accounts that have the file (no scratch codes:
// hashing them, argon2id, would dominate).
func TestImportAllUsers(t *testing.T) {
	for _, n := range sizes(t, "BENCH_IMPORT_GA", "10000") {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			s := newSite(t, n, true)
			wall, rss, live := s.timeImport("--from", "google-authenticator", "--all-users")
			t.Logf("| --all-users | %d | %v | %.2f ms | %.1f MB | %d MB |", n, wall.Round(100*time.Millisecond),
				float64(wall.Microseconds())/1000/float64(n), float64(rss)/1024, live)
		})
	}
}
