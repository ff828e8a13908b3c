//go:build integration

package integration

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/otp"
)

// Ports and settings of BenchmarkSSHCompare; the four servers run side by
// side in one container.
const (
	cmpGAPort      = 2231 // OpenSSH + pam_google_authenticator
	cmpPAMPort     = 2232 // OpenSSH + pam_otpgate
	cmpSSHDPort    = 2233 // otpgate-sshd
	cmpFloorPort   = 2234 // OpenSSH, publickey only
	cmpKex         = "curve25519-sha256"
	cmpRoundsEnv   = "OTPGATE_SSH_ROUNDS"
	cmpRoundsDef   = 100
	cmpMinUsers    = 200
	cmpPromptWords = "Verification code"
)

// cmpSSHDConfig is the sshd_config of the three OpenSSH servers: docs/pam.md's
// settings, with the key exchange fixed so that it costs all four alike.
const cmpSSHDConfig = `ListenAddress 127.0.0.1
Port %d
HostKey %s/hostkey
PidFile %s/%s.pid
UsePAM yes
PubkeyAuthentication yes
KbdInteractiveAuthentication %s
PasswordAuthentication no
AuthenticationMethods %s
PermitRootLogin no
UseDNS no
KexAlgorithms ` + cmpKex + `
LogLevel ERROR
`

// cmpStack is an /etc/pam.d service of the comparison: the second factor
// (if any) and pam_permit in place of common-auth, as docs/pam.md says;
// account and session as Debian ships them, the same for all three.
const cmpStack = `%sauth required pam_permit.so
@include common-account
@include common-session
`

// cmpVariant is one server of the comparison.
type cmpVariant struct {
	name    string
	key     string // in the benchmark's metric names
	port    int
	twoFA   bool
	service string // PAM service (and the name sshd runs as); "" for otpgate-sshd
}

