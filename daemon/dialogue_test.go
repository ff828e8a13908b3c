//go:build root

package daemon

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

func TestLoginDialogue(t *testing.T) {
	const from = "192.0.2.50"
	key := newSSHKey(t)
	spaced := func(code string) string { return code[:3] + " " + code[3:] }
	tests := []struct {
		name    string
		req     protocol.Request
		answers func(d *testDaemon, secret []byte) []func(dialogueRun) string
		verdict protocol.Verdict
		says    string // in the messages
		prompts int    // steps that asked something
	}{
		{name: "the right code", verdict: protocol.VerdictSuccess, prompts: 1,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				return []func(dialogueRun) string{says(d.oathtoolCode(s))}
			}},
		{name: "the code as apps show it, with a space", verdict: protocol.VerdictSuccess, prompts: 1,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				return []func(dialogueRun) string{says(spaced(d.code(s, 0)))}
			}},
		{name: "with a dash and spaces around", verdict: protocol.VerdictSuccess, prompts: 1,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				c := d.code(s, 0)
				return []func(dialogueRun) string{says("  " + c[:3] + "-" + c[3:] + "\t")}
			}},
		{name: "a wrong code", verdict: protocol.VerdictDeny, says: "Wrong code.", prompts: 1,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				return []func(dialogueRun) string{says(d.wrongCode(s))}
			}},
		{name: "a word is asked again, then the code", verdict: protocol.VerdictSuccess, says: "A code is 6 digits.", prompts: 2,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				return []func(dialogueRun) string{says("hello"), says(d.code(s, 0))}
			}},
		{name: "a long paste is answered in words", verdict: protocol.VerdictDeny, says: "A code is 6 digits.", prompts: 3,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				p := says(strings.Repeat("paste! ", 140))
				return []func(dialogueRun) string{p, p, p}
			}},
		{name: "a recovery code in capitals without its dashes", verdict: protocol.VerdictSuccess, says: "Recovery code accepted; only 1 left", prompts: 1,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				return []func(dialogueRun) string{says("AAAA1111")}
			}},
		{name: "a verified key is required and there is none", req: protocol.Request{Login: &protocol.LoginStart{RequirePublicKey: true}},
			verdict: protocol.VerdictRefused, says: "only after a key"},
		{name: "a verified key is required and sshd gave one", req: protocol.Request{AuthInfo: key.openssh, Login: &protocol.LoginStart{RequirePublicKey: true}},
			verdict: protocol.VerdictSuccess, prompts: 1,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				return []func(dialogueRun) string{says(d.code(s, 0))}
			}},
		{name: "the prompt the administrator set", req: protocol.Request{Login: &protocol.LoginStart{Prompt: "OTP password: "}},
			verdict: protocol.VerdictSuccess, prompts: 1,
			answers: func(d *testDaemon, s []byte) []func(dialogueRun) string {
				return []func(dialogueRun) string{func(r dialogueRun) string {
					if p := r.last().Prompts[0]; p.Text != "OTP password: " || p.Echo {
						d.t.Errorf("prompt %+v", p)
					}
					return d.code(s, 0)
				}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, testConfig(t), nil)
			secret := d.importUser(alice, "aaaa-1111", "bbbb-2222")
			tt.req.User, tt.req.RHost = alice, from
			var answers []func(dialogueRun) string
			if tt.answers != nil {
				answers = tt.answers(d, secret)
			}
			run := d.login(tt.req, answers...)
			if got := run.last().Verdict; got != tt.verdict {
				t.Fatalf("verdict %q, want %q; steps %+v", got, tt.verdict, run.steps)
			}
			if !strings.Contains(run.texts(), tt.says) {
				t.Errorf("messages %q lack %q", run.texts(), tt.says)
			}
			asked := 0
			for _, st := range run.steps {
				if len(st.Prompts) > 0 {
					asked++
					if st.Prompts[0].Echo {
						t.Errorf("a code prompt echoes: %+v", st.Prompts[0])
					}
				}
			}
			if asked != tt.prompts {
				t.Errorf("%d steps asked something, want %d", asked, tt.prompts)
			}
			for _, st := range run.steps {
				if err := st.Validate(); err != nil {
					t.Errorf("step %+v: %v", st, err)
				}
			}
		})
	}
}

