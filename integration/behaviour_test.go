//go:build integration

package integration

// One behaviour table, run against every front end: each case (right code,
// code with a space, wrong code, long paste, replay, clock off, recovery
// code, locked out, otpgated down, enrollment at login, exempt network,
// remembered device) must give the same verdict and the same words through
// pamtester, the real OpenSSH sshd with pam_otpgate, the real sudo,
// otpgate-sshd with the real ssh client, and the otpgate CLI's own code
// prompt (otpgate disable), wherever the case applies.

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
)

// behaviourExemptFrom is the client address inside policy.exempt_networks;
// every other login comes from 127.0.0.1.
const behaviourExemptFrom = "127.0.0.2"

// behaviourEnrollUsers are the users of the enrollment-at-login case on the
// front ends it applies to (their prefix, then the case's user): required
// and never enrolled.
var behaviourEnrollUsers = []string{"btosenroll", "btgsenroll"}

// behaviourDaemonConfig is otpgated's configuration for the table: every
// policy a case needs at once (each case has its own user, so they do not
// interfere), and a short failure limit.
var behaviourDaemonConfig = fmt.Sprintf(`[daemon]
socket = %q
state_dir = "/var/lib/otpgate"

[policy]
default = "optional"
required_users = ["%s"]
exempt_networks = ["%s/32"]
remember = "1h"
enroll_on_login = true

[rate_limit]
max_failures = 3
lockout = "1h"
max_lockout = "1h"
`, pamSocket, strings.Join(behaviourEnrollUsers, `", "`), behaviourExemptFrom)

// behaviourDaemon is the otpgated a family of front ends shares: its
// environment's fixture, with the secrets the table enrolled.
type behaviourDaemon struct {
	f *otpgatedFixture
}

// in is the fixture with failures reported to t: the table's rows are
// subtests, which must not fail the test that made the environment.
func (d *behaviourDaemon) in(t *testing.T) *otpgatedFixture {
	f := *d.f
	f.t = t
	return &f
}

// stop stops otpgated; start starts it again and waits for its socket.
// Both belong to the test that made the environment: otpgated must
// outlive the row that stopped it.
func (d *behaviourDaemon) stop() {
	if err := d.f.daemon.Stop(); err != nil {
		d.f.t.Fatal(err)
	}
}

func (d *behaviourDaemon) start() { d.f.restartDaemon() }

// enroll stores a fresh random secret (and the recovery codes, if any) for
// user, who must exist.
func (d *behaviourDaemon) enroll(t *testing.T, user string, recovery ...string) {
	t.Helper()
	d.in(t).importSecret(user, 30, recovery...)
}

// code is user's code for the time offset from now, from oathtool.
func (d *behaviourDaemon) code(t *testing.T, user string, offset time.Duration) string {
	t.Helper()
	f := d.in(t)
	secret, ok := f.secrets[user]
	if !ok {
		t.Fatalf("user %s is not enrolled", user)
	}
	code := f.oathtool(secret, "--now=@"+strconv.FormatInt(time.Now().Add(offset).Unix(), 10))
	if len(code) != 6 {
		t.Fatalf("oathtool printed %q", code)
	}
	return code
}

// verify logs user in with code, as a login elsewhere would, and returns
// the decision the login showed.
func (d *behaviourDaemon) verify(t *testing.T, user, code string) protocol.Outcome {
	t.Helper()
	st, err := testutil.Login(d.f.client, protocol.Request{User: user, Service: "behaviour-setup"}, code)
	if err != nil {
		t.Fatalf("login of %s: %v", user, err)
	}
	return stepOutcome(st)
}

// behaviourFrontEnd runs logins through one front end.
type behaviourFrontEnd struct {
	name   string
	prefix string // of the user names of its rows
	d      *behaviourDaemon
	// addUser creates user with what the front end needs (an authorized
	// key, a password and a sudoers line).
	addUser func(t *testing.T, user string)
	// login logs user in as l says and returns whether the login
	// succeeded and everything the person was shown (prompts included).
	login func(t *testing.T, user string, l behaviourLogin) (ok bool, out string)
	// asked reports whether the person was asked anything (beyond the
	// password sudo asks first) in out.
	asked func(out string) bool
	// notApplicable names the cases that cannot happen through this front
	// end, with the reason.
	notApplicable map[string]string
	// closing returns the front end's own last words in out, where the
	// login of user ended, with the user and the port made general; nil
	// for front ends that are not compared (behaviourSameClosing).
	closing func(out, user string) string
	// differs names the cases in which this front end shows other words
	// or asks something where the table asks nothing, and why; the
	// verdict stays the table's.
	differs map[string]behaviourDifference
}

