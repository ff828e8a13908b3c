package importer

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// at is a fixed instant for code comparisons, far from a step boundary.
var at = time.Date(2024, 1, 1, 0, 0, 10, 0, time.UTC)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return data
}

// oathtool returns the TOTP code oathtool computes for args at the instant
// at, for an independent check of what the parsers extracted.
func oathtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("oathtool")
	if err != nil {
		t.Fatalf("oathtool not found (install the oathtool package): %v", err)
	}
	args = append([]string{"--totp", "--now", at.Format("2006-01-02 15:04:05 UTC")}, args...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("oathtool %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// code is the code otpgate would compute for e at the instant at.
func code(t *testing.T, e *Entry) string {
	t.Helper()
	alg, err := otp.ParseAlgorithm(e.Algorithm)
	if err != nil {
		t.Fatal(err)
	}
	return otp.TOTP(e.Secret, at, otp.Params{Algorithm: alg, Digits: e.Digits, Period: e.Period})
}

func TestParseGoogleAuthenticatorValid(t *testing.T) {
	tests := []struct {
		file       string
		secret     string // base32, as given to oathtool -b
		period     int
		recovery   []string
		window     int
		rateLimit  [2]int
		reuse      bool
		skew       int
		diffs      []string // substrings of Differences against the default server
		noDiffWith string   // a substring that must not appear
	}{
		{
			file: "full", secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", period: 30,
			recovery: []string{"12345678", "87654321", "19283746", "55512345", "10000001"},
			window:   17, rateLimit: [2]int{3, 30}, reuse: true,
			diffs: []string{"WINDOW_SIZE 17 (±8 steps) is not honoured: otpgated accepts ±1 steps", "RATE_LIMIT 3 logins per 30 s"},
		},
		{file: "minimal", secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", period: 30, noDiffWith: "WINDOW_SIZE"},
		{
			file: "skew_step60", secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", period: 60,
			recovery: []string{"31415926"}, skew: -2,
			diffs: []string{"-2 steps off (TIME_SKEW)"},
		},
		{
			file: "short_secret_80bit", secret: "JBSWY3DPEHPK3PXP", period: 30,
			diffs: []string{"the secret is 80 bits, below the 128 bits"},
		},
	}
	server := Server{Skew: 1, MaxFailures: 5, Lockout: time.Minute}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			name := filepath.Join("google_authenticator", tt.file)
			e, err := ParseGoogleAuthenticator(name, "alice", readTestdata(t, name))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if e.User != "alice" || e.Algorithm != "SHA1" || e.Digits != 6 || e.Period != tt.period {
				t.Errorf("got user %s %s/%d/%d, want alice SHA1/6/%d", e.User, e.Algorithm, e.Digits, e.Period, tt.period)
			}
			want := oathtool(t, "-b", "--time-step-size", time.Duration(tt.period*int(time.Second)).String(), tt.secret)
			if got := code(t, e); got != want {
				t.Errorf("code from the imported secret %s, oathtool says %s", got, want)
			}
			if strings.Join(e.RecoveryCodes, ",") != strings.Join(tt.recovery, ",") {
				t.Errorf("recovery codes %v, want %v", e.RecoveryCodes, tt.recovery)
			}
			if e.WindowSize != tt.window || e.RateLimit != tt.rateLimit || e.DisallowReuse != tt.reuse || e.TimeSkew != tt.skew {
				t.Errorf("settings window=%d rate=%v reuse=%v skew=%d, want %d %v %v %d",
					e.WindowSize, e.RateLimit, e.DisallowReuse, e.TimeSkew, tt.window, tt.rateLimit, tt.reuse, tt.skew)
			}
			diffs := strings.Join(e.Differences(server), "\n")
			for _, d := range tt.diffs {
				if !strings.Contains(diffs, d) {
					t.Errorf("differences do not mention %q:\n%s", d, diffs)
				}
			}
			if tt.noDiffWith != "" && strings.Contains(diffs, tt.noDiffWith) {
				t.Errorf("differences mention %q:\n%s", tt.noDiffWith, diffs)
			}
		})
	}
}

