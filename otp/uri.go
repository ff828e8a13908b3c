package otp

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Key is what an otpauth:// URI carries (the Google Authenticator Key Uri
// Format): who the codes are for, the secret and its parameters.
type Key struct {
	// Issuer names the service, e.g. "ACME Co"; it may be empty.
	Issuer string
	// Account names the user at the issuer, e.g. "alice@example.com".
	Account string
	// Secret is the raw (decoded) shared secret.
	Secret []byte
	Params
}

// Validate reports whether k can be written as a URI that ParseURI reads
// back as k: valid Params, a non-empty secret and account name, names that
// are valid UTF-8 without control characters, an account name that does not
// begin with a space (the format strips spaces after the issuer prefix) and,
// without an issuer, no ':' in the account name (the text before it would
// be read as the issuer). ParseURI returns only keys that pass Validate.
func (k Key) Validate() error {
	if err := k.Params.Validate(); err != nil {
		return err
	}
	if len(k.Secret) == 0 {
		return errors.New("otp: key has no secret")
	}
	if err := checkName("issuer", k.Issuer); err != nil {
		return err
	}
	if err := checkName("account name", k.Account); err != nil {
		return err
	}
	switch {
	case k.Account == "":
		return errors.New("otp: key has no account name")
	case k.Account[0] == ' ':
		return fmt.Errorf("otp: account name %q begins with a space, which the otpauth format drops", k.Account)
	case k.Issuer == "" && strings.Contains(k.Account, ":"):
		return fmt.Errorf("otp: account name %q contains ':' but the key has no issuer, so the text before ':' would be read as the issuer", k.Account)
	}
	return nil
}

// checkName refuses invalid UTF-8 and control characters (which could
// rewrite a terminal or a log line when the name is shown) in field.
func checkName(field, s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Errorf("otp: %s is not valid UTF-8 (byte %d is %#02x)", field, i+1, s[i])
			}
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("otp: %s contains the control character %U at byte %d", field, r, i+1)
		}
	}
	return nil
}

