package config_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/config"
)

func TestDefaultIsValid(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Errorf("Default() does not validate:\n%v", err)
	}
}

// Each case breaks one rule; the error must be exactly that one problem, on
// the line that sets the offending key.
func TestLoadRefusesEachInvalidValue(t *testing.T) {
	const nameRule = `expected a letter or '_', then letters, digits, '_', '.', '-' or '@', optionally ending in '$', at most 256 bytes`
	tests := []fileCase{
		{"an empty issuer", `issuer = ""`,
			`1: key "issuer": must not be empty; it names this server in authenticator apps`},
		{"an issuer with a colon", `issuer = "acme:prod"`,
			`1: key "issuer": must not contain ':', which separates issuer and account in otpauth labels, got "acme:prod"`},
		{"an issuer with a control character", `issuer = "acme\u0007"`,
			`1: key "issuer": must contain only printable characters, got "acme\a"`},
		{"an unknown algorithm", "[totp]\nalgorithm = \"MD5\"",
			`2: key "totp.algorithm": must be "SHA1", "SHA256" or "SHA512", got "MD5"`},
		{"five digits", "[totp]\ndigits = 5",
			`2: key "totp.digits": must be between 6 and 8, got 5`},
		{"nine digits", "[totp]\ndigits = 9",
			`2: key "totp.digits": must be between 6 and 8, got 9`},
		{"a period too short", "[totp]\nperiod = 14",
			`2: key "totp.period": must be between 15 and 300 seconds, got 14`},
		{"a period too long", "[totp]\nperiod = 301",
			`2: key "totp.period": must be between 15 and 300 seconds, got 301`},
		{"a negative skew", "[totp]\nskew = -1",
			`2: key "totp.skew": must be between 0 and 10 steps, got -1`},
		{"a skew too wide", "[totp]\nclock_hint_steps = 0\nskew = 11",
			`3: key "totp.skew": must be between 0 and 10 steps, got 11`},
		{"a clock hint too far", "[totp]\nclock_hint_steps = 121",
			`2: key "totp.clock_hint_steps": must be between 0 and 120 steps, got 121`},
		{"a clock hint inside the skew window", "[totp]\nskew = 3\nclock_hint_steps = 3",
			`3: key "totp.clock_hint_steps": must be 0 (no hint) or greater than totp.skew (3), got 3`},
		{"a relative socket path", "[daemon]\nsocket = \"otpgated.sock\"",
			`2: key "daemon.socket": must be an absolute path, got "otpgated.sock"`},
		{"a socket path too long for sun_path", "[daemon]\nsocket = \"/" + strings.Repeat("s", 107) + "\"",
			`2: key "daemon.socket": is 108 bytes long; a Unix socket path must be at most 107 bytes`},
		{"a relative state directory", "[daemon]\nstate_dir = \"var/lib/otpgate\"",
			`2: key "daemon.state_dir": must be an absolute path, got "var/lib/otpgate"`},
		{"the root directory as state directory", "[daemon]\nstate_dir = \"//\"",
			`2: key "daemon.state_dir": must not be "/"; use a directory of its own such as "/var/lib/otpgate"`},
		{"no connections per uid", "[daemon]\nmax_conns_per_uid = 0",
			`2: key "daemon.max_conns_per_uid": must be between 1 and 1024, got 0`},
		{"too many connections per uid", "[daemon]\nmax_conns_per_uid = 1025",
			`2: key "daemon.max_conns_per_uid": must be between 1 and 1024, got 1025`},
		{"a request timeout too short", "[daemon]\nrequest_timeout = \"99ms\"",
			`2: key "daemon.request_timeout": must be between 100ms and 5m, got 99ms`},
		{"a request timeout too long", "[daemon]\nrequest_timeout = \"5m1s\"",
			`2: key "daemon.request_timeout": must be between 100ms and 5m, got 5m1s`},
		{"an unknown store backend", "[store]\nbackend = \"mysql\"",
			`2: key "store.backend": must be "bolt" or "postgres", got "mysql"`},
		{"a relative DSN file", "[store]\ndsn_file = \"postgres.dsn\"",
			`2: key "store.dsn_file": must be an absolute path, got "postgres.dsn"`},
		{"a DSN file that is a directory", "[store]\ndsn_file = \"/etc/otpgate/\"",
			`2: key "store.dsn_file": must name a file, not a directory, got "/etc/otpgate/"`},
		{"a store timeout too short", "[store]\ntimeout = \"99ms\"",
			`2: key "store.timeout": must be between 100ms and 1m, got 99ms`},
		{"a store timeout too long", "[store]\ntimeout = \"61s\"",
			`2: key "store.timeout": must be between 100ms and 1m, got 1m1s`},
		{"no database connections", "[store]\nmax_conns = 0",
			`2: key "store.max_conns": must be between 1 and 1000, got 0`},
		{"too many database connections", "[store]\nmax_conns = 1001",
			`2: key "store.max_conns": must be between 1 and 1000, got 1001`},
		{"an unknown log level", "[daemon]\nlog_level = \"verbose\"",
			`2: key "daemon.log_level": must be "debug", "info", "warn" or "error", got "verbose"`},
		{"an unknown default policy", "[policy]\ndefault = \"always\"",
			`2: key "policy.default": must be "optional" or "required", got "always"`},
		{"a user name with a space", "[policy]\nrequired_users = [\"alice smith\"]",
			`2: key "policy.required_users": "alice smith" is not a valid user name: ` + nameRule},
		{"a group name starting with a digit", "[policy]\nrequired_groups = [\"1admins\"]",
			`2: key "policy.required_groups": "1admins" is not a valid group name: ` + nameRule},
		{"an exempt user name too long", "[policy]\nexempt_users = [\"" + strings.Repeat("a", 257) + "\"]",
			`2: key "policy.exempt_users": "` + strings.Repeat("a", 257) + `" is not a valid user name: ` + nameRule},
		{"an empty exempt group name", "[policy]\nexempt_groups = [\"ops\", \"\"]",
			`2: key "policy.exempt_groups": entry 2 is empty; expected a group name`},
		{"a user both required and exempt", "[policy]\nrequired_users = [\"alice\", \"bob\"]\nexempt_users = [\"bob\"]",
			`3: key "policy.exempt_users": user "bob" is listed in both policy.required_users and policy.exempt_users; keep it in one of them`},
		{"a group both required and exempt", "[policy]\nrequired_groups = [\"wheel\"]\n\nexempt_groups = [\"wheel\"]",
			`4: key "policy.exempt_groups": group "wheel" is listed in both policy.required_groups and policy.exempt_groups; keep it in one of them`},
		{"no failures allowed", "[rate_limit]\nmax_failures = 0",
			`2: key "rate_limit.max_failures": must be between 1 and 100, got 0`},
		{"more than 100 failures allowed", "[rate_limit]\nmax_failures = 101",
			`2: key "rate_limit.max_failures": must be between 1 and 100, got 101`},
		{"a lockout under a second", "[rate_limit]\nlockout = \"500ms\"",
			`2: key "rate_limit.lockout": must be between 1s and 24h, got 500ms`},
		{"a lockout over a day, without repeating it for max_lockout", "[rate_limit]\nlockout = \"25h\"",
			`2: key "rate_limit.lockout": must be between 1s and 24h, got 25h`},
		{"a backoff below 1", "[rate_limit]\nbackoff = 0.5",
			`2: key "rate_limit.backoff": must be between 1 and 10, got 0.5`},
		{"a backoff above 10", "[rate_limit]\nbackoff = 11",
			`2: key "rate_limit.backoff": must be between 1 and 10, got 11`},
		{"a backoff that is not a number", "[rate_limit]\nbackoff = nan",
			`2: key "rate_limit.backoff": must be between 1 and 10, got nan`},
		{"a maximum lockout shorter than the lockout", "[rate_limit]\nlockout = \"10m\"\nmax_lockout = \"5m\"",
			`3: key "rate_limit.max_lockout": must be at least rate_limit.lockout (10m), got 5m`},
		{"a lockout longer than the default maximum, shown at the lockout", "[rate_limit]\nlockout = \"2h\"",
			`2: key "rate_limit.max_lockout": must be at least rate_limit.lockout (2h), got 1h`},
		{"a maximum lockout over 7 days", "[rate_limit]\nmax_lockout = \"169h\"",
			`2: key "rate_limit.max_lockout": must be at most 168h (7 days), got 169h`},
		{"101 consecutive failures", "[rate_limit]\nmax_consecutive_failures = 101",
			`2: key "rate_limit.max_consecutive_failures": must be at most 100 (RFC 4226 §7.3 and NIST SP 800-63B §5.2.2 limit consecutive failed attempts to 100), got 101`},
		{"fewer consecutive failures than failures", "[rate_limit]\nmax_failures = 10\nmax_consecutive_failures = 9",
			`3: key "rate_limit.max_consecutive_failures": must be at least rate_limit.max_failures (10), got 9`},
		{"a per-source limit that does not come before the per-user one", "[rate_limit]\nmax_failures = 5\nper_source_max_failures = 5",
			`3: key "rate_limit.per_source_max_failures": must be below rate_limit.max_failures (5), so that one address is blocked before its guesses lock the user out; got 5`},
		{"a per-source lockout of zero", "[rate_limit]\nper_source_lockout = \"0s\"",
			`2: key "rate_limit.per_source_lockout": must be between 1s and 168h, got 0s`},
		{"remember longer than 30 days", "[policy]\nremember = \"721h\"",
			`2: key "policy.remember": must be between 0s and 720h, got 721h`},
		{"negative remember", "[policy]\nremember = \"-1h\"",
			`2: key "policy.remember": must be between 0s and 720h, got -1h`},
		{"enroll_on_login_until not a date", "[policy]\nenroll_on_login_until = \"31.12.2026\"",
			`2: key "policy.enroll_on_login_until": must be a date such as "2026-12-31" or empty, got "31.12.2026"`},
		{"enroll_on_login_days negative", "[policy]\nenroll_on_login_days = -1",
			`2: key "policy.enroll_on_login_days": must be between 0 and 365, got -1`},
		{"enroll_on_login_days too long", "[policy]\nenroll_on_login_days = 366",
			`2: key "policy.enroll_on_login_days": must be between 0 and 365, got 366`},
		{"a network with host bits", "[policy]\nexempt_networks = [\"10.1.2.3/8\"]",
			`2: key "policy.exempt_networks": "10.1.2.3/8" is not a network in CIDR form with the host bits zero, such as "10.0.0.0/8" or "2001:db8::/32"`},
		{"a host name as a network", "[policy]\nexempt_networks = [\"office.example.com\"]",
			`2: key "policy.exempt_networks": "office.example.com" is not a network in CIDR form with the host bits zero, such as "10.0.0.0/8" or "2001:db8::/32"`},
		{"a jump host with host bits in its network", "[policy]\njump_hosts = [\"10.0.1.5/24\"]",
			`2: key "policy.jump_hosts": "10.0.1.5/24" is not an IP address or a network in CIDR form with the host bits zero, such as "10.0.0.5" or "10.0.1.0/24"`},
		{"a jump host by name", "[policy]\njump_hosts = [\"bastion.example.com\"]",
			`2: key "policy.jump_hosts": "bastion.example.com" is not an IP address or a network in CIDR form with the host bits zero, such as "10.0.0.5" or "10.0.1.0/24"`},
		{"a jump host with a zone", "[policy]\njump_hosts = [\"fe80::1%eth0\"]",
			`2: key "policy.jump_hosts": "fe80::1%eth0" is not an IP address or a network in CIDR form with the host bits zero, such as "10.0.0.5" or "10.0.1.0/24"`},
		{"a jump window over 5 minutes", "[policy]\njump_window = \"5m1s\"",
			`2: key "policy.jump_window": must be between 1s and 5m, got 5m1s`},
		{"a jump window of zero", "[policy]\njump_window = \"0s\"",
			`2: key "policy.jump_window": must be between 1s and 5m, got 0s`},
		{"a 15-byte secret", "[enroll]\nsecret_bytes = 15",
			`2: key "enroll.secret_bytes": must be between 16 and 64 bytes (RFC 4226 R6 requires at least 128 bits; 20 is recommended), got 15`},
		{"a 65-byte secret", "[enroll]\nsecret_bytes = 65",
			`2: key "enroll.secret_bytes": must be between 16 and 64 bytes (RFC 4226 R6 requires at least 128 bits; 20 is recommended), got 65`},
		{"negative recovery codes", "[enroll]\nrecovery_codes = -1",
			`2: key "enroll.recovery_codes": must be between 0 and 20, got -1`},
		{"too many recovery codes", "[enroll]\nrecovery_codes = 21",
			`2: key "enroll.recovery_codes": must be between 0 and 20, got 21`},
		{"a pending timeout under a minute", "[enroll]\npending_timeout = \"59s\"",
			`2: key "enroll.pending_timeout": must be between 1m and 24h, got 59s`},
		{"a pending timeout over a day", "[enroll]\npending_timeout = \"24h0m1s\"",
			`2: key "enroll.pending_timeout": must be between 1m and 24h, got 24h0m1s`},
		{"a relative audit file", "[audit]\ndestination = \"audit.log\"",
			`2: key "audit.destination": must be "stderr", "syslog" or an absolute file path, got "audit.log"`},
		{"an audit directory", "[audit]\ndestination = \"/var/log/\"",
			`2: key "audit.destination": must name a file, not a directory, got "/var/log/"`},
	}
	runFileCases(t, tests)
}

