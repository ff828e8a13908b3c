// Command otpgate-demo shows otpgate working end to end without changing
// the machine it runs on: it starts a throwaway namespace container (package
// internal/container, which the integration tests use too) running otpgated,
// OpenSSH's sshd on 127.0.0.1:2222 guarded by pam_otpgate (public key, then
// a code) and otpgate-sshd on 127.0.0.1:2223, creates the user "demo" with a
// fresh SSH key, enrolls "demo" with the real otpgate CLI, prints the QR
// code, the key and the recovery codes, and prints the ssh commands to try.
// Ctrl-C tears everything down.
//
// `sudo make demo` builds everything and runs it. With -check it logs in
// once through each server with a code from oathtool, using the very
// commands it prints, and exits 0 if both logins worked (and both servers
// refused the key alone); integration/demo_test.go runs it that way.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/otpgate/otpgate/internal/container"
	"github.com/otpgate/otpgate/internal/qrterm"
)

// In-container paths and ports of the demo.
const (
	demoUser    = "demo"
	configPath  = "/etc/otpgate/config.toml"
	socketPath  = "/run/otpgate/otpgated.sock"
	demoDir     = "/root/otpgate-demo" // keys, client config, askpass helper
	logDir      = "/var/log/otpgate-demo"
	golibPath   = "/usr/lib/otpgate/libpam_otpgate_go.so"
	opensshPort = 2222
	goSSHDPort  = 2223
	hostname    = "otpgate-demo"
	stepSeconds = 30
)

// demoConfig is the demo's /etc/otpgate/config.toml: the defaults of
// config.example.toml, with otpgate-sshd on 127.0.0.1:2223.
var demoConfig = fmt.Sprintf(`# otpgate demo configuration (see config.example.toml for every key).
issuer = "otpgate-demo"

[daemon]
socket = %q
state_dir = "/var/lib/otpgate"

[sshd]
listen = "127.0.0.1:%d"
host_key_dir = "/etc/otpgate/sshd"
`, socketPath, goSSHDPort)

// sshdConfig is OpenSSH's configuration: docs/pam.md's settings.
var sshdConfig = fmt.Sprintf(`# otpgate demo: public key, then a code from pam_otpgate (docs/pam.md).
ListenAddress 127.0.0.1
Port %d
HostKey %s/ssh_host_ed25519_key
PidFile /run/sshd-demo.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
AuthenticationMethods publickey,keyboard-interactive
PermitRootLogin no
PrintMotd no
# scp (which speaks SFTP by default) and sftp.
Subsystem sftp internal-sftp
`, opensshPort, demoDir)

// pamSSHD is /etc/pam.d/sshd inside: common-auth replaced by the module and
// pam_permit, as docs/pam.md says.
const pamSSHD = `# otpgate demo: sshd checked the key; PAM asks only for the code.
auth required pam_otpgate.so require_publickey
auth required pam_permit.so
@include common-account
@include common-session
`

// clientConfig is the ssh client configuration (-F) the printed commands
// use: the demo key, and known_hosts holding both servers' host keys.
var clientConfig = fmt.Sprintf(`Host *
  User %s
  IdentityFile %s/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile %s/known_hosts
  StrictHostKeyChecking yes
`, demoUser, demoDir, demoDir)

// askpass answers ssh's "Verification code:" prompt with oathtool. It
// hands out each 30-second step at most once (otpgated refuses a used code)
// and may give the next step's code, which otpgated accepts (totp.skew 1),
// so that logins in quick succession work; it waits when even that is used.
var askpass = `#!/bin/sh
# SSH_ASKPASS helper of the otpgate demo: prints demo's next unused TOTP code.
set -eu
dir=` + demoDir + `
now=$(( $(date +%s) / 30 ))
last=$(cat "$dir/last-step" 2>/dev/null || echo 0)
step=$(( last + 1 > now ? last + 1 : now ))
if [ "$step" -gt $(( now + 1 )) ]; then
	sleep $(( (step - 1) * 30 - $(date +%s) + 1 ))
fi
echo "$step" > "$dir/last-step"
exec oathtool --totp --now="@$(( step * 30 ))" -b "$(cat "$dir/totp-secret")"
`