// behaviourDifference is what a front end shows instead of a case's words.
type behaviourDifference struct {
	words []string // shown instead of the case's words
	asks  bool     // the person is asked something all the same
	// repeats: the front end lets the person try again where the table
	// stops.
	repeats bool
	why     string
}

// behaviourLogin is how a person logs in.
type behaviourLogin struct {
	answers []string // typed at the prompts, in order
	from    string   // the client's address; "" is the default (127.0.0.1 where there is one)
	// persist: the person tries three times over, as far as the front end
	// lets them (sudo asks the password again, ssh starts
	// keyboard-interactive again). Only rows that ask no code persist, so
	// under sudo the person types just the password each time.
	persist bool
}

// behaviourCase is one row of the table.
type behaviourCase struct {
	name string
	// user is the suffix of the case's user name (the front end's prefix
	// goes in front), so that no two rows share lockouts, replays or
	// remembered devices.
	user string
	// setup enrolls (or not) and prepares user, and returns the answers
	// to type.
	setup func(t *testing.T, fe *behaviourFrontEnd, user string) []string
	from  string // the client's address; "" is the default
	down  bool   // otpgated is stopped during the login
	// once: the person keeps trying (behaviourLogin.persist), and the
	// first of words is shown once all the same: asking again cannot help,
	// so the front end stops.
	once bool
	// wantOK is the verdict: logged in, or refused.
	wantOK bool
	// words must all appear in what the person was shown.
	words []string
	// noPrompt: the person is asked nothing (behaviourFrontEnd.asked).
	noPrompt bool
}

// enrolled is a setup that enrolls user and types the code off from now.
func enrolled(offset time.Duration, typed func(code string) string) func(*testing.T, *behaviourFrontEnd, string) []string {
	return func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
		fe.d.enroll(t, user)
		return []string{typed(fe.d.code(t, user, offset))}
	}
}

// behaviourLongPaste is what a person pastes by mistake instead of a code.
var behaviourLongPaste = strings.Repeat("Your code is 512397. ", 20)

// behaviourCases is the table.
var behaviourCases = []behaviourCase{
	{
		name: "right code", user: "right", wantOK: true,
		setup: enrolled(0, func(c string) string { return c }),
	},
	{
		name: "code with a space", user: "space", wantOK: true,
		setup: enrolled(0, func(c string) string { return c[:3] + " " + c[3:] }),
	},
	{
		name: "wrong code", user: "wrong", words: []string{"Wrong code."},
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
			fe.d.enroll(t, user)
			return []string{wrongCode(t, fe.d.f.secrets[user])}
		},
	},
	{
		// Pasted at each of the three prompts a dialogue gives.
		name: "long paste", user: "paste", words: []string{"A code is 6 digits."},
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
			fe.d.enroll(t, user)
			return []string{behaviourLongPaste, behaviourLongPaste, behaviourLongPaste}
		},
	},
	{
		name: "replay", user: "replay", words: []string{"This code was already used"},
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
			fe.d.enroll(t, user)
			code := fe.d.code(t, user, 0)
			if got := fe.d.verify(t, user, code); got != protocol.OutcomeAccept {
				t.Fatalf("first use of the code: %s", got)
			}
			return []string{code}
		},
	},
	{
		name: "clock off", user: "clock",
		words: []string{"Wrong code. Your device's clock seems to be about 3 minutes ahead"},
		setup: enrolled(3*time.Minute, func(c string) string { return c }),
	},
	{
		name: "recovery code", user: "recov", wantOK: true, words: []string{"Recovery code accepted; 3 left."},
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
			fe.d.enroll(t, user, "bhra-1111-aaaa", "bhrb-2222-bbbb", "bhrc-3333-cccc", "bhrd-4444-dddd")
			return []string{"BHRC-3333-CCCC"}
		},
	},
	{
		name: "locked out", user: "locked", words: []string{"Too many failed attempts: try again in 1 hour."}, noPrompt: true, once: true,
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
			fe.d.enroll(t, user)
			for i := 0; i < 3; i++ {
				fe.d.verify(t, user, wrongCode(t, fe.d.f.secrets[user]))
			}
			return []string{fe.d.code(t, user, 0)}
		},
	},
	{
		name: "otpgated down", user: "down", down: true, words: []string{protocol.UnavailableText}, noPrompt: true, once: true,
		setup: enrolled(0, func(c string) string { return c }),
	},
	{
		// The answers are what ssh's askpass types at the other prompts
		// (enrollAskpass answers the key's prompt with its code).
		name: "enrollment at login", user: "enroll", wantOK: true,
		words: []string{"Scan this QR code with your authenticator app:", "Two-factor authentication is now on."},
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string { return []string{""} },
	},
	{
		name: "exempt network", user: "exempt", from: behaviourExemptFrom, wantOK: true, noPrompt: true,
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
			fe.d.enroll(t, user)
			return []string{""}
		},
	},
	{
		name: "remembered device", user: "remem", wantOK: true, noPrompt: true,
		setup: func(t *testing.T, fe *behaviourFrontEnd, user string) []string {
			fe.d.enroll(t, user)
			if ok, out := fe.login(t, user, behaviourLogin{answers: []string{fe.d.code(t, user, 0)}}); !ok {
				t.Fatalf("the first login, with a code, was refused:\n%s", out)
			}
			return []string{""}
		},
	},
}

