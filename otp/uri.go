package otp

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Key is what an otpauth:// URI carries (the Google Authenticator Key Uri
// Format): who the code is for, the secret and its parameters.
type Key struct {
	Issuer  string
	Account string
	Secret  []byte
	Params
}

// URI returns the otpauth://totp/ URI of k, with the label
// "issuer:account" and the parameters as query values.
func (k Key) URI() string {
	label := url.PathEscape(k.Account)
	if k.Issuer != "" {
		label = url.PathEscape(k.Issuer) + ":" + label
	}
	q := url.Values{}
	q.Set("secret", EncodeSecret(k.Secret))
	if k.Issuer != "" {
		q.Set("issuer", k.Issuer)
	}
	q.Set("algorithm", k.Algorithm.String())
	q.Set("digits", strconv.Itoa(k.Digits))
	q.Set("period", strconv.Itoa(k.Period))
	return "otpauth://totp/" + label + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

// ParseURI parses an otpauth://totp/ URI. Missing algorithm, digits and
// period take the defaults of DefaultParams.
func ParseURI(s string) (Key, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Key{}, fmt.Errorf("otp: not a URI: %w", err)
	}
	if u.Scheme != "otpauth" {
		return Key{}, fmt.Errorf("otp: URI scheme is %q, want otpauth", u.Scheme)
	}
	switch u.Host {
	case "totp":
	case "hotp":
		return Key{}, fmt.Errorf("otp: hotp (counter-based) URIs are not supported, only totp")
	default:
		return Key{}, fmt.Errorf("otp: URI type is %q, want totp", u.Host)
	}
	label := strings.TrimPrefix(u.Path, "/")
	if label == "" {
		return Key{}, fmt.Errorf("otp: URI has no label (issuer:account)")
	}
	k := Key{Params: DefaultParams()}
	if i := strings.Index(label, ":"); i >= 0 {
		k.Issuer, k.Account = label[:i], strings.TrimLeft(label[i+1:], " ")
	} else {
		k.Account = label
	}
	q := u.Query()
	if iss := q.Get("issuer"); iss != "" {
		if k.Issuer != "" && k.Issuer != iss {
			return Key{}, fmt.Errorf("otp: label issuer %q differs from issuer parameter %q", k.Issuer, iss)
		}
		k.Issuer = iss
	}
	sec := q.Get("secret")
	if sec == "" {
		return Key{}, fmt.Errorf("otp: URI has no secret parameter")
	}
	if k.Secret, err = DecodeSecret(sec); err != nil {
		return Key{}, fmt.Errorf("otp: secret parameter: %w", err)
	}
	if a := q.Get("algorithm"); a != "" {
		if k.Algorithm, err = ParseAlgorithm(a); err != nil {
			return Key{}, fmt.Errorf("otp: algorithm parameter: %w", err)
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"digits", &k.Digits}, {"period", &k.Period}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return Key{}, fmt.Errorf("otp: %s parameter %q is not a number", f.name, v)
			}
			*f.dst = n
		}
	}
	if err := k.Params.Validate(); err != nil {
		return Key{}, err
	}
	return k, nil
}
