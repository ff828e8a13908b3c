package otp_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/otp"
)

// The base32 test vectors of RFC 4648 §10, without their padding.
var rfc4648Vectors = []struct{ raw, encoded string }{
	{"f", "MY"},
	{"fo", "MZXQ"},
	{"foo", "MZXW6"},
	{"foob", "MZXW6YQ"},
	{"fooba", "MZXW6YTB"},
	{"foobar", "MZXW6YTBOI"},
}

func TestEncodeSecretMatchesRFC4648(t *testing.T) {
	for _, v := range rfc4648Vectors {
		t.Run(fmt.Sprintf("%q encodes as %s", v.raw, v.encoded), func(t *testing.T) {
			if got := otp.EncodeSecret([]byte(v.raw)); got != v.encoded {
				t.Errorf("EncodeSecret(%q) = %q, want %q", v.raw, got, v.encoded)
			}
		})
	}
	if got := otp.EncodeSecret([]byte("Hello!\xde\xad\xbe\xef")); got != "JBSWY3DPEHPK3PXP" {
		t.Errorf("EncodeSecret(Hello!deadbeef) = %q, want the well-known JBSWY3DPEHPK3PXP", got)
	}
}

func TestDecodeSecretAcceptsPastedForms(t *testing.T) {
	hello := "Hello!\xde\xad\xbe\xef"
	tests := []struct {
		name, in, want string
	}{
		{"canonical upper case", "JBSWY3DPEHPK3PXP", hello},
		{"lower case in groups of four", "jbsw y3dp ehpk 3pxp", hello},
		{"hyphenated groups", "JBSW-Y3DP-EHPK-3PXP", hello},
		{"mixed case with double spaces", "JbSw  y3Dp  EhPk  3PxP", hello},
		{"leading and trailing spaces", "  JBSWY3DPEHPK3PXP ", hello},
		{"one byte with its padding", "MY======", "f"},
		{"two bytes with padding", "MZXQ====", "fo"},
		{"three bytes with padding", "MZXW6===", "foo"},
		{"four bytes with padding", "MZXW6YQ=", "foob"},
		{"six bytes with padding", "MZXW6YTBOI======", "foobar"},
		{"padding in lower case groups", "mzxw 6===", "foo"},
		{"padding followed by spaces", "MZXW6=== ", "foo"},
		{"one byte without padding", "MY", "f"},
		{"three bytes without padding", "mzxw6", "foo"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s (%q) is accepted", tt.name, tt.in), func(t *testing.T) {
			got, err := otp.DecodeSecret(tt.in)
			if err != nil || string(got) != tt.want {
				t.Fatalf("DecodeSecret(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDecodeSecretRejects(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"a zero, hinting at O", "JBSW0Y3D", `otp: invalid character '0' at position 5 of the secret (base32 has no 0: did you mean the letter O?); base32 uses only the letters A-Z and the digits 2-7`},
		{"a one, hinting at I or L", "1BSWY3DP", `'1' at position 1 of the secret (base32 has no 1: did you mean the letter I or L?)`},
		{"an eight, hinting at B", "JBSWY3D8", `'8' at position 8 of the secret (base32 has no 8: did you mean the letter B?)`},
		{"a nine", "JBSW Y3D9", `'9' at position 9 of the secret (base32 has no 9)`},
		{"an exclamation mark", "JBSW!Y3DP", `invalid character '!' at position 5 of the secret; base32 uses`},
		{"an accented letter, counted as one character", "JBSWÉY3DP", `invalid character 'É' at position 5 of the secret`},
		{"fullwidth letters", "ＪＢＳＷ", `invalid character 'Ｊ' at position 1 of the secret`},
		{"a tab", "JBSW\tY3DP", `invalid character '\t' at position 5 of the secret`},
		{"a newline", "JBSWY3DPEHPK3PXP\n", `invalid character '\n' at position 17 of the secret`},
		{"an underscore", "JBSW_Y3DP", `invalid character '_' at position 5`},
		{"invalid UTF-8", "JB\xffSW", `otp: invalid UTF-8 byte 0xff at position 3 of the secret`},
		{"the empty string", "", "otp: the secret is empty"},
		{"only separators", " - - ", "otp: the secret is empty"},
		{"only padding", "========", "otp: the secret is empty"},
		{"a character after the padding", "MZXW6=A", `otp: character 'A' at position 7 of the secret follows the '=' padding at position 6; padding may only end the secret`},
		{"padding between groups", "MZXW6=== MZXW6===", `character 'M' at position 10 of the secret follows the '=' padding at position 6`},
		{"too little padding", "MZXW6==", `otp: the secret has 2 '=' padding characters where its 5 base32 characters need 3 (or none)`},
		{"padding where none is needed", "JBSWY3DPEHPK3PXP=", `the secret has 1 '=' padding characters where its 16 base32 characters need 0 (or none)`},
		{"one character, which no byte string encodes to", "A", "otp: a secret of 1 base32 characters is impossible: a character is missing or extra"},
		{"three characters", "MZX", "a secret of 3 base32 characters is impossible"},
		{"nine characters", "JBSWY3DPE", "a secret of 9 base32 characters is impossible"},
		{"a last character with non-zero unused bits", "MZXW6YR", "otp: the last base32 character of the secret has non-zero unused bits: the secret is mistyped or truncated"},
		{"the non-canonical spelling of 'f'", "MZ", "non-zero unused bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is an error", func(t *testing.T) {
			got, err := otp.DecodeSecret(tt.in)
			if err == nil {
				t.Fatalf("DecodeSecret(%q) = %q, want an error", tt.in, got)
			}
			if !strings.HasPrefix(err.Error(), "otp: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeSecret(%q) error\n%q\nwant it to contain\n%q", tt.in, err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("DecodeSecret(%q) returned %q with its error", tt.in, got)
			}
		})
	}
}

func TestDecodeSecretErrorsDoNotQuoteTheSecret(t *testing.T) {
	// A typo at the end: the error must not echo the secret (it may end up
	// in a log).
	secret := otp.EncodeSecret([]byte("a secret of twenty b")) + "1"
	_, err := otp.DecodeSecret(secret)
	if err == nil {
		t.Fatal("DecodeSecret accepted a trailing '1'")
	}
	if strings.Contains(err.Error(), secret[:8]) {
		t.Errorf("error %q quotes the secret", err)
	}
}

func TestSecretsRoundTripThroughBase32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 80; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		enc := otp.EncodeSecret(b)
		if strings.ContainsAny(enc, "=abcdefghijklmnopqrstuvwxyz") {
			t.Fatalf("EncodeSecret(%d bytes) = %q: want upper case without padding", n, enc)
		}
		// The pasted form: lower case, in groups of four, padded.
		var pasted strings.Builder
		for i, c := range strings.ToLower(enc) {
			if i > 0 && i%4 == 0 {
				pasted.WriteByte(' ')
			}
			pasted.WriteRune(c)
		}
		pasted.WriteString(strings.Repeat("=", (8-len(enc)%8)%8))
		for _, in := range []string{enc, pasted.String()} {
			got, err := otp.DecodeSecret(in)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("DecodeSecret(%q) = %x, %v; want %x", in, got, err, b)
			}
		}
	}
}

