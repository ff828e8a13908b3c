package otp_test

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/otp"
)

// hello is the secret of the well-known base32 string JBSWY3DPEHPK3PXP.
var hello = []byte("Hello!\xde\xad\xbe\xef")

// requireSameKey fails unless got and want are equal, secret included.
func requireSameKey(t *testing.T, got, want otp.Key) {
	t.Helper()
	if got.Issuer != want.Issuer || got.Account != want.Account || got.Params != want.Params || !bytes.Equal(got.Secret, want.Secret) {
		t.Fatalf("got key\n%+v\nwant\n%+v", got, want)
	}
}

func TestKeyURIFormat(t *testing.T) {
	tests := []struct {
		name string
		key  otp.Key
		want string
	}{
		{
			"an issuer and an e-mail account give the documented form",
			otp.Key{Issuer: "ACME Co", Account: "alice@example.com", Secret: hello, Params: otp.DefaultParams()},
			"otpauth://totp/ACME%20Co:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co",
		},
		{
			"no issuer gives a bare account label and no issuer parameter",
			otp.Key{Account: "alice", Secret: hello, Params: otp.Params{Algorithm: otp.SHA512, Digits: 8, Period: 60}},
			"otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&algorithm=SHA512&digits=8&period=60",
		},
		{
			"a parameter that differs from the default is written, the others are not",
			otp.Key{Issuer: "ACME", Account: "bob", Secret: hello, Params: otp.Params{Algorithm: otp.SHA1, Digits: 8, Period: 30}},
			"otpauth://totp/ACME:bob?secret=JBSWY3DPEHPK3PXP&issuer=ACME&digits=8",
		},
		{
			"colons inside names are encoded and only the separator is literal",
			otp.Key{Issuer: "a:b", Account: "c:d", Secret: hello, Params: otp.DefaultParams()},
			"otpauth://totp/a%3Ab:c%3Ad?secret=JBSWY3DPEHPK3PXP&issuer=a%3Ab",
		},
		{
			"query and path delimiters in names are encoded",
			otp.Key{Issuer: "R&D+Ops=1", Account: "x/y?z#w%", Secret: hello, Params: otp.DefaultParams()},
			"otpauth://totp/R%26D%2BOps%3D1:x%2Fy%3Fz%23w%25?secret=JBSWY3DPEHPK3PXP&issuer=R%26D%2BOps%3D1",
		},
		{
			"non-ASCII names are UTF-8 percent-encoded",
			otp.Key{Issuer: "Bäckerei", Account: "jürgen", Secret: hello, Params: otp.DefaultParams()},
			"otpauth://totp/B%C3%A4ckerei:j%C3%BCrgen?secret=JBSWY3DPEHPK3PXP&issuer=B%C3%A4ckerei",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.URI(); got != tt.want {
				t.Fatalf("URI() =\n%s\nwant\n%s", got, tt.want)
			}
			if _, err := url.Parse(tt.want); err != nil {
				t.Fatalf("net/url cannot parse the URI: %v", err)
			}
		})
	}
}

func TestKeyURIRoundTrips(t *testing.T) {
	names := []struct{ issuer, account string }{
		{"ACME Co", "alice@example.com"},
		{"", "alice"},
		{"", "alice smith@example.com"},
		{"My Server", "root"},
		{"a:b", "c"},
		{"ACME", "user:with:colons"},
		{":", ":"},
		{"R&D", "a&b=c"},
		{"100%", "%41%3A%zz"},
		{"plus+sign", "a+b"},
		{"slash/issuer", "path/like/account"},
		{"question?", "hash#tag"},
		{" leading space issuer", "trailing space account "},
		{"Bäckerei Müller", "jürgen@bäckerei.de"},
		{"日本銀行", "ユーザー"},
		{"emoji 🔐", "🙂"},
		{"quote\"s", "semi;colon,comma"},
		{"tilde~dot.dash-under_", "~"},
	}
	params := []otp.Params{
		otp.DefaultParams(),
		{Algorithm: otp.SHA256, Digits: 7, Period: 1},
		{Algorithm: otp.SHA512, Digits: 8, Period: 3600},
	}
	for i, n := range names {
		k := otp.Key{Issuer: n.issuer, Account: n.account, Secret: []byte(strings.Repeat("k", 16+i)), Params: params[i%len(params)]}
		t.Run(fmt.Sprintf("issuer %q and account %q round-trip", n.issuer, n.account), func(t *testing.T) {
			if err := k.Validate(); err != nil {
				t.Fatalf("fixture: Validate() = %v", err)
			}
			uri := k.URI()
			got, err := otp.ParseURI(uri)
			if err != nil {
				t.Fatalf("ParseURI(%s) = %v", uri, err)
			}
			requireSameKey(t, got, k)
			label := strings.TrimPrefix(uri[:strings.IndexByte(uri, '?')], "otpauth://totp/")
			if want := map[bool]int{true: 1, false: 0}[k.Issuer != ""]; strings.Count(label, ":") != want {
				t.Errorf("label %q has %d literal colons, want %d (the separator only)", label, strings.Count(label, ":"), want)
			}
		})
	}
}

