package otp

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestHOTPRFC4226AppendixD(t *testing.T) {
	secret := []byte("12345678901234567890")
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		if got := HOTP(secret, uint64(i), SHA1, 6); got != w {
			t.Errorf("counter %d: got %s, want %s", i, got, w)
		}
	}
}

// RFC 6238 Appendix B, with each algorithm's own seed (erratum 2866).
func TestTOTPRFC6238AppendixB(t *testing.T) {
	seeds := map[Algorithm][]byte{
		SHA1:   []byte("12345678901234567890"),
		SHA256: []byte("12345678901234567890123456789012"),
		SHA512: []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	tests := []struct {
		unix int64
		want map[Algorithm]string
	}{
		{59, map[Algorithm]string{SHA1: "94287082", SHA256: "46119246", SHA512: "90693936"}},
		{1111111109, map[Algorithm]string{SHA1: "07081804", SHA256: "68084774", SHA512: "25091201"}},
		{1111111111, map[Algorithm]string{SHA1: "14050471", SHA256: "67062674", SHA512: "99943326"}},
		{1234567890, map[Algorithm]string{SHA1: "89005924", SHA256: "91819424", SHA512: "93441116"}},
		{2000000000, map[Algorithm]string{SHA1: "69279037", SHA256: "90698825", SHA512: "38618901"}},
		{20000000000, map[Algorithm]string{SHA1: "65353130", SHA256: "77737706", SHA512: "47863826"}},
	}
	for _, tt := range tests {
		for alg, want := range tt.want {
			p := Params{Algorithm: alg, Digits: 8, Period: 30}
			if got := TOTP(seeds[alg], time.Unix(tt.unix, 0), p); got != want {
				t.Errorf("T=%d %v: got %s, want %s", tt.unix, alg, got, want)
			}
		}
	}
}

func TestVerifyWindowEdges(t *testing.T) {
	secret := []byte("12345678901234567890")
	p := DefaultParams()
	for _, base := range []int64{1_700_000_010 - 1_700_000_010%30, 1 << 31, 1 << 32} {
		for _, mod := range []int64{0, 1, 29} {
			now := time.Unix(base-base%30+mod, 0)
			center := Step(now, 30)
			for off := -3; off <= 3; off++ {
				code := HOTP(secret, uint64(int64(center)+int64(off)), SHA1, 6)
				step, ok := Verify(secret, code, center, 1, 1, p)
				inWindow := off >= -1 && off <= 1
				// A different step may collide on the same 6 digits only with
				// negligible probability; the fixed secret here has none.
				if ok != inWindow || (ok && step != uint64(int64(center)+int64(off))) {
					t.Errorf("t=%d mod=%d offset %d: ok=%v step=%d", base, mod, off, ok, step)
				}
			}
		}
	}
	if _, ok := Verify(secret, HOTP(secret, 0, SHA1, 6), 0, 3, 0, p); !ok {
		t.Error("a window clamped at step 0 must still check step 0")
	}
}

func TestValidCode(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"123456", true}, {"12345", false}, {"1234567", false}, {" 123456", false}, {"123456\n", false},
		{"12345a", false}, {"+12345", false}, {"١٢٣٤٥٦", false}, {"１２３４５６", false}, {"", false},
	}
	for _, tt := range tests {
		if got := ValidCode(tt.code, 6); got != tt.want {
			t.Errorf("ValidCode(%q) = %v", tt.code, got)
		}
	}
}

// TestTOTPAgainstOathtool compares with the independent generator for
// random secrets, times, digits and algorithms.
func TestTOTPAgainstOathtool(t *testing.T) {
	oathtool, err := exec.LookPath("oathtool")
	if err != nil {
		t.Fatal("oathtool not found: apt-get install oathtool")
	}
	algs := []Algorithm{SHA1, SHA256, SHA512}
	for i := range 120 {
		n, _ := rand.Int(rand.Reader, big.NewInt(49))
		secret, err := GenerateSecret(16 + int(n.Int64()))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := rand.Int(rand.Reader, big.NewInt(4_000_000_000))
		unix := r.Int64() - r.Int64()%30 + []int64{0, 1, 29, 15}[i%4]
		p := Params{Algorithm: algs[i%3], Digits: 6 + i%3, Period: 30}
		// -w 2 prints the codes of this step and the two after it.
		out, err := exec.Command(oathtool, "--totp="+strings.ToLower(p.Algorithm.String()), "-b", "-d", fmt.Sprint(p.Digits),
			"-w", "2", "--now", time.Unix(unix, 0).UTC().Format("2006-01-02 15:04:05 UTC"), EncodeSecret(secret)).Output()
		if err != nil {
			t.Fatalf("oathtool: %v", err)
		}
		lines := strings.Fields(string(out))
		if len(lines) != 3 {
			t.Fatalf("oathtool printed %q", out)
		}
		for k, want := range lines {
			if got := TOTP(secret, time.Unix(unix+int64(30*k), 0), p); got != want {
				t.Fatalf("secret %s t=%d+%d %v/%d: otp %s, oathtool %s", EncodeSecret(secret), unix, 30*k, p.Algorithm, p.Digits, got, want)
			}
		}
	}
}