func TestDifferencesWindowMatchingServer(t *testing.T) {
	e := &Entry{Secret: make([]byte, 20), WindowSize: 3}
	if d := e.Differences(Server{Skew: 1}); len(d) != 0 {
		t.Errorf("WINDOW_SIZE 3 equals skew 1, yet: %v", d)
	}
	if d := e.Differences(Server{Skew: 2}); len(d) != 1 || !strings.Contains(d[0], "WINDOW_SIZE 3 (±1 steps)") {
		t.Errorf("WINDOW_SIZE 3 against skew 2: %v", d)
	}
	e.FileMode = 0o644
	e.Source = "/home/a/.google_authenticator"
	if d := e.Differences(Server{Skew: 1}); len(d) != 1 || !strings.Contains(d[0], "mode 0644, readable by other users") {
		t.Errorf("mode 0644: %v", d)
	}
}

func TestParseGoogleAuthenticatorErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"hotp file", string(readTestdata(t, "google_authenticator/hotp")), []string{
			"F:2: HOTP_COUNTER: counter-based (HOTP) codes are not supported by otpgate, only time-based (TOTP); alice must enroll again",
		}},
		{"every line wrong", string(readTestdata(t, "google_authenticator/broken")), []string{
			"F:1: the secret is not base32: character 16 is not A-Z or 2-7",
			`F:2: WINDOW_SIZE must be a whole number from 1 to 100, not "huge"`,
			"F:4: option TOTP_AUTH appears again (first on line 3)",
			`F:5: unknown option "FANCY_OPTION"`,
			"F:6: expected an option line starting with '\" ' or an 8-digit scratch code, found 7 characters",
			"F:8: scratch code repeats the one on line 7",
			"F:9: expected an option line",
		}},
		{"empty file", "", []string{"F: file is empty: expected a base32 secret on line 1"}},
		{"no TOTP_AUTH", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n12345678\n", []string{`F: no " TOTP_AUTH line`}},
		{"option first", "\" TOTP_AUTH\n", []string{"F:1: line 1 is an option line: expected the base32 secret first", `F: no " TOTP_AUTH line`}},
		{"secret too short", "JBSWY3DP\n\" TOTP_AUTH\n", []string{"F:1: the secret is 40 bits; at least 80 are needed"}},
		{"impossible base32 length", "JBSWY3DPEHPK3PXPJ\n\" TOTP_AUTH\n", []string{"F:1: the secret's 17 base32 characters are not a whole number of bytes"}},
		{"disabled", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" OTP_DISABLED\n", []string{"F:3: OTP_DISABLED"}},
		{"step size out of range", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" STEP_SIZE 0\n", []string{`F:3: STEP_SIZE must be a whole number from 1 to 60, not "0"`}},
		{"rate limit missing interval", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" RATE_LIMIT 3\n", []string{"F:3: RATE_LIMIT needs 2 argument(s), found 1"}},
		{"argument to TOTP_AUTH", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH yes\n", []string{"F:2: TOTP_AUTH takes 0 argument(s), found 1"}},
		{"binary junk", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\x00\x01\n", []string{"F:3: unexpected control or non-ASCII byte at column 1"}},
		{"too large", strings.Repeat("A", MaxFileSize+1), []string{"F: file is 65537 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseGoogleAuthenticator("F", "alice", []byte(tt.data))
			if err == nil {
				t.Fatalf("parsed without error: %+v", e)
			}
			if e != nil {
				t.Errorf("returned an entry along with the error")
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not Errors", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("missing %q in:\n%s", w, msg)
				}
			}
			if len(list) != len(tt.want) {
				t.Errorf("%d problems reported, want %d:\n%s", len(list), len(tt.want), msg)
			}
			for _, secretPart := range []string{"JBSWY3DP", "12345678", "GEZDGNBV"} {
				if strings.Contains(msg, secretPart) {
					t.Errorf("error text contains secret material %q:\n%s", secretPart, msg)
				}
			}
		})
	}
}