// Reasons a case does not apply to a front end.
const (
	naNoKey     = "no SSH key is verified, so nothing can be remembered or enrolled at login"
	naNoAddress = "there is no remote address"
	naCLI       = "a login policy: the CLI's own prompt asks an enrolled user for a code"
)

// TestBehaviourTable runs behaviourCases through every front end where the
// case applies, each row with its own user: the same verdict and the same
// words everywhere.
func TestBehaviourTable(t *testing.T) {
	container.Require(t, "sudo", "chpasswd")
	fronts := append(behaviourPAMFrontEnds(t), behaviourSSHDFrontEnd(t))
	verdicts := map[string][]string{}          // case -> front end:verdict, for the summary
	closings := map[string]map[string]string{} // case -> front end -> closing words
	defer func() {
		var b strings.Builder
		for _, tc := range behaviourCases {
			fmt.Fprintf(&b, "\n  %-20s %s", tc.name, strings.Join(verdicts[tc.name], " "))
		}
		t.Logf("verdicts:%s", b.String())
	}()
	for _, fe := range fronts {
		for _, tc := range behaviourCases {
			if _, na := fe.notApplicable[tc.name]; na {
				continue
			}
			t.Run(fe.name+"/"+tc.name, func(t *testing.T) {
				user := fe.prefix + tc.user
				fe.addUser(t, user)
				answers := tc.setup(t, fe, user)
				if tc.down {
					fe.d.stop()
					defer fe.d.start()
				}
				ok, out := fe.login(t, user, behaviourLogin{answers: answers, from: tc.from, persist: tc.once})
				if ok != tc.wantOK {
					t.Errorf("logged in: %v, want %v", ok, tc.wantOK)
				}
				verdicts[tc.name] = append(verdicts[tc.name], fmt.Sprintf("%s:%s", fe.name, verdictWord(ok)))
				if fe.closing != nil {
					if closings[tc.name] == nil {
						closings[tc.name] = map[string]string{}
					}
					closings[tc.name][fe.name] = fe.closing(out, user)
				}
				words, noPrompt, once := tc.words, tc.noPrompt, tc.once
				if diff, ok := fe.differs[tc.name]; ok {
					t.Logf("%s differs here: %s", fe.name, diff.why)
					words, noPrompt, once = diff.words, noPrompt && !diff.asks, once && !diff.repeats
				}
				for _, w := range words {
					if !strings.Contains(out, w) {
						t.Errorf("the person was not shown %q", w)
					}
				}
				if first := firstOf(words); once && strings.Count(out, first) != 1 {
					t.Errorf("%q was shown %d times, want once", first, strings.Count(out, first))
				}
				if noPrompt && fe.asked(out) {
					t.Errorf("the person was asked something")
				}
				if t.Failed() {
					t.Logf("answers %q; what the person saw:\n%s", answers, out)
				}
			})
		}
	}
	// The SSH front ends are the same SSH client in front of two servers:
	// a login that ends the same way ends with the same words.
	t.Run("the SSH front ends end alike", func(t *testing.T) {
		for _, tc := range behaviourCases {
			if err := behaviourSameClosing(closings[tc.name]); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if len(closings[tc.name]) > 0 {
				t.Logf("%-20s %q", tc.name, slices.Collect(maps.Values(closings[tc.name]))[0])
			}
		}
	})
}

// behaviourSameClosing reports an error unless every front end in closings
// (front end -> closing words) ended with the same words.
func behaviourSameClosing(closings map[string]string) error {
	var first, firstWords string
	for _, fe := range slices.Sorted(maps.Keys(closings)) {
		if first == "" {
			first, firstWords = fe, closings[fe]
			continue
		}
		if closings[fe] != firstWords {
			return fmt.Errorf("%s ended with %q, %s with %q", first, firstWords, fe, closings[fe])
		}
	}
	return nil
}