func TestLoadAcceptsBoundaryValues(t *testing.T) {
	content := `
issuer = "Ünïcode Bastion (prod)"
[totp]
digits = 8
period = 300
skew = 0
clock_hint_steps = 120
[daemon]
socket = "/` + strings.Repeat("s", 106) + `"
max_conns_per_uid = 1024
request_timeout = "100ms"
[store]
backend = "postgres"
timeout = "1m"
max_conns = 1000
[policy]
required_users = ["_svc", "Admin@AD.EXAMPLE", "host$", "a.b-c"]
jump_hosts = ["10.0.0.5", "10.0.0.0/8", "::ffff:10.0.0.6", "2001:db8::/128"]
jump_window = "5m"
[rate_limit]
max_failures = 100
lockout = "24h"
backoff = 10
max_lockout = "168h"
max_consecutive_failures = 100
[enroll]
secret_bytes = 64
recovery_codes = 20
pending_timeout = "1m"
[audit]
destination = "syslog"
`
	if _, err := config.Load(writeConfig(t, content)); err != nil {
		t.Errorf("boundary values refused:\n%v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := config.Default()
	c.TOTP.Digits = 10
	c.Daemon.LogLevel = "loud"
	c.RateLimit.Backoff = math.Inf(1)
	c.Audit.Destination = ""
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted four broken values")
	}
	want := `key "totp.digits": must be between 6 and 8, got 10` + "\n" +
		`key "daemon.log_level": must be "debug", "info", "warn" or "error", got "loud"` + "\n" +
		`key "rate_limit.backoff": must be between 1 and 10, got inf` + "\n" +
		`key "audit.destination": must be "stderr", "syslog" or an absolute file path, got ""`
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 4 {
		t.Errorf("Validate should join one error per problem, got %#v", err)
	}
}

func TestValidateChangesNothing(t *testing.T) {
	c := config.Default()
	c.TOTP.Algorithm = "sha-512"
	c.TOTP.Digits = 99
	c.Policy.ExemptUsers = []string{}
	before := c
	before.Policy.ExemptUsers = []string{}
	_ = c.Validate()
	if !reflect.DeepEqual(c, before) {
		t.Errorf("Validate modified the config:\n got %+v\nwant %+v", c, before)
	}
}

func TestValidateAcceptsAlgorithmInAnyCase(t *testing.T) {
	c := config.Default()
	c.TOTP.Algorithm = "sha512"
	if err := c.Validate(); err != nil {
		t.Errorf("lower-case algorithm refused: %v", err)
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	var d config.Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d.Duration != 90*time.Minute {
		t.Errorf(`UnmarshalText("1h30m") = %v, %v; want 1h30m`, d.Duration, err)
	}
	err := d.UnmarshalText([]byte("300"))
	if err == nil || !strings.Contains(err.Error(), `"5m" or "1h30m"`) {
		t.Errorf(`UnmarshalText("300") error %v should show the expected form`, err)
	}
	if d.Duration != 90*time.Minute {
		t.Errorf("a failed UnmarshalText changed the value to %v", d.Duration)
	}
}