// escapeLabel percent-encodes a label part: everything but the RFC 3986
// unreserved characters and '@' (common in account names and harmless in a
// path), so that a ':' inside the issuer or account name can never be taken
// for the separator, and '+' or '&' never confuse a lax parser.
func escapeLabel(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~@", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// URI returns the otpauth://totp/ URI of k:
//
//	otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER&algorithm=SHA256&digits=8&period=60
//
// algorithm, digits and period are left out when they equal DefaultParams
// (SHA1, 6, 30), which every reader of the format assumes: the URI, and so
// the QR code that carries it, is then shorter, and the code fits a
// smaller terminal. The issuer is always written, in the label and as the
// parameter, as the format recommends.
//
// The issuer and account name are percent-encoded separately (':' inside
// them becomes %3A; the separator stays a literal ':'). Query values are
// escaped as url.Values escapes them, except that a space is %20 rather
// than '+', which some apps show literally. The parameters that are
// written come in the order above, secret first, as in the format's
// documentation; without an issuer, the label is the account name alone and
// there is no issuer parameter. URI does not check k: call Validate first.
func (k Key) URI() string {
	label := escapeLabel(k.Account)
	if k.Issuer != "" {
		label = escapeLabel(k.Issuer) + ":" + label
	}
	var q strings.Builder
	param := func(name, value string) {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(name)
		q.WriteByte('=')
		q.WriteString(strings.ReplaceAll(url.QueryEscape(value), "+", "%20"))
	}
	param("secret", EncodeSecret(k.Secret))
	if k.Issuer != "" {
		param("issuer", k.Issuer)
	}
	def := DefaultParams()
	if k.Algorithm != def.Algorithm {
		param("algorithm", k.Algorithm.String())
	}
	if k.Digits != def.Digits {
		param("digits", strconv.Itoa(k.Digits))
	}
	if k.Period != def.Period {
		param("period", strconv.Itoa(k.Period))
	}
	return "otpauth://totp/" + label + "?" + q.String()
}

// ParseURI parses an otpauth://totp/ URI such as
//
//	otpauth://totp/ACME%20Co:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co
//
// The label is "account" or "issuer:account"; the separator may be a
// literal or an encoded (%3A) colon, and spaces after it are dropped. An
// issuer in both the label and the issuer parameter must agree. A missing
// algorithm, digits or period takes its value from DefaultParams; unknown
// parameters (such as image) are ignored, and a known parameter given twice
// is an error. hotp URIs are refused as not supported. Errors name the part
// or parameter at fault and what was expected; they never quote the secret.
//
// The length of the secret is not checked: see CheckSecretLength.
func ParseURI(s string) (Key, error) {
	u, err := url.Parse(s)
	if err != nil {
		// A *url.Error quotes the whole URI, secret included: keep only the
		// reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Key{}, fmt.Errorf("otp: not a valid URI: %w", err)
	}
	switch {
	case u.Scheme != "otpauth":
		return Key{}, fmt.Errorf("otp: URI scheme is %q: want otpauth", u.Scheme)
	case u.Opaque != "":
		return Key{}, errors.New("otp: URI must begin with otpauth:// (the // is missing)")
	case u.User != nil:
		return Key{}, errors.New("otp: URI has user information before the type: want otpauth://totp/")
	case strings.Contains(s, "#"):
		return Key{}, errors.New("otp: URI has a fragment ('#'); write a '#' in a name as %23")
	case asciiEqualFold(u.Host, "HOTP"):
		return Key{}, errors.New("otp: hotp (counter-based) keys are not supported: only totp")
	case !asciiEqualFold(u.Host, "TOTP"):
		return Key{}, fmt.Errorf("otp: URI type is %q: want totp", u.Host)
	}

	k := Key{Params: DefaultParams()}
	if k.Issuer, k.Account, err = splitLabel(u); err != nil {
		return Key{}, err
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Key{}, fmt.Errorf("otp: URI query is malformed: %w", err)
	}
	for _, name := range []string{"secret", "issuer", "algorithm", "digits", "period"} {
		if n := len(q[name]); n > 1 {
			return Key{}, fmt.Errorf("otp: URI parameter %s appears %d times: want at most once", name, n)
		}
	}
	if iss := q.Get("issuer"); iss != "" {
		if k.Issuer != "" && k.Issuer != iss {
			return Key{}, fmt.Errorf("otp: URI label issuer %q differs from the issuer parameter %q", k.Issuer, iss)
		}
		k.Issuer = iss
	}

	if !q.Has("secret") {
		return Key{}, errors.New("otp: URI has no secret parameter")
	}
	if k.Secret, err = decodeSecret(q.Get("secret")); err != nil {
		return Key{}, fmt.Errorf("otp: URI parameter secret: %w", err)
	}
	if q.Has("algorithm") {
		if k.Algorithm, err = ParseAlgorithm(q.Get("algorithm")); err != nil {
			return Key{}, fmt.Errorf("otp: URI parameter algorithm=%q: want SHA1, SHA256 or SHA512", q.Get("algorithm"))
		}
	}
	if q.Has("digits") {
		if k.Digits, err = parseParam(q, "digits", minDigits, maxDigits, "6, 7 or 8"); err != nil {
			return Key{}, err
		}
	}
	if q.Has("period") {
		if k.Period, err = parseParam(q, "period", minPeriod, maxPeriod, "1 to 3600 seconds"); err != nil {
			return Key{}, err
		}
	}
	if err := k.Validate(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// parseParam parses the decimal parameter name, which must be lo to hi
// (described by want). Only ASCII digits are accepted: no sign, no spaces.
func parseParam(q url.Values, name string, lo, hi int, want string) (int, error) {
	v := q.Get(name)
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' || n > hi {
			return 0, fmt.Errorf("otp: URI parameter %s=%q: want %s", name, v, want)
		}
		n = 10*n + int(v[i]-'0')
	}
	if v == "" || n < lo || n > hi {
		return 0, fmt.Errorf("otp: URI parameter %s=%q: want %s", name, v, want)
	}
	return n, nil
}

// splitLabel returns the issuer prefix and the account name of u's label.
func splitLabel(u *url.URL) (issuer, account string, err error) {
	if u.RawPath == "" {
		// u.Path encodes back to exactly what was written, so the
		// original had no %3A and its every ':' is literal.
		label := strings.TrimPrefix(u.Path, "/")
		if before, after, found := strings.Cut(label, ":"); found {
			issuer, account = before, after
		} else {
			account = label
		}
	} else {
		// u.RawPath is the label as written. Split at the first literal
		// ':' or, failing that, the first %3A; then decode each part.
		raw := strings.TrimPrefix(u.RawPath, "/")
		i, n := strings.IndexByte(raw, ':'), 1
		if i < 0 {
			i, n = indexEncodedColon(raw), 3
		}
		rawIssuer, rawAccount := "", raw
		if i >= 0 {
			rawIssuer, rawAccount = raw[:i], raw[i+n:]
		}
		if issuer, err = url.PathUnescape(rawIssuer); err != nil {
			return "", "", fmt.Errorf("otp: URI label issuer: %w", err)
		}
		if account, err = url.PathUnescape(rawAccount); err != nil {
			return "", "", fmt.Errorf("otp: URI label account name: %w", err)
		}
	}
	account = strings.TrimLeft(account, " ")
	if account == "" {
		return "", "", errors.New("otp: URI label has no account name: want otpauth://totp/ISSUER:ACCOUNT or otpauth://totp/ACCOUNT")
	}
	return issuer, account, nil
}

// indexEncodedColon returns the index of the first "%3A" or "%3a" in s, or
// -1.
func indexEncodedColon(s string) int {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '3' && (s[i+2] == 'A' || s[i+2] == 'a') {
			return i
		}
	}
	return -1
}