func TestParseOATHValid(t *testing.T) {
	entries, err := ParseOATH("users.oath", readTestdata(t, "oath/users.oath"))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	tests := []struct {
		user, source  string
		digits, step  int
		oathtoolFlags []string
	}{
		{"alice", "users.oath:2", 6, 30, []string{"--digits=6"}},
		{"bob", "users.oath:3", 8, 30, []string{"--digits=8"}},
		{"carol", "users.oath:6", 7, 60, []string{"--digits=7", "--time-step-size=60s"}},
	}
	if len(entries) != len(tests) {
		t.Fatalf("%d entries, want %d", len(entries), len(tests))
	}
	for i, tt := range tests {
		e := entries[i]
		t.Run(tt.user, func(t *testing.T) {
			if e.User != tt.user || e.Source != tt.source || e.Digits != tt.digits || e.Period != tt.step || e.Algorithm != "SHA1" {
				t.Errorf("got %s at %s SHA1?%s %d digits %d s, want %s at %s %d %d", e.User, e.Source, e.Algorithm, e.Digits, e.Period, tt.user, tt.source, tt.digits, tt.step)
			}
			want := oathtool(t, append(tt.oathtoolFlags, hex.EncodeToString(e.Secret))...)
			if got := code(t, e); got != want {
				t.Errorf("code %s, oathtool says %s", got, want)
			}
		})
	}
	// The line's hex secret is what was decoded.
	if got := hex.EncodeToString(entries[2].Secret); got != "00112233445566778899aabbccddeeff" {
		t.Errorf("carol's secret decoded to %s", got)
	}
}

func TestParseOATHErrors(t *testing.T) {
	_, err := ParseOATH("bad.oath", readTestdata(t, "oath/bad.oath"))
	if err == nil {
		t.Fatal("bad.oath parsed")
	}
	want := []string{
		"bad.oath:2: token type HOTP is counter-based (HOTP); otpgate supports only time-based codes",
		"bad.oath:3: token type HOTP/E/8 is counter-based",
		`bad.oath:4: user dave: the PIN field must be "-"`,
		"bad.oath:5: user alice already has a token on line 1",
		`bad.oath:6: unknown token type "HOTP/T45"`,
		`bad.oath:7: unknown token type "HOTP/T30/9"`,
		"bad.oath:8: user grace: the secret is not hex: character 39 is not 0-9 or a-f",
		"bad.oath:9: user heidi: the secret has an odd number (19) of hex digits",
		"bad.oath:10: user ivan: the secret is 32 bits; at least 80 are needed",
		"bad.oath:11: expected TYPE USER PIN HEXSECRET [COUNTER [LASTOTP [TIMESTAMP]]], found 2 fields",
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(lines), len(want), msg)
	}
	for i, w := range want {
		if i < len(lines) && !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i+1, lines[i], w)
		}
	}
	if strings.Contains(msg, "31323334") {
		t.Errorf("error text contains secret material:\n%s", msg)
	}
}

func TestParseOATHEdgeCases(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"only comments", "# nothing\n\n", "F: no users found"},
		{"bad counter", "HOTP/T30 a - 3132333435363738393031323334353637383930 x\n", `F:1: user a: COUNTER field "x" is not a number`},
		{"too many fields", "HOTP/T30 a - 3132333435363738393031323334353637383930 0 1 2 3\n", "found 8 fields"},
		{"odd user", "HOTP/T30 a:b - 3132333435363738393031323334353637383930\n", `user name "a:b" is not a valid login name`},
		{"not HOTP", "TOTP a - 3132333435363738393031323334353637383930\n", `unknown token type "TOTP"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := ParseOATH("F", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v (%d entries), want an error containing %q", err, len(entries), tt.want)
			}
			if entries != nil {
				t.Errorf("entries returned with an error")
			}
		})
	}
}