func TestParseURIAcceptsForeignForms(t *testing.T) {
	const s = "JBSWY3DPEHPK3PXP"
	def := otp.DefaultParams()
	tests := []struct {
		name string
		uri  string
		want otp.Key
	}{
		{"Google's documented example", "otpauth://totp/Example:alice@google.com?secret=" + s + "&issuer=Example",
			otp.Key{Issuer: "Example", Account: "alice@google.com", Secret: hello, Params: def}},
		{"an encoded colon as the separator", "otpauth://totp/ACME%20Co%3Ajohn.doe@email.com?secret=" + s + "&issuer=ACME%20Co",
			otp.Key{Issuer: "ACME Co", Account: "john.doe@email.com", Secret: hello, Params: def}},
		{"a lower case encoded colon", "otpauth://totp/ACME%3ajohn?secret=" + s,
			otp.Key{Issuer: "ACME", Account: "john", Secret: hello, Params: def}},
		{"spaces after the colon are dropped", "otpauth://totp/ACME:%20%20john?secret=" + s,
			otp.Key{Issuer: "ACME", Account: "john", Secret: hello, Params: def}},
		{"a label issuer without the parameter", "otpauth://totp/ACME:john?secret=" + s,
			otp.Key{Issuer: "ACME", Account: "john", Secret: hello, Params: def}},
		{"an issuer parameter without a label issuer", "otpauth://totp/john?secret=" + s + "&issuer=ACME",
			otp.Key{Issuer: "ACME", Account: "john", Secret: hello, Params: def}},
		{"a '+' in the issuer parameter is a space", "otpauth://totp/ACME%20Co:john?secret=" + s + "&issuer=ACME+Co",
			otp.Key{Issuer: "ACME Co", Account: "john", Secret: hello, Params: def}},
		{"missing parameters take the defaults", "otpauth://totp/john?secret=" + s,
			otp.Key{Account: "john", Secret: hello, Params: def}},
		{"an upper case type and scheme", "OTPAUTH://TOTP/john?secret=" + s,
			otp.Key{Account: "john", Secret: hello, Params: def}},
		{"lower case algorithm and secret with padding", "otpauth://totp/john?secret=mzxw6ytboi======&algorithm=sha256&digits=8&period=60",
			otp.Key{Account: "john", Secret: []byte("foobar"), Params: otp.Params{Algorithm: otp.SHA256, Digits: 8, Period: 60}}},
		{"a dashed algorithm", "otpauth://totp/john?secret=" + s + "&algorithm=SHA-512",
			otp.Key{Account: "john", Secret: hello, Params: otp.Params{Algorithm: otp.SHA512, Digits: 6, Period: 30}}},
		{"unknown parameters are ignored", "otpauth://totp/john?image=https%3A%2F%2Fexample.com%2Fa.png&secret=" + s + "&color=red",
			otp.Key{Account: "john", Secret: hello, Params: def}},
		{"literal UTF-8 in the label", "otpauth://totp/Bäckerei:jürgen?secret=" + s,
			otp.Key{Issuer: "Bäckerei", Account: "jürgen", Secret: hello, Params: def}},
		{"a literal colon wins over an encoded one", "otpauth://totp/a%3Ab:c?secret=" + s,
			otp.Key{Issuer: "a:b", Account: "c", Secret: hello, Params: def}},
		{"an encoded percent sign is not a separator", "otpauth://totp/a%253Ab?secret=" + s,
			otp.Key{Account: "a%3Ab", Secret: hello, Params: def}},
		{"a secret below 128 bits still parses", "otpauth://totp/john?secret=MZXW6",
			otp.Key{Account: "john", Secret: []byte("foo"), Params: def}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := otp.ParseURI(tt.uri)
			if err != nil {
				t.Fatalf("ParseURI(%s) = %v", tt.uri, err)
			}
			requireSameKey(t, got, tt.want)
		})
	}
}

