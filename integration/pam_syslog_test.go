//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
)

// syslogListener is a /dev/log for one command: it stores each datagram as
// a line in the file named by its first argument until one holds the word
// in its second (sent by logger(1) once the command is done), or fails
// after a minute without one.
const syslogListener = `import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
s.settimeout(60)
print("ready", flush=True)
with open(sys.argv[1], "w") as f:
    while True:
        d = s.recv(65536).decode(errors="replace")
        if sys.argv[2] in d:
            break
        f.write(d.replace("\n", " ") + "\n")
        f.flush()
`

// syslogScript runs in a mount namespace of its own, where /dev is an
// overlay of the container's /dev (the host's devtmpfs) so that /dev/log
// can be created without touching the host: it starts the listener, runs
// pamtester for a code ($1) and for an unreachable otpgated, ends the
// listener and prints what it received.
const syslogScript = `set -eu
d=/run/devlog
mkdir -p $d/upper $d/work
mount -t overlay overlay -o lowerdir=/dev,upperdir=$d/upper,workdir=$d/work /dev
python3 $d/listener.py $d/lines otpgate-test-end > $d/ready &
listener=$!
n=0
until grep -q ready $d/ready; do
	n=$((n + 1)); [ $n -lt 600 ] || { echo "the /dev/log listener did not start" >&2; exit 1; }
	sleep 0.05
done
echo "$1" | timeout 30 pamtester otp-debug loguser authenticate || true
timeout 30 pamtester otp-nosock loguser authenticate < /dev/null || true
logger otpgate-test-end
wait $listener
cat $d/lines
`

// TestPAMSyslog: the module logs through libpam's pam_syslog(3), as the
// loader does: syslog(3) at LOG_AUTHPRIV, under the application's name,
// each line tagged "pam_otpgate(SERVICE:auth)" by libpam, with the user,
// service and remote host; debug lines only with the debug argument; the
// reason for failing closed always; never the code.
func TestPAMSyslog(t *testing.T) {
	container.Require(t, "unshare", "python3", "logger")
	e := newPAMEnv(t)
	e.writePAMService("otp-debug", "auth required pam_otpgate.so debug\n")
	e.writePAMService("otp-nosock", "auth required pam_otpgate.so socket=/run/otpgate/absent.sock\n")
	e.enroll("loguser")
	e.c.MkdirAll(t, "/run/devlog", 0o755)
	e.c.WriteFile(t, "/run/devlog/listener.py", []byte(syslogListener), 0o644)
	e.c.WriteFile(t, "/run/devlog/run.sh", []byte(syslogScript), 0o755)
	code := e.code("loguser")
	out := e.c.Run(t, "unshare", "--mount", "--propagation", "private", "sh", "/run/devlog/run.sh", code)

	// <87> is LOG_AUTHPRIV|LOG_DEBUG, <83> LOG_AUTHPRIV|LOG_ERR; syslog(3)
	// names the program, then libpam the module, service and PAM function.
	wants := []struct{ what, prefix, text string }{
		{"the debug line of the step", `<87>`, `pamtester: pam_otpgate(otp-debug:auth): user="loguser" service="otp-debug" rhost="": step 1: 0 messages, 1 prompts`},
		{"the debug line of the verdict", `<87>`, `pamtester: pam_otpgate(otp-debug:auth): user="loguser" service="otp-debug" rhost="": verdict success`},
		{"the reason for failing closed", `<83>`, `pamtester: pam_otpgate(otp-nosock:auth): user="loguser" service="otp-nosock" rhost="": otpgated is not reachable at /run/otpgate/absent.sock`},
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, w := range wants {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w.prefix) && strings.Contains(l, w.text)
		}
		if !found {
			t.Errorf("no syslog line %s %q (%s); got:\n%s", w.prefix, w.text, w.what, out)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, code) {
			t.Errorf("a syslog line holds the code: %s", l)
		}
	}
}