// behaviourPort is a port number in what ssh prints.
var behaviourPort = regexp.MustCompile(`port [0-9]+`)

// sshClosing is the last line ssh printed in out (an SSH front end's
// output) for user's login, with the user and the port made general:
// "Permission denied (...)", "Connection closed by ...", or the remote
// command's output.
func sshClosing(out, user string) string {
	printed, _, _ := strings.Cut(out, behaviourPromptsMark)
	lines := strings.Split(strings.TrimSpace(printed), "\n")
	last := strings.ReplaceAll(lines[len(lines)-1], user, "USER")
	return behaviourPort.ReplaceAllString(last, "port N")
}

// verdictWord names a login's verdict.
func verdictWord(ok bool) string {
	if ok {
		return "in"
	}
	return "refused"
}

// firstOf is the first of words, which behaviourCase.once counts ("" when
// there are none).
func firstOf(words []string) string {
	if len(words) == 0 {
		return ""
	}
	return words[0]
}

// typed is what the person types on a front end that reads lines: the
// answers, three times over with persist.
func (l behaviourLogin) typed() string {
	once := strings.Join(l.answers, "\n") + "\n"
	if l.persist {
		return strings.Repeat(once, 3)
	}
	return once
}

// sshOptions are the ssh client's options for l. ssh's askpass answers
// every prompt with the first answer. With a terminal (-tt) sshd shows the
// messages of a successful authentication (a recovery code's note).
func (l behaviourLogin) sshOptions() []string {
	opts := []string{"-tt"}
	if l.from != "" {
		opts = append(opts, "-o", "BindAddress="+l.from)
	}
	if l.persist {
		opts = append(opts, "-o", "NumberOfPasswordPrompts=3")
	}
	return opts
}

// behaviourPromptsMark separates what ssh printed from the prompts its
// askpass was given, in what an SSH front end returns.
const behaviourPromptsMark = "\n--- asked ---\n"

// askedBySSH reports whether ssh asked anything: its askpass was run.
func askedBySSH(out string) bool {
	_, prompts, _ := strings.Cut(out, behaviourPromptsMark)
	return strings.TrimSpace(prompts) != ""
}

// askedAt returns an asked function that looks for prompt in the output.
func askedAt(prompt string) func(string) bool {
	return func(out string) bool { return strings.Contains(out, prompt) }
}