func TestParseURIRejects(t *testing.T) {
	const s = "JBSWY3DPEHPK3PXP"
	tests := []struct {
		name    string
		uri     string
		wantErr string
	}{
		{"another scheme", "https://totp/a?secret=" + s, `otp: URI scheme is "https": want otpauth`},
		{"no scheme at all", "totp/a?secret=" + s, `otp: URI scheme is "": want otpauth`},
		{"a missing //", "otpauth:totp/a?secret=" + s, "otp: URI must begin with otpauth:// (the // is missing)"},
		{"an hotp key", "otpauth://hotp/a?secret=" + s + "&counter=0", "otp: hotp (counter-based) keys are not supported: only totp"},
		{"an unknown type", "otpauth://xotp/a?secret=" + s, `otp: URI type is "xotp": want totp`},
		{"a port after the type", "otpauth://totp:80/a?secret=" + s, `otp: URI type is "totp:80": want totp`},
		{"user information", "otpauth://alice@totp/a?secret=" + s, "otp: URI has user information before the type"},
		{"a fragment", "otpauth://totp/a?secret=" + s + "#x", "otp: URI has a fragment ('#'); write a '#' in a name as %23"},
		{"an empty label", "otpauth://totp/?secret=" + s, "otp: URI label has no account name"},
		{"no path at all", "otpauth://totp?secret=" + s, "otp: URI label has no account name"},
		{"an issuer without an account", "otpauth://totp/ACME:?secret=" + s, "otp: URI label has no account name"},
		{"an account of spaces", "otpauth://totp/ACME:%20%20?secret=" + s, "otp: URI label has no account name"},
		{"no secret", "otpauth://totp/a?issuer=ACME", "otp: URI has no secret parameter"},
		{"an empty secret", "otpauth://totp/a?secret=", "otp: URI parameter secret: the secret is empty"},
		{"a bad base32 character", "otpauth://totp/a?secret=JBSW0Y3D", "otp: URI parameter secret: invalid character '0' at position 5 of the secret"},
		{"an impossible secret length", "otpauth://totp/a?secret=JBSWY3DPE", "otp: URI parameter secret: a secret of 9 base32 characters is impossible"},
		{"two secrets", "otpauth://totp/a?secret=" + s + "&secret=MZXW6", "otp: URI parameter secret appears 2 times: want at most once"},
		{"two issuers", "otpauth://totp/a?secret=" + s + "&issuer=A&issuer=A", "otp: URI parameter issuer appears 2 times"},
		{"two digits", "otpauth://totp/a?secret=" + s + "&digits=6&digits=8", "otp: URI parameter digits appears 2 times"},
		{"disagreeing issuers", "otpauth://totp/Evil:a?secret=" + s + "&issuer=Good", `otp: URI label issuer "Evil" differs from the issuer parameter "Good"`},
		{"disagreeing issuers with an encoded colon", "otpauth://totp/Evil%3Aa?secret=" + s + "&issuer=Good", `otp: URI label issuer "Evil" differs from the issuer parameter "Good"`},
		{"an unknown algorithm", "otpauth://totp/a?secret=" + s + "&algorithm=MD5", `otp: URI parameter algorithm="MD5": want SHA1, SHA256 or SHA512`},
		{"an empty algorithm", "otpauth://totp/a?secret=" + s + "&algorithm=", `otp: URI parameter algorithm="": want SHA1, SHA256 or SHA512`},
		{"5 digits", "otpauth://totp/a?secret=" + s + "&digits=5", `otp: URI parameter digits="5": want 6, 7 or 8`},
		{"9 digits", "otpauth://totp/a?secret=" + s + "&digits=9", `otp: URI parameter digits="9": want 6, 7 or 8`},
		{"signed digits", "otpauth://totp/a?secret=" + s + "&digits=%2B6", `otp: URI parameter digits="+6": want 6, 7 or 8`},
		{"fractional digits", "otpauth://totp/a?secret=" + s + "&digits=6.0", `otp: URI parameter digits="6.0"`},
		{"empty digits", "otpauth://totp/a?secret=" + s + "&digits=", `otp: URI parameter digits="": want 6, 7 or 8`},
		{"digits that overflow an int", "otpauth://totp/a?secret=" + s + "&digits=18446744073709551622", `otp: URI parameter digits="18446744073709551622": want 6, 7 or 8`},
		{"a zero period", "otpauth://totp/a?secret=" + s + "&period=0", `otp: URI parameter period="0": want 1 to 3600 seconds`},
		{"a negative period", "otpauth://totp/a?secret=" + s + "&period=-30", `otp: URI parameter period="-30": want 1 to 3600 seconds`},
		{"a period with a unit", "otpauth://totp/a?secret=" + s + "&period=30s", `otp: URI parameter period="30s": want 1 to 3600 seconds`},
		{"a period over an hour", "otpauth://totp/a?secret=" + s + "&period=3601", `otp: URI parameter period="3601": want 1 to 3600 seconds`},
		{"a bad escape in the query", "otpauth://totp/a?secret=" + s + "&x=%zz", "otp: URI query is malformed"},
		{"a semicolon in the query", "otpauth://totp/a?secret=" + s + ";digits=8", "otp: URI query is malformed"},
		{"a bad escape in the label", "otpauth://totp/a%zz?secret=" + s, "otp: not a valid URI"},
		{"a newline in the account", "otpauth://totp/ACME:al%0Aice?secret=" + s, "otp: account name contains the control character U+000A"},
		{"an escape character in the issuer parameter", "otpauth://totp/a?secret=" + s + "&issuer=%1B%5B31m", "otp: issuer contains the control character U+001B"},
		{"invalid UTF-8 in the account", "otpauth://totp/ACME:%FF?secret=" + s, "otp: account name is not valid UTF-8"},
		{"plain text", "JBSWY3DPEHPK3PXP", `otp: URI scheme is ""`},
		{"garbage", "::", "otp: not a valid URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			k, err := otp.ParseURI(tt.uri)
			if err == nil {
				t.Fatalf("ParseURI(%q) = %+v, want an error", tt.uri, k)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseURI(%q) error\n%q\nwant it to contain\n%q", tt.uri, err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "otp: ") {
				t.Errorf("error %q lacks the otp: prefix", err)
			}
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q quotes the secret", err)
			}
			if k.Secret != nil {
				t.Errorf("ParseURI returned a secret with its error")
			}
		})
	}
}

