package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	core "github.com/otpgate/otpgate/internal/container"
)

// toolPackages maps the tools the integration suites use to the Debian
// packages that provide them.
var toolPackages = map[string]string{
	"nsenter": "util-linux", "setpriv": "util-linux", "unshare": "util-linux",
	"mount": "mount", "findmnt": "util-linux", "su": "util-linux", "setsid": "util-linux",
	"script": "bsdutils", "logger": "bsdutils",
	"useradd": "passwd", "groupadd": "passwd", "usermod": "passwd", "userdel": "passwd", "chpasswd": "passwd",
	"ip": "iproute2", "ss": "iproute2",
	"sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client", "ssh-keyscan": "openssh-client",
	"sudo": "sudo", "pamtester": "pamtester", "oathtool": "oathtool", "tmux": "tmux",
	"zbarimg": "zbar-tools", "convert": "imagemagick", "strace": "strace",
	"bash": "bash", "id": "coreutils", "timeout": "coreutils", "ps": "procps", "pgrep": "procps",
	"expect": "expect", "socat": "socat", "nc": "netcat-openbsd",
}

// searchPath is where Require looks for tools besides $PATH (a test run by a
// user's shell may lack the sbin directories).
var searchPath = filepath.SplitList(core.DefaultPath)

// Require fails the test (t.Fatal, never a skip) unless it runs as root and
// every tool exists; the message names the Debian package of each missing
// tool and the script that installs them all. A tool may be a name looked up
// in $PATH and the standard directories, or an absolute path.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, fmt.Sprintf("the integration tests must run as root (they create namespaces and mounts); euid is %d", os.Geteuid()))
	}
	var missing []string
	for _, tool := range tools {
		if findTool(tool) != "" {
			continue
		}
		pkg := toolPackages[filepath.Base(tool)]
		if pkg == "" {
			pkg = "the package providing it (apt-file search " + filepath.Base(tool) + ")"
		}
		missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", tool, pkg))
	}
	if len(missing) > 0 {
		problems = append(problems, "missing tools: "+strings.Join(missing, ", ")+"; scripts/install-deps.sh installs every prerequisite")
	}
	if len(problems) > 0 {
		t.Fatal("container: " + strings.Join(problems, "; "))
	}
}

// findTool returns the path of tool, or "".
func findTool(tool string) string {
	if filepath.IsAbs(tool) {
		if isExecutable(tool) {
			return tool
		}
		return ""
	}
	if p, err := exec.LookPath(tool); err == nil {
		return p
	}
	for _, dir := range searchPath {
		if p := filepath.Join(dir, tool); isExecutable(p) {
			return p
		}
	}
	return ""
}

// isExecutable reports whether p is a regular file with an execute bit.
func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// Bin returns the path of the built artifact name: $OTPGATE_BIN/<name>
// (`make test` sets OTPGATE_BIN to the repository's bin/). When OTPGATE_BIN
// is unset it falls back to <repository>/bin and logs so. It fails the test
// if the file is missing, saying to run `make build`. The path is valid both
// on the host and inside containers (both directories are bound at their
// host paths).
func Bin(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("OTPGATE_BIN")
	if dir == "" {
		repo := RepoRoot()
		if repo == "" {
			t.Fatalf("container: OTPGATE_BIN is not set and the repository root was not found from the working directory; run the suites with `make test`")
		}
		dir = filepath.Join(repo, "bin")
		t.Logf("container: OTPGATE_BIN is not set; using %s", dir)
	}
	if !filepath.IsAbs(dir) {
		t.Fatalf("container: OTPGATE_BIN=%q must be an absolute path", dir)
	}
	p := filepath.Join(dir, name)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("container: %s not found (%v): run `make build` first", p, err)
	}
	if st.IsDir() {
		t.Fatalf("container: %s is a directory, not a built artifact", p)
	}
	return p
}