func TestCheckSecretLength(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		wantErr string
	}{
		{"an empty secret is refused", 0, "otp: secret is 0 bits; at least 128 bits are required"},
		{"an 80-bit secret is refused", 10, "otp: secret is 80 bits; at least 128 bits are required"},
		{"a 120-bit secret is refused", 15, "otp: secret is 120 bits; at least 128 bits are required"},
		{"a 128-bit secret is accepted", 16, ""},
		{"a 160-bit secret is accepted", 20, ""},
		{"a 512-bit secret is accepted", 64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := otp.CheckSecretLength(make([]byte, tt.n))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckSecretLength(%d bytes) = %v", tt.n, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("CheckSecretLength(%d bytes) = %v, want %q", tt.n, err, tt.wantErr)
			}
			if !errors.Is(err, otp.ErrShortSecret) {
				t.Errorf("errors.Is(%v, ErrShortSecret) = false", err)
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	for _, n := range []int{otp.MinSecretBytes, otp.DefaultSecretBytes, 32, 64, 128} {
		t.Run(fmt.Sprintf("%d bytes are generated", n), func(t *testing.T) {
			a, err := otp.GenerateSecret(n)
			if err != nil || len(a) != n {
				t.Fatalf("GenerateSecret(%d) = %d bytes, %v", n, len(a), err)
			}
			b, err := otp.GenerateSecret(n)
			if err != nil {
				t.Fatal(err)
			}
			// Two 128-bit or longer random values are equal with
			// probability 2^-128.
			if bytes.Equal(a, b) {
				t.Errorf("two GenerateSecret(%d) calls returned the same bytes %x", n, a)
			}
			if err := otp.CheckSecretLength(a); err != nil {
				t.Errorf("a generated secret fails CheckSecretLength: %v", err)
			}
		})
	}
	for _, n := range []int{-1, 0, 10, otp.MinSecretBytes - 1, 129} {
		t.Run(fmt.Sprintf("%d bytes are refused", n), func(t *testing.T) {
			b, err := otp.GenerateSecret(n)
			want := fmt.Sprintf("otp: secret length must be 16 to 128 bytes, not %d", n)
			if err == nil || err.Error() != want || b != nil {
				t.Fatalf("GenerateSecret(%d) = %x, %v; want error %q", n, b, err, want)
			}
		})
	}
}