func TestKeyValidate(t *testing.T) {
	valid := otp.Key{Issuer: "ACME", Account: "alice", Secret: hello, Params: otp.DefaultParams()}
	with := func(f func(*otp.Key)) otp.Key { k := valid; f(&k); return k }
	tests := []struct {
		name    string
		key     otp.Key
		wantErr string // "" for valid
	}{
		{"a complete key is valid", valid, ""},
		{"a key without issuer is valid", with(func(k *otp.Key) { k.Issuer = "" }), ""},
		{"an account with colons and an issuer is valid", with(func(k *otp.Key) { k.Account = "a:b" }), ""},
		{"bad params are named", with(func(k *otp.Key) { k.Digits = 10 }), "otp: digits must be 6, 7 or 8, not 10"},
		{"a missing secret is refused", with(func(k *otp.Key) { k.Secret = nil }), "otp: key has no secret"},
		{"a missing account is refused", with(func(k *otp.Key) { k.Account = "" }), "otp: key has no account name"},
		{"an account beginning with a space is refused", with(func(k *otp.Key) { k.Account = " alice" }), `otp: account name " alice" begins with a space, which the otpauth format drops`},
		{"a colon in the account without issuer is refused", with(func(k *otp.Key) { k.Issuer, k.Account = "", "a:b" }), `otp: account name "a:b" contains ':' but the key has no issuer, so the text before ':' would be read as the issuer`},
		{"a control character in the issuer is refused", with(func(k *otp.Key) { k.Issuer = "AC\x1bME" }), "otp: issuer contains the control character U+001B at byte 3"},
		{"a C1 control character in the account is refused", with(func(k *otp.Key) { k.Account = "al\u0085ice" }), "otp: account name contains the control character U+0085 at byte 3"},
		{"invalid UTF-8 in the account is refused", with(func(k *otp.Key) { k.Account = "a\xffb" }), "otp: account name is not valid UTF-8 (byte 2 is 0xff)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