// behaviourPAMFrontEnds starts one PAM environment (otpgated, the module,
// OpenSSH's sshd and sudo) and returns its front ends: pamtester, OpenSSH
// with pam_otpgate, sudo and the otpgate CLI.
func behaviourPAMFrontEnds(t *testing.T) []*behaviourFrontEnd {
	e := newPAMEnv(t)
	if err := e.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	e.c.WriteFile(t, pamConfig, []byte(behaviourDaemonConfig), 0o644)
	e.restartDaemon()
	d := &behaviourDaemon{f: e.otpgatedFixture}
	s := startSSHD(t, e, "")
	s.c.WriteFile(t, pamWorkDir+"/askpass", []byte(enrollAskpass), 0o755)
	e.writePAMService("behaviour", "auth required pam_otpgate.so\nauth required pam_permit.so\n")
	e.writePAMService("sudo", pamSudoStack)
	e.c.WriteFile(t, "/etc/sudoers.d/behaviour", []byte("Defaults timestamp_timeout=0\n"), 0o440)
	otpgate := container.Bin(t, "otpgate")

	pamtester := &behaviourFrontEnd{name: "pamtester", prefix: "btpt", d: d, asked: askedAt(pamCodePrompt),
		addUser: func(t *testing.T, user string) { e.c.AddUser(t, user) },
		login: func(t *testing.T, user string, l behaviourLogin) (bool, string) {
			args := []string{"-k", "5", "30", "pamtester"}
			if l.from != "" {
				args = append(args, "-I", "rhost="+l.from)
			}
			cmd := e.c.Command("timeout", append(args, "behaviour", user, "authenticate")...)
			cmd.Stdin = strings.NewReader(l.typed())
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code == 124 || code == 137 || (err != nil && code <= 0) {
				t.Fatalf("pamtester %s: %v\n%s", user, err, out)
			}
			return err == nil && strings.Contains(string(out), pamOK), string(out)
		},
		notApplicable: map[string]string{"enrollment at login": naNoKey, "remembered device": naNoKey},
	}
	// OpenSSH with PAM: a lockout and otpgated down are said once and ssh
	// asks nothing more because the module answers PAM_ACCT_EXPIRED under
	// sshd (pam/module/status.go). ssh then ends with "Connection closed
	// by ...", as against otpgate-sshd, not with "Permission denied": sshd
	// still offers keyboard-interactive, the client tries it again, and
	// sshd 9.2p1's monitor ends the connection at the third attempt
	// (monitor.c, mm_answer_pam_init_ctx); offering nothing instead
	// (PAM_MAXTRIES) makes the client ask for a password (sshconnect2.c,
	// authmethod_get reads an empty list as "try every method").
	openssh := &behaviourFrontEnd{name: "openssh", prefix: "btos", d: d, asked: askedBySSH, closing: sshClosing,
		addUser: func(t *testing.T, user string) { s.addSSHUser(user) },
		login: func(t *testing.T, user string, l behaviourLogin) (bool, string) {
			r := s.loginOpts(user, "id_ed25519", l.answers[0], l.sshOptions())
			return r.loggedIn(user), strings.ReplaceAll(r.out, "\r", "") + behaviourPromptsMark + r.prompts
		},
	}
	sudo := &behaviourFrontEnd{name: "sudo", prefix: "btsu", d: d, asked: askedAt(pamCodePrompt),
		addUser: func(t *testing.T, user string) {
			e.c.AddUser(t, user)
			e.setPassword(user, pamSudoPassword)
			e.c.WriteFile(t, "/etc/sudoers.d/"+user, []byte(user+" ALL=(ALL:ALL) ALL\n"), 0o440)
		},
		login: func(t *testing.T, user string, l behaviourLogin) (bool, string) {
			lines := append([]string{pamSudoPassword}, l.answers...)
			if l.persist {
				// Asked no code, the person types the password at each of
				// sudo's passwd_tries (3) prompts.
				lines = []string{pamSudoPassword, pamSudoPassword, pamSudoPassword}
			}
			r := e.sudo(user, nil, lines...)
			return r.ran(), r.out
		},
		notApplicable: map[string]string{"enrollment at login": naNoKey, "remembered device": naNoKey, "exempt network": naNoAddress},
	}
	cli := &behaviourFrontEnd{name: "cli", prefix: "btcl", d: d, asked: askedAt("Enter a current code"),
		addUser: func(t *testing.T, user string) { e.c.AddUser(t, user) },
		login: func(t *testing.T, user string, l behaviourLogin) (bool, string) {
			cmd := e.c.CommandAs(user, "timeout", "-k", "5", "30", otpgate, "disable")
			cmd.Stdin = strings.NewReader(l.typed())
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code == 124 || code == 137 || (err != nil && code <= 0) {
				t.Fatalf("otpgate disable as %s: %v\n%s", user, err, out)
			}
			return err == nil, string(out)
		},
		notApplicable: map[string]string{"enrollment at login": naCLI, "remembered device": naCLI, "exempt network": naCLI},
		differs: map[string]behaviourDifference{
			"recovery code": {words: []string{"Two-factor authentication is now off"},
				why: "disable ends the recovery codes too: there is no count left to give"},
			"locked out": {words: []string{"otpgate: Too many failed attempts: try again in 1 hour."}, asks: true,
				why: "the CLI reads the code before it asks otpgated"},
			"otpgated down": {words: []string{"otpgate: nothing answers at " + pamSocket, "systemctl start otpgated"}, asks: true,
				why: "the CLI runs on the server and names the socket and how to start otpgated (docs/cli.md)"},
		},
	}
	return []*behaviourFrontEnd{pamtester, openssh, sudo, cli}
}

// behaviourSSHDFrontEnd starts otpgate-sshd with its own otpgated and
// returns its front end: the real ssh client.
func behaviourSSHDFrontEnd(t *testing.T) *behaviourFrontEnd {
	e := newSSHDEnvDaemon(t, behaviourDaemonConfig, "")
	e.c.WriteFile(t, sshdWorkDir+"/askpass", []byte(enrollAskpass), 0o755)
	d := &behaviourDaemon{f: e.otpgatedFixture}
	return &behaviourFrontEnd{name: "otpgate-sshd", prefix: "btgs", d: d, asked: askedBySSH, closing: sshClosing,
		addUser: func(t *testing.T, user string) { e.addUser(user) },
		login: func(t *testing.T, user string, l behaviourLogin) (bool, string) {
			r := e.ssh(user, "id_ed25519", l.answers[0], l.sshOptions(), "echo", "LOGIN-OK-"+user)
			out := strings.ReplaceAll(r.out, "\r", "")
			return r.exit == 0 && strings.Contains(out, "LOGIN-OK-"+user), out + behaviourPromptsMark + r.prompts
		},
	}
}
