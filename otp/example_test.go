package otp_test

import (
	"fmt"
	"time"

	"github.com/otpgate/otpgate/otp"
)

func ExampleTOTP() {
	// The RFC 6238 test seed, "12345678901234567890", in base32.
	secret, err := otp.DecodeSecret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	if err != nil {
		fmt.Println(err)
		return
	}
	p := otp.Params{Algorithm: otp.SHA1, Digits: 8, Period: 30}
	fmt.Println(otp.TOTP(secret, time.Unix(59, 0), p))
	fmt.Println(otp.TOTP(secret, time.Unix(20000000000, 0), p))
	// Output:
	// 94287082
	// 65353130
}

func ExampleKey_URI() {
	k := otp.Key{
		Issuer:  "ACME Co",
		Account: "alice@example.com",
		Secret:  []byte("Hello!\xde\xad\xbe\xef"),
		Params:  otp.DefaultParams(),
	}
	if err := k.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(k.URI())
	// Output: otpauth://totp/ACME%20Co:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co
}

func ExampleParseURI() {
	k, err := otp.ParseURI("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(k.Issuer, k.Account, k.Algorithm, k.Digits, k.Period)
	fmt.Println(otp.CheckSecretLength(k.Secret))

	_, err = otp.ParseURI("otpauth://hotp/Example:alice?secret=JBSWY3DPEHPK3PXP&counter=0")
	fmt.Println(err)
	// Output:
	// Example alice@google.com SHA1 6 30
	// otp: secret is 80 bits; at least 128 bits are required
	// otp: hotp (counter-based) keys are not supported: only totp
}

func ExampleVerify() {
	secret := []byte("12345678901234567890")
	p := otp.DefaultParams()
	now := time.Unix(1111111111, 0)
	center := otp.Step(now, p.Period)

	// A code read from the app just before its step ended.
	late := otp.TOTP(secret, now.Add(-30*time.Second), p)
	step, ok := otp.Verify(secret, late, center, 1, 1, p)
	fmt.Println(ok, center-step)

	// The caller stores step and refuses any later code whose step is not
	// greater (RFC 6238 §5.2). Malformed input never matches.
	_, ok = otp.Verify(secret, " "+late, center, 1, 1, p)
	fmt.Println(ok)
	// Output:
	// true 1
	// false
}

func ExampleDecodeSecret() {
	b, err := otp.DecodeSecret("jbsw y3dp ehpk 3pxp")
	fmt.Printf("%x %v\n", b, err)

	_, err = otp.DecodeSecret("JBSW Y3D0")
	fmt.Println(err)
	// Output:
	// 48656c6c6f21deadbeef <nil>
	// otp: invalid character '0' at position 9 of the secret (base32 has no 0: did you mean the letter O?); base32 uses only the letters A-Z and the digits 2-7
}