func TestLoginDialogueWithoutACode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Policy.ExemptUsers = []string{bob}
	cfg.Policy.RequiredUsers = []string{"sys"}
	d := startDaemon(t, cfg, nil)
	tests := []struct {
		user    string
		verdict protocol.Verdict
		says    string
	}{
		{"nobody", protocol.VerdictSkip, ""},               // not enrolled, policy optional
		{bob, protocol.VerdictSkip, ""},                    // exempt
		{"sys", protocol.VerdictRefused, "otpgate enroll"}, // required and not enrolled
		{"no-such-user", protocol.VerdictSkip, ""},         // as a user who is not enrolled
	}
	for _, tt := range tests {
		run := d.login(protocol.Request{User: tt.user})
		if st := run.last(); st.Verdict != tt.verdict || len(run.steps) != 1 || !strings.Contains(run.texts(), tt.says) {
			t.Errorf("%s: steps %+v, want %s saying %q", tt.user, run.steps, tt.verdict, tt.says)
		}
	}
}

func TestLoginDialogueLockoutIsFinalAndInWords(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.PerSourceMaxFailures = 0
	d := startDaemon(t, cfg, nil)
	secret := d.importUser(alice)
	for i := range cfg.RateLimit.MaxFailures {
		run := d.login(protocol.Request{User: alice}, says(d.wrongCode(secret)))
		want := protocol.VerdictDeny
		if i == cfg.RateLimit.MaxFailures-1 {
			want = protocol.VerdictRefused // the failure that locks: asking again cannot help
		}
		if run.last().Verdict != want {
			t.Fatalf("failure %d: %+v", i+1, run.last())
		}
	}
	run := d.login(protocol.Request{User: alice})
	if st := run.last(); st.Verdict != protocol.VerdictRefused || !strings.Contains(run.texts(), "try again in 1 minute.") || len(run.steps) != 1 {
		t.Fatalf("a locked user: %+v", run.steps)
	}
}

func TestLoginDialoguePasswordAndCode(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	run := d.login(protocol.Request{User: alice, Login: &protocol.LoginStart{PasswordAndCode: true}},
		func(r dialogueRun) string {
			if p := r.last().Prompts[0].Text; p != "Password and verification code: " {
				t.Errorf("prompt %q", p)
			}
			return "pass word" + d.code(secret, 0)
		})
	if st := run.last(); st.Verdict != protocol.VerdictSuccess || st.AuthTok != "pass word" {
		t.Fatalf("step %+v, want success with the password", st)
	}
	// Not enrolled: the password still reaches the modules after.
	run = d.login(protocol.Request{User: bob, Login: &protocol.LoginStart{PasswordAndCode: true}})
	if st := run.last(); st.Verdict != protocol.VerdictSkip {
		t.Fatalf("not enrolled: %+v", st)
	}
}