// tools are the programs the demo runs, with their Debian packages.
var tools = []struct{ path, pkg string }{
	{"/usr/bin/nsenter", "util-linux"}, {"/usr/bin/setpriv", "util-linux"},
	{"/usr/sbin/sshd", "openssh-server"}, {"/usr/bin/ssh", "openssh-client"},
	{"/usr/bin/ssh-keygen", "openssh-client"}, {"/usr/bin/oathtool", "oathtool"},
	{"/usr/sbin/useradd", "passwd"}, {"/usr/bin/pkg-config", "pkg-config"},
}

// artifacts are the files `make build` puts in bin/.
var artifacts = []string{"otpgated", "otpgate", "otpgate-sshd", "pam_otpgate.so", "libpam_otpgate_go.so"}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses the flags, runs the demo and returns the exit status: 0, 1 on
// a failure, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("otpgate-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: otpgate-demo [-check] [-bin DIR]   (as root)

Starts otpgated, OpenSSH with pam_otpgate (127.0.0.1:2222) and otpgate-sshd
(127.0.0.1:2223) in a throwaway namespace container, enrolls the user demo
and prints the ssh commands to try. Ctrl-C tears it all down.

  -check     log in once through each server with a code from oathtool, then exit
  -bin DIR   the built artifacts (default: the directory of this program)
