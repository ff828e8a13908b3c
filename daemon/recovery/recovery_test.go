package recovery

import (
	"bytes"
	"crypto/subtle"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var recoveryCodeFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

func TestGenerateFormat(t *testing.T) {
	codes, err := Generate(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 {
		t.Fatalf("got %d codes, want 10", len(codes))
	}
	for _, c := range codes {
		if !recoveryCodeFormat.MatchString(c) {
			t.Errorf("code %q is not xxxx-xxxx-xxxx in lower-case Crockford base32", c)
		}
		n, ok := Normalize(c)
		if !ok || n != strings.ReplaceAll(c, "-", "") {
			t.Errorf("Normalize(%q) = %q, %v; want the code without hyphens", c, n, ok)
		}
	}
}

func TestGenerateAreUniqueAndUseTheWholeAlphabet(t *testing.T) {
	seen := make(map[string]bool, 10000)
	counts := make(map[rune]int)
	for range 10000 / MaxCodes {
		codes, err := Generate(MaxCodes)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codes {
			if seen[c] {
				t.Fatalf("code %q generated twice in %d", c, len(seen))
			}
			seen[c] = true
			for _, r := range strings.ReplaceAll(c, "-", "") {
				counts[r]++
			}
		}
	}
	if len(seen) != 10000 {
		t.Fatalf("%d codes, want 10000", len(seen))
	}
	// 120000 symbols over 32 letters: about 3750 each. A bias such as a
	// 4-bit mask would leave letters unused or doubled.
	for _, r := range alphabet {
		if counts[r] < 3000 || counts[r] > 4500 {
			t.Errorf("symbol %q appears %d times in 120000, want about 3750", r, counts[r])
		}
	}
	if len(counts) != len(alphabet) {
		t.Errorf("%d distinct symbols, want %d", len(counts), len(alphabet))
	}
}

func TestGenerateRefusesABadCount(t *testing.T) {
	for _, n := range []int{-1, 0, MaxCodes + 1} {
		if codes, err := Generate(n); err == nil {
			t.Errorf("Generate(%d) = %d codes, want an error", n, len(codes))
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"a canonical code is kept", "7k2m-q9xd-4hfa", "7k2mq9xd4hfa", true},
		{"hyphens may be left out", "7k2mq9xd4hfa", "7k2mq9xd4hfa", true},
		{"upper case is lowered", "7K2M-Q9XD-4HFA", "7k2mq9xd4hfa", true},
		{"spaces are ignored", " 7k2m q9xd 4hfa ", "7k2mq9xd4hfa", true},
		{"hyphens anywhere are ignored", "7-k-2-m-q9xd--4hfa", "7k2mq9xd4hfa", true},
		{"i and l read as one", "iL2m-q9xd-4hfa", "112mq9xd4hfa", true},
		{"o reads as zero", "Oo2m-q9xd-4hfa", "002mq9xd4hfa", true},
		{"u is not in the alphabet", "7k2m-q9xd-4hfu", "", false},
		{"eleven symbols are too few", "7k2m-q9xd-4hf", "", false},
		{"thirteen symbols are too many", "7k2m-q9xd-4hfaa", "", false},
		{"punctuation is refused", "7k2m.q9xd.4hfa", "", false},
		{"a tab is refused", "7k2m\tq9xd-4hfa", "", false},
		{"a non-ASCII letter that lowers to k is refused", "7\u212a2m-q9xd-4hfa", "", false},
		{"a full-width digit is refused", "\uff17k2m-q9xd-4hfa", "", false},
		{"an empty string is refused", "", "", false},
		{"a six-digit TOTP code is refused", "123456", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Normalize(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNewSaltIsFreshEachTime(t *testing.T) {
	a, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != SaltSize || len(b) != SaltSize {
		t.Fatalf("salt sizes %d and %d, want %d", len(a), len(b), SaltSize)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two salts are equal: %x", a)
	}
}

// matchRecovery is how the daemon verifies: one KDF, then a constant-time
// comparison against every stored hash.
func matchRecovery(hashes [][]byte, salt []byte, typed string) bool {
	n, ok := Normalize(typed)
	if !ok {
		return false
	}
	h := Hash(salt, n)
	found := 0
	for _, s := range hashes {
		found |= subtle.ConstantTimeCompare(h, s)
	}
	return found == 1
}

func TestHashVerifies(t *testing.T) {
	codes, err := Generate(5)
	if err != nil {
		t.Fatal(err)
	}
	salt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for _, c := range codes {
		n, _ := Normalize(c)
		h := Hash(salt, n)
		if len(h) != argonKeyLen {
			t.Fatalf("hash is %d bytes, want %d", len(h), argonKeyLen)
		}
		if strings.Contains(string(h), n) {
			t.Fatalf("hash contains the code")
		}
		hashes = append(hashes, h)
	}
	otherSalt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		typed string
		salt  []byte
		want  bool
	}{
		{"the first code verifies", codes[0], salt, true},
		{"the last code verifies", codes[4], salt, true},
		{"a code typed in upper case without hyphens verifies", strings.ToUpper(strings.ReplaceAll(codes[2], "-", "")), salt, true},
		{"a code from another set does not verify", other[0], salt, false},
		{"a right code with another enrollment's salt does not verify", codes[0], otherSalt, false},
		{"a code with one symbol changed does not verify", flipSymbol(codes[1]), salt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchRecovery(hashes, tt.salt, tt.typed); got != tt.want {
				t.Errorf("match(%q) = %v, want %v", tt.typed, got, tt.want)
			}
		})
	}
}

func flipSymbol(code string) string {
	b := []byte(code)
	i := strings.IndexByte(alphabet, b[0])
	b[0] = alphabet[(i+1)%len(alphabet)]
	return string(b)
}

// TestHashKnownAnswer pins the argon2id parameters: changing
// them would make every stored recovery hash unverifiable. The expected
// value is argon2id(t=1, m=4096 KiB, p=1, 32 bytes) of the inputs below.
func TestHashKnownAnswer(t *testing.T) {
	got := hex.EncodeToString(Hash([]byte("0123456789abcdef"), "7k2m0q9xd4hf"))
	const want = "dc1cec3a2672bfda23aaecac30e3c09d21e8bc4bd371a754fc18a3076bc249eb"
	if got != want {
		t.Errorf("Hash = %s, want %s: the KDF parameters changed, which breaks stored hashes", got, want)
	}
}

func TestHashIsSafeForConcurrentUse(t *testing.T) {
	salt := []byte("0123456789abcdef")
	want := Hash(salt, "7k2m0q9xd4hf")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := Hash(salt, "7k2m0q9xd4hf"); !bytes.Equal(got, want) {
				t.Errorf("concurrent hash %x, want %x", got, want)
			}
		})
	}
	wg.Wait()
}

func BenchmarkHash(b *testing.B) {
	salt, err := NewSalt()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Hash(salt, "7k2m0q9xd4hf")
	}
}