func TestLoginDialogueEnrollsAtLogin(t *testing.T) {
	d := startDaemon(t, enrollOnLoginConfig(t, ""), nil)
	key := newSSHKey(t)
	var secret []byte
	run := d.login(protocol.Request{User: alice, RHost: "192.0.2.7", AuthInfo: key.openssh}, // size unknown: 80×24
		says("12345"), // not a code: asked again
		func(r dialogueRun) string {
			text := r.steps[0].Messages[0].Text
			_, k, ok := strings.Cut(text, "Or enter this key in the app: ")
			s, err := otp.DecodeSecret(strings.TrimSpace(k))
			if !ok || err != nil {
				t.Fatalf("the offer shows no key: %q", text)
			}
			if lines := strings.Count(text, "\n") + 1; lines > 23 || !strings.Contains(text, "Scan this QR code") {
				t.Errorf("the offer is %d lines, more than an 80×24 terminal holds with the prompt:\n%s", lines, text)
			}
			for i, line := range strings.Split(text, "\n") {
				if n := utf8.RuneCountInString(line); n > 80 {
					t.Errorf("line %d of the offer is %d columns", i+1, n)
				}
			}
			secret = s
			return d.code(secret, 0)
		},
		func(r dialogueRun) string {
			p := r.last().Prompts[0]
			if !p.Echo || !strings.Contains(r.last().Messages[0].Text, "recovery codes") {
				t.Errorf("after the first code: %+v", r.last())
			}
			return ""
		})
	if st := run.last(); st.Verdict != protocol.VerdictSuccess || len(run.steps) != 4 {
		t.Fatalf("steps %+v", run.steps)
	}
	d.clock.Add(30 * time.Second)
	if run := d.login(protocol.Request{User: alice}, says(d.oathtoolCode(secret))); run.last().Verdict != protocol.VerdictSuccess {
		t.Fatalf("the next login with the new key: %+v", run.steps)
	}
}

func TestLoginAnswerWithoutADialogueIsRefused(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	_, err := d.do(&protocol.Request{Op: protocol.OpLoginAnswer, Answers: []string{"123456"}})
	if errCode(err) != protocol.ErrBadRequest || !strings.Contains(err.Error(), "no login dialogue") {
		t.Fatalf("answer without a dialogue: %v", err)
	}
}

func TestAUsedCodeIsNotAClockProblem(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	code := d.code(secret, 0)
	if r := d.verify(alice, code); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("first use: %+v", r)
	}
	d.clock.Add(90 * time.Second)
	r := d.verify(alice, code)
	if !shows(r, protocol.OutcomeReplay) || !strings.Contains(stepText(r), "already used") || strings.Contains(stepText(r), "clock") {
		t.Fatalf("the code used 90 s ago: %+v", r)
	}
}

func TestReadCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"512397", "512397", true},
		{"512 397", "512397", true},
		{"512-397", "512397", true},
		{" 512397\n", "512397", true},
		{"5 1 2 3 9 7", "512397", true},
		{"aaaa-1111-bbbb", "aaaa-1111-bbbb", true}, // a recovery code, read later
		{"12345678", "12345678", true},             // an imported scratch code
		{"12345", "", false},
		{"hello", "", false},
		{"", "", false},
		{strings.Repeat("1", 200), "", false},
		{"512397;rm", "", false},
	}
	for _, tt := range tests {
		got, ok := readCode(tt.in, 6)
		if got != tt.want || ok != tt.ok {
			t.Errorf("readCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		seconds int64
		want    string
	}{
		{1, "1 second"}, {45, "45 seconds"}, {60, "1 minute"}, {61, "2 minutes"}, {900, "15 minutes"},
		{3600, "1 hour"}, {5400, "1 hour 30 minutes"}, {7260, "2 hours 1 minute"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.seconds); got != tt.want {
			t.Errorf("humanDuration(%d) = %q, want %q", tt.seconds, got, tt.want)
		}
	}
}

func TestLoginDialogueSaysWhenTheQRCodeDoesNotFit(t *testing.T) {
	d := startDaemon(t, enrollOnLoginConfig(t, ""), nil)
	key := newSSHKey(t)
	run := d.login(protocol.Request{User: alice, RHost: "192.0.2.7", AuthInfo: key.openssh, Login: &protocol.LoginStart{Width: 80, Height: 10}})
	text := run.steps[0].Messages[0].Text
	if !strings.Contains(text, "does not fit this terminal") || !strings.Contains(text, "Or enter this key in the app: ") || strings.ContainsAny(text, "█▀▄") {
		t.Fatalf("a 10-line terminal gets:\n%s", text)
	}
}