`)
	}
	check := fs.Bool("check", false, "")
	binDir := fs.String("bin", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "otpgate-demo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{out: stdout, check: *check}
	if err := d.run(ctx, *binDir); err != nil {
		fmt.Fprintf(stderr, "otpgate-demo: %v\n", err)
		return 1
	}
	return 0
}

// demo is one run of the demo.
type demo struct {
	out   io.Writer
	check bool
	bin   string
	c     *container.Container
	// exited receives the name of a server that stopped on its own.
	exited chan string
}

// run sets up the container, then either checks the logins or waits for
// Ctrl-C. The container is destroyed before it returns.
func (d *demo) run(ctx context.Context, binDir string) error {
	if err := d.prerequisites(binDir); err != nil {
		return err
	}
	// Bind the artifacts at their host path even outside the repository.
	if err := os.Setenv("OTPGATE_BIN", d.bin); err != nil {
		return fmt.Errorf("set OTPGATE_BIN: %w", err)
	}
	d.step("Starting a throwaway namespace container (nothing on this machine changes)")
	c, err := container.New(container.WithHostname(hostname))
	if err != nil {
		return err
	}
	d.c = c
	d.exited = make(chan string, 3)
	defer func() {
		d.step("Tearing down the container")
		if err := c.Close(); err != nil {
			fmt.Fprintf(d.out, "otpgate-demo: %v\n", err)
		}
	}()
	if err := d.setup(ctx); err != nil {
		return err
	}
	e, err := d.enroll(ctx)
	if err != nil {
		return err
	}
	d.show(e)
	if d.check {
		return d.checkLogins(ctx)
	}
	fmt.Fprintf(d.out, "\nThe demo runs until you press Ctrl-C.\n")
	select {
	case <-ctx.Done():
		fmt.Fprintln(d.out)
		return nil
	case name := <-d.exited:
		return fmt.Errorf("%s exited; its log is %s inside the container, shown above", name, logDir)
	}
}

// prerequisites checks root, the tools and the built artifacts, and
// settles the artifact directory.
func (d *demo) prerequisites(binDir string) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root (sudo make demo): the container needs namespaces and mounts")
	}
	var missing []string
	for _, t := range tools {
		if _, err := os.Stat(t.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", t.path, t.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s; scripts/install-deps.sh installs them all", strings.Join(missing, ", "))
	}
	if binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the artifacts: %w; pass -bin DIR", err)
		}
		binDir = filepath.Dir(exe)
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	d.bin = abs
	for _, a := range artifacts {
		if _, err := os.Stat(filepath.Join(abs, a)); err != nil {
			return fmt.Errorf("%s is missing from %s: run make build (or pass -bin DIR)", a, abs)
		}
	}
	return nil
}

// step announces what happens next.
func (d *demo) step(msg string) {
	fmt.Fprintf(d.out, "==> %s\n", msg)
}

// setup starts otpgated, sshd and otpgate-sshd and creates the user demo.
func (d *demo) setup(ctx context.Context) error {
	pamLibdir, err := d.output(ctx, "", nil, "pkg-config", "--variable=libdir", "pam")
	if err != nil {
		return fmt.Errorf("find the PAM module directory with pkg-config (apt-get install libpam0g-dev pkg-config): %w", err)
	}
	if strings.TrimSpace(pamLibdir) == "" {
		return errors.New("pkg-config names no PAM module directory (apt-get install libpam0g-dev pkg-config)")
	}
	pamDir := strings.TrimSpace(pamLibdir) + "/security"
	steps := [][]string{
		{"install", "-d", "-m", "0700", demoDir, "/var/lib/otpgate"},
		{"chmod", "0700", "/var/lib/otpgate"},
		{"install", "-d", "-m", "0755", "/etc/otpgate", "/run/sshd", logDir},
		{"install", "-D", "-m", "0644", d.bin + "/pam_otpgate.so", pamDir + "/pam_otpgate.so"},
		{"install", "-D", "-m", "0644", d.bin + "/libpam_otpgate_go.so", golibPath},
		{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "otpgate-demo host key", "-f", demoDir + "/ssh_host_ed25519_key"},
		{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "demo@" + hostname, "-f", demoDir + "/id_ed25519"},
		{"useradd", "-m", "-s", "/bin/bash", "-p", "*", demoUser},
		{"install", "-d", "-m", "0700", "-o", demoUser, "-g", demoUser, "/home/" + demoUser + "/.ssh"},
		{"install", "-m", "0600", "-o", demoUser, "-g", demoUser, demoDir + "/id_ed25519.pub", "/home/" + demoUser + "/.ssh/authorized_keys"},
	}
	d.step("Installing pam_otpgate, creating the user demo and its SSH key")
	for _, s := range steps {
		if _, err := d.output(ctx, "", nil, s[0], s[1:]...); err != nil {
			return err
		}
	}
	files := []struct {
		path, mode, data string
	}{
		{configPath, "0644", demoConfig},
		{demoDir + "/sshd_config", "0644", sshdConfig},
		{"/etc/pam.d/sshd", "0644", pamSSHD},
		{demoDir + "/ssh_config", "0644", clientConfig},
		{demoDir + "/askpass", "0755", askpass},
	}
	for _, f := range files {
		if err := d.writeFile(ctx, f.path, f.mode, f.data); err != nil {
			return err
		}
	}

	d.step("Starting otpgated")
	d.background("otpgated", d.bin+"/otpgated", "-config", configPath)
	if err := d.waitFor(ctx, "otpgated", "unix", socketPath); err != nil {
		return err
	}
	d.step(fmt.Sprintf("Starting OpenSSH sshd with pam_otpgate on 127.0.0.1:%d", opensshPort))
	d.background("sshd", "/usr/sbin/sshd", "-D", "-e", "-f", demoDir+"/sshd_config")
	d.step(fmt.Sprintf("Starting otpgate-sshd on 127.0.0.1:%d", goSSHDPort))
	d.background("otpgate-sshd", d.bin+"/otpgate-sshd", "-config", configPath)
	for name, port := range map[string]int{"sshd": opensshPort, "otpgate-sshd": goSSHDPort} {
		if err := d.waitFor(ctx, name, "tcp", "127.0.0.1:"+strconv.Itoa(port)); err != nil {
			return err
		}
	}
	// known_hosts from the host keys themselves, so the printed commands
	// keep StrictHostKeyChecking on.
	openssh, err := d.output(ctx, "", nil, "cat", demoDir+"/ssh_host_ed25519_key.pub")
	if err != nil {
		return err
	}
	gossh, err := d.output(ctx, "", nil, "ssh-keygen", "-y", "-f", "/etc/otpgate/sshd/ssh_host_ed25519_key")
	if err != nil {
		return err
	}
	known := fmt.Sprintf("[127.0.0.1]:%d %s\n[127.0.0.1]:%d %s\n", opensshPort, hostKey(openssh), goSSHDPort, hostKey(gossh))
	return d.writeFile(ctx, demoDir+"/known_hosts", "0644", known)
}

// hostKey returns "type base64" of a public key line.
func hostKey(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return strings.TrimSpace(line)
	}
	return f[0] + " " + f[1]
}

// background starts a server inside with its output in logDir/name.log; if
// it exits, its name is sent on d.exited.
func (d *demo) background(name, prog string, args ...string) {
	script := `exec "$@" >>` + logDir + "/" + name + `.log 2>&1`
	cmd := d.c.Command("/bin/sh", append([]string{"-c", script, name, prog}, args...)...)
	if err := cmd.Start(); err != nil {
		d.exited <- name
		return
	}
	go func() {
		_ = cmd.Wait()
		d.exited <- name
	}()
}

// waitFor connects to a server's address inside until it answers, for at
// most 15 seconds.
func (d *demo) waitFor(ctx context.Context, name, network, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := d.c.DialContext(ctx, network, addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case n := <-d.exited:
			return fmt.Errorf("%s exited at start:\n%s", n, d.log(n))
		default:
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s is not listening on %s (%w):\n%s", name, addr, err, d.log(name))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// log returns the log of a server started by background.
func (d *demo) log(name string) string {
	out, err := d.output(context.Background(), "", nil, "cat", logDir+"/"+name+".log")
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return out
}

// output runs a command inside as user ("" for root) and returns its
// combined output; the error quotes the output.
func (d *demo) output(ctx context.Context, user string, stdin io.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if user == "" {
		cmd = d.c.CommandContext(ctx, name, args...)
	} else {
		cmd = d.c.CommandAsContext(ctx, user, name, args...)
	}
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// writeFile writes data to the in-container file p with mode, owned by
// root.
func (d *demo) writeFile(ctx context.Context, p, mode, data string) error {
	_, err := d.output(ctx, "", strings.NewReader(data), "/bin/sh", "-c",
		`umask 077 && cat > "$1.tmp" && chmod "$2" "$1.tmp" && mv "$1.tmp" "$1"`, "sh", p, mode)
	return err
}

// enrollment is what `otpgate enroll` printed.
type enrollment struct {
	secret string   // base32
	uri    string   // otpauth://
	codes  []string // recovery codes
}

// enroll runs `otpgate enroll` as demo and confirms the new secret with
// oathtool's code.
func (d *demo) enroll(ctx context.Context) (enrollment, error) {
	d.step("Enrolling demo with `otpgate enroll` (confirmed with a code from oathtool)")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := d.c.CommandAsContext(ctx, demoUser, d.bin+"/otpgate", "enroll", "--no-qr")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return enrollment{}, err
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return enrollment{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	var transcript bytes.Buffer
	r := bufio.NewReader(io.TeeReader(pr, &transcript))
	fail := func(err error) (enrollment, error) {
		stdin.Close()
		_, _ = io.Copy(io.Discard, r)
		return enrollment{}, fmt.Errorf("otpgate enroll: %w\n%s", err, transcript.String())
	}

	var secret, uri string
	if err := readUntil(r, "Enter the code shown in your app to finish:", func(line string) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Key:"); ok {
			secret = strings.ReplaceAll(strings.TrimSpace(v), " ", "")
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "URI:"); ok {
			uri = strings.TrimSpace(v)
		}
	}); err != nil {
		return fail(err)
	}
	if secret == "" || uri == "" {
		return fail(errors.New("no Key: or URI: line in its output"))
	}
	if err := d.writeFile(ctx, demoDir+"/totp-secret", "0600", secret+"\n"); err != nil {
		return fail(err)
	}
	// The previous step's code (accepted with totp.skew 1): the askpass
	// helper then starts at the current step, and the first two logins
	// need no wait.
	step := time.Now().Unix()/stepSeconds - 1
	code, err := d.output(ctx, "", strings.NewReader(secret+"\n"), "oathtool", "--totp", fmt.Sprintf("--now=@%d", step*stepSeconds), "-b", "-")
	if err != nil {
		return fail(err)
	}
	if _, err := io.WriteString(stdin, strings.TrimSpace(code)+"\n"); err != nil {
		return fail(err)
	}
	if err := readUntil(r, "Save them to a file?", nil); err != nil {
		return fail(err)
	}
	if _, err := io.WriteString(stdin, "~/recovery-codes.txt\n"); err != nil {
		return fail(err)
	}
	stdin.Close()
	_, _ = io.Copy(io.Discard, r)
	if err := <-done; err != nil {
		return enrollment{}, fmt.Errorf("otpgate enroll: %w\n%s", err, transcript.String())
	}
	if err := d.writeFile(ctx, demoDir+"/last-step", "0600", fmt.Sprintf("%d\n", step)); err != nil {
		return enrollment{}, err
	}
	var codes []string
	for _, line := range strings.Split(transcript.String(), "\n") {
		if c := strings.TrimSpace(line); strings.HasPrefix(line, "    ") && len(c) == 14 && c[4] == '-' && c[9] == '-' {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 {
		return enrollment{}, fmt.Errorf("otpgate enroll printed no recovery codes:\n%s", transcript.String())
	}
	return enrollment{secret: secret, uri: uri, codes: codes}, nil
}

// readUntil reads r until a line contains want (a prompt is not
// newline-terminated, so partial lines are checked too), calling each for
// every complete line before it.
func readUntil(r *bufio.Reader, want string, each func(string)) error {
	var line strings.Builder
	for {
		b, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("ended before printing %q", want)
		}
		if b != '\n' {
			line.WriteByte(b)
			if strings.Contains(line.String(), want) {
				return nil
			}
			continue
		}
		if each != nil {
			each(line.String())
		}
		line.Reset()
	}
}

// show prints the enrollment and the commands to try.
func (d *demo) show(e enrollment) {
	opts := qrterm.Options{}
	if f, ok := d.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts.ANSI = os.Getenv("TERM") != "dumb" && os.Getenv("NO_COLOR") == ""
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			opts.MaxWidth = w
		}
	}
	fmt.Fprintf(d.out, "\nThe user demo is enrolled. Scan this QR code with your authenticator app:\n\n")
	if err := qrterm.Render(d.out, e.uri, opts); err != nil {
		fmt.Fprintf(d.out, "(no QR code: %v; type the key below)\n", err)
	}
	fmt.Fprintf(d.out, "\nOr add it by hand (time-based, SHA1, 6 digits, 30 seconds):\n  Key:  %s\n", groupKey(e.secret))
	fmt.Fprintf(d.out, "\nRecovery codes (each works once instead of a code; also in /home/demo/recovery-codes.txt):\n")
	for _, c := range e.codes {
		fmt.Fprintf(d.out, "    %s\n", c)
	}
	fmt.Fprintf(d.out, "\nLog in from inside the container's network (another terminal, as root).\n")
	fmt.Fprintf(d.out, "A code works once: for a second login, wait for the next one.\n\n")
	for _, s := range d.servers() {
		fmt.Fprintf(d.out, "  # %s, with the code from your app:\n  %s\n\n", s.name, shellJoin(d.interactive(s.port)))
	}
	fmt.Fprintf(d.out, "Without a phone: oathtool answers the prompt through SSH_ASKPASS:\n\n")
	for _, s := range d.servers() {
		fmt.Fprintf(d.out, "  %s\n\n", shellJoin(d.nonInteractive(s.port)))
	}
	fmt.Fprintf(d.out, "Logs: %s\n", shellJoin(d.nsenter("tail", "-f", logDir+"/otpgated.log", logDir+"/sshd.log", logDir+"/otpgate-sshd.log")))
	fmt.Fprintf(d.out, "Status: %s\n", shellJoin(d.nsenter(d.bin+"/otpgate", "admin", "show", demoUser)))
}

// server is one of the two SSH servers.
type server struct {
	name string
	port int
}

func (d *demo) servers() []server {
	return []server{
		{fmt.Sprintf("OpenSSH with pam_otpgate, port %d", opensshPort), opensshPort},
		{fmt.Sprintf("otpgate-sshd, port %d", goSSHDPort), goSSHDPort},
	}
}

// nsenter returns the host command line that runs argv inside the
// container's namespaces.
func (d *demo) nsenter(argv ...string) []string {
	return append([]string{"nsenter", "-t", strconv.Itoa(d.c.InitPid()), "-a"}, argv...)
}

// interactive is the ssh command line for a person with the app.
func (d *demo) interactive(port int) []string {
	return d.nsenter("ssh", "-F", demoDir+"/ssh_config", "-p", strconv.Itoa(port), demoUser+"@127.0.0.1")
}

// nonInteractive is the ssh command line whose code prompt is answered by
// the askpass helper with oathtool.
func (d *demo) nonInteractive(port int) []string {
	return d.nsenter("env", "SSH_ASKPASS="+demoDir+"/askpass", "SSH_ASKPASS_REQUIRE=force",
		"ssh", "-F", demoDir+"/ssh_config", "-p", strconv.Itoa(port), demoUser+"@127.0.0.1",
		"echo logged in as $(id -un) on $(hostname)")
}

// checkLogins runs, for each server, ssh with the key alone (which must be
// refused: a code is required) and then the printed non-interactive
// command (which must log in).
func (d *demo) checkLogins(ctx context.Context) error {
	want := "logged in as " + demoUser + " on " + hostname
	for _, s := range d.servers() {
		d.step("Checking " + s.name)
		keyOnly := d.nsenter("ssh", "-F", demoDir+"/ssh_config", "-o", "BatchMode=yes", "-p", strconv.Itoa(s.port), demoUser+"@127.0.0.1", "true")
		if out, err := d.hostRun(ctx, keyOnly); err == nil {
			return fmt.Errorf("%s let demo in with the key alone:\n%s", s.name, out)
		} else if !strings.Contains(out, "Permission denied") {
			return fmt.Errorf("%s: the key-only login failed, but not with Permission denied: %w\n%s", s.name, err, out)
		}
		out, err := d.hostRun(ctx, d.nonInteractive(s.port))
		if err != nil {
			return fmt.Errorf("%s: login with oathtool's code failed: %w\n%s", s.name, err, out)
		}
		if !strings.Contains(out, want) {
			return fmt.Errorf("%s: login printed %q, want %q", s.name, out, want)
		}
		fmt.Fprintf(d.out, "    %s\n", strings.TrimSpace(out))
	}
	d.step("Both logins worked")
	return nil
}

// hostRun runs a host command line (an nsenter line as printed) with a
// deadline and returns its combined output.
func (d *demo) hostRun(ctx context.Context, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// groupKey writes a base32 key in groups of four.
func groupKey(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// shellJoin quotes argv for a POSIX shell.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