// BenchmarkSSHCompare measures a whole SSH login, from starting
// `ssh -T user@127.0.0.1 true` to its exit, against four servers running in
// one container: OpenSSH with publickey,keyboard-interactive through
// pam_google_authenticator (WINDOW_SIZE 3, DISALLOW_REUSE, TOTP_AUTH); the
// same through pam_otpgate; otpgate-sshd; and OpenSSH with publickey only
// (the floor, same PAM account and session stack). All four use ed25519 host
// keys and curve25519-sha256 (server and client side), so the key exchange
// is the same everywhere.
//
// Each round logs in once to every server, in an order rotated by one each
// round, so drift in the machine's load hits all four alike. Every login is a
// different user, enrolled with one secret both in otpgated and in
// ~/.google_authenticator, so no code is a replay. The codes are computed
// before the timer, by otp.TOTP and by oathtool (which must agree; odd rounds
// use oathtool's), and handed to ssh through SSH_ASKPASS. The figures are
// per-server median and p90 and the paired median overhead over the floor
// (per round: server minus floor); every login must succeed, and one wrong
// code per 2FA server must be refused.
//
// It takes a few minutes; the rounds come from OTPGATE_SSH_ROUNDS (default
// 100), not from b.N:
//
//	OTPGATE_BIN=$PWD/bin go test -tags integration -run '^$' -bench SSHCompare -benchtime 1x -timeout 30m -v ./integration/
func BenchmarkSSHCompare(b *testing.B) {
	rounds := cmpRoundsDef
	if s := os.Getenv(cmpRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 4 {
			b.Fatalf("%s=%q: want a number ≥ 4", cmpRoundsEnv, s)
		}
		rounds = n
	}
	container.Require(b, "/usr/sbin/sshd", "ssh", "ssh-keygen", "oathtool")
	e := newPAMEnv(b)
	c := e.c
	if _, err := os.Stat(c.Path(e.pamModuleDir() + "/pam_google_authenticator.so")); err != nil {
		b.Fatalf("pam_google_authenticator.so: %v (scripts/install-deps.sh installs libpam-google-authenticator)", err)
	}
	variants := []cmpVariant{
		{name: "openssh+google-authenticator", key: "ga", port: cmpGAPort, twoFA: true, service: "sshd-ga"},
		{name: "openssh+pam_otpgate", key: "pam", port: cmpPAMPort, twoFA: true, service: "sshd-otpgate"},
		{name: "otpgate-sshd", key: "sshd", port: cmpSSHDPort, twoFA: true},
		{name: "openssh publickey only (floor)", key: "floor", port: cmpFloorPort, service: "sshd-floor"},
	}

	// Keys, askpass and the three OpenSSH servers. OpenSSH names its PAM
	// service after the program, so each runs through a symlink of that name.
	c.MkdirAll(b, "/run/sshd", 0o755)
	c.Run(b, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/hostkey")
	c.Run(b, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/id_ed25519")
	c.WriteFile(b, pamWorkDir+"/askpass", []byte(pamAskpass), 0o755)
	moduleLine := map[string]string{
		"sshd-ga":      "auth required pam_google_authenticator.so\n",
		"sshd-otpgate": "auth required pam_otpgate.so\n",
		"sshd-floor":   "",
	}
	for _, v := range variants {
		if v.service == "" {
			continue
		}
		kbd, methods := "yes", "publickey,keyboard-interactive"
		if !v.twoFA {
			kbd, methods = "no", "publickey"
		}
		e.writePAMService(v.service, fmt.Sprintf(cmpStack, moduleLine[v.service]))
		conf := fmt.Sprintf("%s/%s_config", pamWorkDir, v.service)
		c.WriteFile(b, conf, []byte(fmt.Sprintf(cmpSSHDConfig, v.port, pamWorkDir, pamWorkDir, v.service, kbd, methods)), 0o644)
		c.Run(b, "ln", "-s", "/usr/sbin/sshd", pamWorkDir+"/"+v.service)
		c.Background(b, pamWorkDir+"/"+v.service, "-D", "-e", "-f", conf)
	}
	// otpgate-sshd reads otpgated's sections from its own file.
	c.WriteFile(b, sshdConf, []byte(pamDaemonConfig+fmt.Sprintf(`
[sshd]
listen = "127.0.0.1:%d"
host_key_dir = "/etc/otpgate/sshd"
log_level = "info"
max_startups = 100
per_source_max_startups = 0
`, cmpSSHDPort)), 0o644)
	server := c.Background(b, container.Bin(b, "otpgate-sshd"), "-config", sshdConf)
	for _, v := range variants {
		c.WaitForPort(b, v.port, 15*time.Second)
	}

	// Users: one per login (a warm-up per server, the rounds, a wrong code
	// per 2FA server), each with the client key authorized and the same
	// secret in otpgated and in ~/.google_authenticator.
	nUsers := max(cmpMinUsers, len(variants)*(rounds+1)+len(variants))
	users := make([]string, nUsers)
	secrets := map[string][]byte{}
	pub := c.ReadFile(b, pamWorkDir+"/id_ed25519.pub")
	setupStart := time.Now()
	for i := range users {
		u := fmt.Sprintf("cmp%04d", i)
		users[i] = u
		e.addUser(u)
		home := "/home/" + u
		c.MkdirAll(b, home+"/.ssh", 0o700)
		c.WriteFile(b, home+"/.ssh/authorized_keys", pub, 0o600)
		c.Chown(b, home+"/.ssh", u)
		c.Chown(b, home+"/.ssh/authorized_keys", u)
		e.enroll(u)
		raw, err := otp.DecodeSecret(e.secrets[u])
		if err != nil {
			b.Fatal(err)
		}
		secrets[u] = raw
		c.WriteFile(b, home+"/.google_authenticator", cmpGAFile(e.secrets[u], i), 0o400)
		c.Chown(b, home+"/.google_authenticator", u)
	}
	b.Logf("%d users set up in %v", nUsers, time.Since(setupStart).Round(time.Millisecond))

	next := 0
	takeUser := func() string {
		if next == len(users) {
			b.Fatal("out of users")
		}
		next++
		return users[next-1]
	}
	agreed := 0
	// codeFor computes user's current code with otp.TOTP and with oathtool,
	// and fails unless they agree (once more if a step ended in between).
	codeFor := func(user string, useOathtool bool) string {
		for try := 0; ; try++ {
			mine := otp.TOTP(secrets[user], time.Now(), otp.DefaultParams())
			theirs := e.code(user)
			if mine == theirs {
				agreed++
				if useOathtool {
					return theirs
				}
				return mine
			}
			if try > 0 {
				b.Fatalf("%s: otp.TOTP gives %s, oathtool %s", user, mine, theirs)
			}
		}
	}
	n := 0
	login := func(v cmpVariant, user, code, logLevel string) sshResult {
		n++
		log := fmt.Sprintf("%s/askpass-%d.log", pamWorkDir, n)
		ctx, cancel := context.WithTimeout(context.Background(), pamCmdLimit)
		defer cancel()
		args := []string{"ASKPASS_CODE=" + code, "ASKPASS_LOG=" + log,
			"SSH_ASKPASS=" + pamWorkDir + "/askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
			"ssh", "-F", "/dev/null", "-p", strconv.Itoa(v.port), "-T",
			"-i", pamWorkDir + "/id_ed25519", "-o", "IdentitiesOnly=yes",
			"-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1",
			"-o", "PreferredAuthentications=publickey,keyboard-interactive",
			"-o", "KexAlgorithms=" + cmpKex, "-o", "HostKeyAlgorithms=ssh-ed25519",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "ConnectTimeout=10", "-o", "LogLevel=" + logLevel,
			user + "@127.0.0.1", "true"}
		start := time.Now()
		out, exit, err := c.Exec(ctx, "env", args...)
		r := sshResult{out: out, exit: exit, elapsed: time.Since(start), prompts: e.readOptional(log)}
		if ctx.Err() != nil {
			b.Fatalf("%s: ssh %s hung (%v):\n%s", v.name, user, err, out)
		}
		return r
	}
	// check fails unless r is a successful login as twoFA says: a 2FA
	// server asked for the code once, the floor asked nothing.
	check := func(v cmpVariant, user string, r sshResult) {
		if r.exit != 0 {
			b.Fatalf("%s: login %s refused (exit %d):\n%s", v.name, user, r.exit, r.out)
		}
		if got := strings.Count(r.prompts, cmpPromptWords); got != map[bool]int{true: 1, false: 0}[v.twoFA] {
			b.Fatalf("%s: login %s: askpass prompts %q", v.name, user, r.prompts)
		}
	}
	byUser := map[string]cmpVariant{}

	// Warm-up, untimed: one login per server, verbose, to see the
	// negotiated algorithms.
	kexLine := regexp.MustCompile(`kex: algorithm: (\S+)`)
	cipherLine := regexp.MustCompile(`kex: server->client cipher: (\S+)`)
	for _, v := range variants {
		u := takeUser()
		code := ""
		if v.twoFA {
			code = codeFor(u, false)
		}
		r := login(v, u, code, "DEBUG1")
		check(v, u, r)
		byUser[u] = v
		kex, cipher := kexLine.FindStringSubmatch(r.out), cipherLine.FindStringSubmatch(r.out)
		if kex == nil || kex[1] != cmpKex || cipher == nil {
			b.Fatalf("%s: key exchange not %s:\n%s", v.name, cmpKex, r.out)
		}
		b.Logf("%s: kex %s, cipher %s", v.name, kex[1], cipher[1])
	}

	// The measurement.
	times := make([][]time.Duration, len(variants)) // [variant][round]
	for i := range times {
		times[i] = make([]time.Duration, rounds)
	}
	load0 := cmpLoadavg()
	b.ResetTimer()
	measureStart := time.Now()
	for r := 0; r < rounds; r++ {
		for k := range variants {
			vi := (k + r) % len(variants)
			v := variants[vi]
			u := takeUser()
			code := ""
			if v.twoFA {
				code = codeFor(u, r%2 == 1)
			}
			res := login(v, u, code, "ERROR")
			check(v, u, res)
			byUser[u] = v
			times[vi][r] = res.elapsed
		}
	}
	measured := time.Since(measureStart)
	b.StopTimer()
	load1 := cmpLoadavg()

	// A wrong code is refused by every 2FA server.
	rejected := map[string]time.Duration{}
	for _, v := range variants {
		if !v.twoFA {
			continue
		}
		u := takeUser()
		good, err := strconv.Atoi(codeFor(u, false))
		if err != nil {
			b.Fatal(err)
		}
		res := login(v, u, fmt.Sprintf("%06d", (good+500000)%1000000), "ERROR")
		if res.exit == 0 || !strings.Contains(res.prompts, cmpPromptWords) {
			b.Fatalf("%s: wrong code for %s not refused after a prompt (exit %d, prompts %q):\n%s", v.name, u, res.exit, res.prompts, res.out)
		}
		rejected[v.name] = res.elapsed
	}

	// Each server did its own work: google-authenticator recorded the step
	// of every login it accepted and otpgated saw none of them; otpgated
	// accepted every code of the other two, pam_otpgate's under its service.
	daemonLog := e.daemon.Output()
	for u, v := range byUser {
		ga := string(c.ReadFile(b, "/home/"+u+"/.google_authenticator"))
		usedStep := regexp.MustCompile(`(?m)^" DISALLOW_REUSE \d+$`).MatchString(ga)
		verified := regexp.MustCompile(`op=verify user=` + u + ` [^\n]*outcome=accept[^\n]*`).FindString(daemonLog)
		switch {
		case v.port == cmpGAPort && (!usedStep || verified != ""):
			b.Errorf("%s: %s: step recorded %v, otpgated verified %q", v.name, u, usedStep, verified)
		case v.twoFA && v.port != cmpGAPort && (usedStep || verified == ""):
			b.Errorf("%s: %s: google-authenticator recorded a step %v, otpgated verified %q", v.name, u, usedStep, verified)
		case v.port == cmpPAMPort && !strings.Contains(verified, "service=sshd-otpgate"):
			b.Errorf("%s: %s: otpgated audited %q, want service=sshd-otpgate", v.name, u, verified)
		case !v.twoFA && (usedStep || verified != ""):
			b.Errorf("%s: %s: a second factor was checked", v.name, u)
		}
	}
	accepted := regexp.MustCompile(`msg="login accepted" [^\n]*second_factor=success`).FindAllString(server.Output(), -1)
	if got, want := len(accepted), rounds+1; got != want {
		b.Errorf("otpgate-sshd logged %d logins with a code, want %d", got, want)
	}

	// Report.
	floor := len(variants) - 1
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%d rounds × %d servers in %v; load average %s at the start, %s at the end; %d codes checked against oathtool\n\n",
		rounds, len(variants), measured.Round(time.Second), load0, load1, agreed)
	tbl.WriteString("| server | n | p50 ms | p90 ms | paired median over the floor, ms [95% CI] | wrong code refused in, ms |\n|---|---|---|---|---|---|\n")
	for vi, v := range variants {
		over := "—"
		if vi != floor {
			over = cmpPairedMedian(times[vi], times[floor])
		}
		rej := "—"
		if d, ok := rejected[v.name]; ok {
			rej = fmt.Sprintf("%.1f", cmpMS(d))
		}
		fmt.Fprintf(&tbl, "| %s | %d | %.1f | %.1f | %s | %s |\n", v.name, rounds,
			cmpMS(cmpQuantile(times[vi], 0.5)), cmpMS(cmpQuantile(times[vi], 0.9)), over, rej)
		b.ReportMetric(cmpMS(cmpQuantile(times[vi], 0.5)), v.key+"-p50-ms")
	}
	fmt.Fprintf(&tbl, "\npaired median, pam_otpgate minus google-authenticator: %s ms; otpgate-sshd minus google-authenticator: %s ms\n",
		cmpPairedMedian(times[1], times[0]), cmpPairedMedian(times[2], times[0]))
	b.Log("\n" + tbl.String())
}

// cmpGAFile is ~/.google_authenticator as `google-authenticator -t -d -w 3`
// writes it: TOTP, DISALLOW_REUSE, WINDOW_SIZE 3, no RATE_LIMIT, 5 scratch
// codes.
func cmpGAFile(secret string, seed int) []byte {
	var s strings.Builder
	s.WriteString(secret + "\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n")
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&s, "%08d\n", (seed*7919+i*104729+10000000)%100000000)
	}
	return []byte(s.String())
}

// cmpQuantile is the nearest-rank q-cmpQuantile of ds.
func cmpQuantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// cmpPairedMedian renders the median of a[i]-b[i] in ms with a distribution-free
// 95% confidence interval (order statistics of the differences, binomial).
func cmpPairedMedian(a, b []time.Duration) string {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = cmpMS(a[i] - b[i])
	}
	slices.Sort(d)
	n := len(d)
	med := d[n/2]
	if n%2 == 0 {
		med = (d[n/2-1] + d[n/2]) / 2
	}
	// The largest k with P(Binomial(n, 1/2) < k) ≤ 0.025.
	k, cum, p := 0, 0.0, math.Pow(0.5, float64(n))
	for j := 0; j < n; j++ {
		if cum+p > 0.025 {
			break
		}
		cum += p
		k = j + 1
		p = p * float64(n-j) / float64(j+1)
	}
	if k == 0 {
		return fmt.Sprintf("%+.1f", med)
	}
	return fmt.Sprintf("%+.1f [%+.1f, %+.1f]", med, d[k-1], d[n-k])
}

// cmpMS is d in milliseconds.
func cmpMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cmpLoadavg is the first three fields of /proc/loadavg.
func cmpLoadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
