package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/otpgate/otpgate/internal/config"
)

// loadErr loads path, which must fail, and returns the error text.
func loadErr(t *testing.T, path string) string {
	t.Helper()
	c, err := config.Load(path)
	if err == nil {
		t.Fatalf("Load(%s) succeeded, want an error; got %+v", path, c)
	}
	if c != nil {
		t.Errorf("Load(%s) returned a Config along with its error", path)
	}
	return err.Error()
}

// writeConfig writes content to a config.toml in a fresh directory.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileCase is the content of a configuration file that Load must refuse,
// and the error it must give, after "PATH:".
type fileCase struct{ name, content, want string }

// runFileCases loads each case's content from a file of its own and
// checks the whole error text.
func runFileCases(t *testing.T, tests []fileCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.content)
			if got, want := loadErr(t, path), path+":"+tt.want; got != want {
				t.Errorf("error:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestLoadFullConfigSetsEveryKey(t *testing.T) {
	got, err := config.Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Issuer: "bastion.example.com",
		TOTP:   config.TOTP{Algorithm: "SHA256", Digits: 8, Period: 60, Skew: 2, ClockHintSteps: 40},
		Daemon: config.Daemon{
			Socket:         "/run/otpgate-test/otpgated.sock",
			StateDir:       "/srv/otpgate/state",
			MaxConnsPerUID: 4,
			RequestTimeout: config.Duration{Duration: 2500 * time.Millisecond},
			LogLevel:       "debug",
		},
		Store: config.Store{
			Backend:  "postgres",
			DSNFile:  "/srv/otpgate/postgres.dsn",
			Timeout:  config.Duration{Duration: 1500 * time.Millisecond},
			MaxConns: 32,
		},
		Policy: config.Policy{
			Default:            "required",
			RequiredUsers:      []string{"root", "alice"},
			RequiredGroups:     []string{"wheel", "domain-admins@EXAMPLE.COM"},
			ExemptUsers:        []string{"ansible", "backup$"},
			ExemptGroups:       []string{"svc-accounts"},
			ExemptNetworks:     []string{"10.0.0.0/8", "2001:db8::/32"},
			Remember:           config.Duration{Duration: 12 * time.Hour},
			JumpHosts:          []string{"10.0.0.5", "10.0.1.0/24", "2001:db8::7"},
			JumpWindow:         config.Duration{Duration: 90 * time.Second},
			EnrollOnLogin:      true,
			EnrollOnLoginUntil: "2026-12-31",
			EnrollOnLoginDays:  30,
		},
		RateLimit: config.RateLimit{
			MaxFailures:            3,
			Lockout:                config.Duration{Duration: 30 * time.Second},
			Backoff:                1.5,
			MaxLockout:             config.Duration{Duration: 6 * time.Hour},
			MaxConsecutiveFailures: 50,
			PerSourceMaxFailures:   2,
			PerSourceLockout:       config.Duration{Duration: 30 * time.Minute},
			SourceMaxFailures:      40,
			SourceLockout:          config.Duration{Duration: 2 * time.Hour},
		},
		Enroll: config.Enroll{SecretBytes: 32, RecoveryCodes: 0, PendingTimeout: config.Duration{Duration: 90 * time.Minute}},
		Audit:  config.Audit{Destination: "/var/log/otpgate/audit.log"},
		SSHD: config.SSHD{
			Listen:               "127.0.0.1:2200",
			HostKeyDir:           "/srv/otpgate/sshd-keys",
			HostKeyTypes:         []string{"ed25519", "rsa"},
			Socket:               "/run/otpgate-test/otpgated.sock", // daemon.socket
			LoginGraceTime:       config.Duration{Duration: 20 * time.Second},
			MaxAuthTries:         3,
			HandshakeTimeout:     config.Duration{Duration: 5 * time.Second},
			MaxStartups:          config.Startups{Start: 20, Rate: 50, Full: 200},
			PerSourceMaxStartups: 5,
			ClientAliveInterval:  config.Duration{Duration: 30 * time.Second},
			ClientAliveCountMax:  4,
			MaxSessions:          2,
			PermitRootLogin:      true,
			AllowTCPForwarding:   true,
			PermitOpen:           []string{"db.internal:5432"},
			AcceptEnv:            []string{"LANG"},
			SFTPServer:           "",
			ShutdownTimeout:      config.Duration{Duration: time.Minute},
			Banner:               "Authorized use only.",
			Prompt:               "Password (verification code): ",
			LogLevel:             "warn",
			UsePAM:               false,
			PAMService:           "otpgate-test",
			AllowAgentForwarding: true,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(full.toml):\n got %+v\nwant %+v", got, want)
	}
	// The test is only meaningful if full.toml changes every default.
	eachLeaf(reflect.ValueOf(*want), reflect.ValueOf(config.Default()), "", func(name string, a, b any) {
		if reflect.DeepEqual(a, b) {
			t.Errorf("full.toml leaves %s at its default; give it another value", name)
		}
	})
}

// eachLeaf calls f with the Go path and the values of every field of a and
// b, descending into the sections but not into Duration or Startups (one
// key each).
func eachLeaf(a, b reflect.Value, prefix string, f func(name string, a, b any)) {
	for i := range a.NumField() {
		name := prefix + a.Type().Field(i).Name
		if t := a.Field(i).Type(); a.Field(i).Kind() == reflect.Struct && t != reflect.TypeFor[config.Duration]() && t != reflect.TypeFor[config.Startups]() {
			eachLeaf(a.Field(i), b.Field(i), name+".", f)
			continue
		}
		f(name, a.Field(i).Interface(), b.Field(i).Interface())
	}
}

func TestLoadEmptyFileGivesDefaults(t *testing.T) {
	got, err := config.Load("testdata/empty.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := config.Default(); !reflect.DeepEqual(*got, want) {
		t.Errorf("Load(empty.toml) = %+v, want Default() %+v", *got, want)
	}
}

func TestLoadPartialFileKeepsOtherDefaults(t *testing.T) {
	got, err := config.Load(writeConfig(t, "[totp]\ndigits = 8\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.TOTP.Digits = 8
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("got %+v, want %+v", *got, want)
	}
}

func TestLoadReportsTypoKeyWithLineAndSuggestion(t *testing.T) {
	got := loadErr(t, "testdata/typo.toml")
	want := `testdata/typo.toml:7: unknown key "rate_limit.max_failure" (did you mean "rate_limit.max_failures"?)`
	if got != want {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}
}

func TestLoadReportsEveryUnknownKey(t *testing.T) {
	got := loadErr(t, "testdata/two_unknown.toml")
	want := `testdata/two_unknown.toml:3: unknown key "totp.periods" (did you mean "totp.period"?)` + "\n" +
		`testdata/two_unknown.toml:7: unknown key "daemon.max_connections"`
	if got != want {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}
}

func TestLoadReportsUnknownKeysAndInvalidValuesTogether(t *testing.T) {
	path := writeConfig(t, "issuer = \"a:b\"\n\n[totp]\ndigitz = 6\nskew = 11\n")
	got := loadErr(t, path)
	want := path + `:1: key "issuer": must not contain ':', which separates issuer and account in otpauth labels, got "a:b"` + "\n" +
		path + `:4: unknown key "totp.digitz" (did you mean "totp.digits"?)` + "\n" +
		path + `:5: key "totp.skew": must be between 0 and 10 steps, got 11`
	if got != want {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}
}

func TestLoadUnknownKeyMessages(t *testing.T) {
	tests := []fileCase{
		{"an unknown table is reported once, not with each of its keys", "[ratelimit]\nmax_failures = 5\nlockout = \"1m\"\n",
			`1: unknown table "ratelimit" (did you mean "rate_limit"?)`},
		{"a key in the wrong table points to the right one", "[totp]\nsocket = \"/run/x.sock\"\n",
			`2: unknown key "totp.socket" (did you mean "daemon.socket"?)`},
		{"a key in the wrong case is suggested in the right one", "Issuer = \"x\"\n",
			`1: unknown key "Issuer" (did you mean "issuer"?)`},
		{"an unrelated key gets no suggestion", "[daemon]\ncolour = \"blue\"\n",
			`2: unknown key "daemon.colour"`},
		{"a dotted key is found on its line", "\n\ntotp.digitss = 6\n",
			`3: unknown key "totp.digitss" (did you mean "totp.digits"?)`},
		{"a key inside an inline table is found on its line", "\nenroll = { secret_byte = 20 }\n",
			`2: unknown key "enroll.secret_byte" (did you mean "enroll.secret_bytes"?)`},
	}
	runFileCases(t, tests)
}

func TestLoadReportsWrongTypes(t *testing.T) {
	got := loadErr(t, "testdata/wrong_type.toml")
	if want := `testdata/wrong_type.toml:3: key "totp.digits": expected an integer, got a string`; got != want {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}

	tests := []fileCase{
		{"a float where an integer is expected", "[totp]\n\nperiod = 30.0\n",
			`3: key "totp.period": expected an integer, got a float`},
		{"a number where a string is expected", "issuer = 42\n",
			`1: key "issuer": expected a string, got an integer`},
		{"a boolean where a number is expected", "[rate_limit]\nbackoff = true\n",
			`2: key "rate_limit.backoff": expected a number, got a boolean`},
		{"a bare number where a duration is expected", "[daemon]\nrequest_timeout = 30\n",
			`2: key "daemon.request_timeout": expected a duration string such as "90s", "5m" or "1h30m", got an integer`},
		{"a string where a list is expected", "[policy]\nexempt_users = \"alice\"\n",
			`2: key "policy.exempt_users": expected an array of strings, got a string`},
		{"a number inside a list of names", "[policy]\nrequired_users = [\"alice\", 1000]\n",
			`2: key "policy.required_users": expected an array of strings, got an integer at index 1`},
		{"a value where a table is expected, without reporting its keys", "totp = 6\n",
			`1: key "totp": expected a table, got an integer`},
		{"an array of tables where a table is expected", "[[audit]]\ndestination = \"syslog\"\n",
			`1: key "audit": expected a table, got an array of tables`},
		{"a table where a value is expected", "[totp.digits]\nvalue = 6\n",
			`1: key "totp.digits": expected an integer, got a table`},
	}
	runFileCases(t, tests)
}

func TestLoadReportsEveryWrongTypeAtOnce(t *testing.T) {
	path := writeConfig(t, "[totp]\ndigits = \"six\"\nperiod = \"thirty\"\n")
	got := loadErr(t, path)
	want := path + `:2: key "totp.digits": expected an integer, got a string` + "\n" +
		path + `:3: key "totp.period": expected an integer, got a string`
	if got != want {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}
}

func TestLoadReportsSyntaxErrorLine(t *testing.T) {
	got := loadErr(t, "testdata/syntax.toml")
	if !strings.HasPrefix(got, "testdata/syntax.toml:5: ") {
		t.Errorf("error %q does not start with the file and line 5", got)
	}
	if strings.Count(got, "\n") != 0 || strings.Contains(got, " toml: ") {
		t.Errorf("error %q should be one line without the toml package's own prefix", got)
	}
	_, err := config.Load("testdata/syntax.toml")
	var pe toml.ParseError
	if !errors.As(err, &pe) || pe.Position.Line != 5 {
		t.Errorf("error does not wrap a toml.ParseError at line 5: %#v", err)
	}
}

func TestLoadReportsDuplicateKeyAsSyntaxError(t *testing.T) {
	path := writeConfig(t, "[totp]\ndigits = 6\ndigits = 8\n")
	if got := loadErr(t, path); !strings.HasPrefix(got, path+":3: ") || !strings.Contains(got, "digits") {
		t.Errorf("error %q should point at line 3 and name the key", got)
	}
}

func TestLoadRefusesDurationsInWords(t *testing.T) {
	got := loadErr(t, "testdata/duration_words.toml")
	want := `testdata/duration_words.toml:3: key "rate_limit.lockout": invalid duration "5 minutes": ` +
		`expected a number with a unit, such as "90s", "5m" or "1h30m"`
	if got != want {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}
}

func TestLoadNormalizesAlgorithm(t *testing.T) {
	for _, spelling := range []string{"sha256", "Sha256", "SHA-256", "sha-256"} {
		t.Run(spelling, func(t *testing.T) {
			c, err := config.Load(writeConfig(t, "[totp]\nalgorithm = \""+spelling+"\"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.TOTP.Algorithm != "SHA256" {
				t.Errorf("algorithm %q loaded as %q, want SHA256", spelling, c.TOTP.Algorithm)
			}
		})
	}
}

func TestLoadMissingFileNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.toml")
	_, err := config.Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v does not match fs.ErrNotExist", err)
	}
	if want := path + ": cannot read configuration: no such file or directory"; err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}

func TestLoadOrDefault(t *testing.T) {
	dir := t.TempDir()
	absent := filepath.Join(dir, "absent.toml")
	broken := writeConfig(t, "[totp]\ndigits = 9\n")

	t.Run("a missing optional file gives the defaults", func(t *testing.T) {
		c, err := config.LoadOrDefault(absent, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*c, config.Default()) {
			t.Errorf("got %+v, want Default()", *c)
		}
	})
	t.Run("a missing required file is an error", func(t *testing.T) {
		if c, err := config.LoadOrDefault(absent, true); err == nil || c != nil {
			t.Errorf("LoadOrDefault(absent, true) = %v, %v; want nil and an error", c, err)
		}
	})
	t.Run("an invalid optional file is still an error", func(t *testing.T) {
		if c, err := config.LoadOrDefault(broken, false); err == nil || c != nil {
			t.Errorf("LoadOrDefault(broken, false) = %v, %v; want nil and an error", c, err)
		}
	})
	t.Run("an unreadable path that exists is still an error", func(t *testing.T) {
		// A directory exists but cannot be read as a file.
		if c, err := config.LoadOrDefault(dir, false); err == nil || c != nil {
			t.Errorf("LoadOrDefault(dir, false) = %v, %v; want nil and an error", c, err)
		}
	})
}

func TestLoadReturnsIndependentConfigs(t *testing.T) {
	// A reload must not share state with the Config it replaces.
	a, err := config.Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	a.Policy.RequiredUsers[0] = "mallory"
	if b.Policy.RequiredUsers[0] != "root" {
		t.Errorf("two loads share their lists")
	}
}

func TestLoadPerSourceLimitFollowsALowMaxFailures(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want int
	}{
		{"default", "", 3},
		{"max_failures 10 keeps 3", "[rate_limit]\nmax_failures = 10\n", 3},
		{"max_failures 3 gives 2", "[rate_limit]\nmax_failures = 3\n", 2},
		{"max_failures 2 gives 1", "[rate_limit]\nmax_failures = 2\n", 1},
		{"max_failures 1 turns it off", "[rate_limit]\nmax_failures = 1\n", 0},
		{"an explicit 0 turns it off", "[rate_limit]\nper_source_max_failures = 0\n", 0},
		{"an explicit value is kept", "[rate_limit]\nmax_failures = 10\nper_source_max_failures = 7\n", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(writeConfig(t, tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.RateLimit.PerSourceMaxFailures; got != tt.want {
				t.Fatalf("per_source_max_failures = %d, want %d", got, tt.want)
			}
		})
	}
}
