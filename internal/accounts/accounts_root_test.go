//go:build root

package accounts

// These tests read root-only files; `make test` runs them as root (-tags root).

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestLookupShadow reads root's entry (the tests run as root, as `make
// test` does; as another user the files backend refuses, which must be an
// error rather than "no entry").
func TestLookupShadow(t *testing.T) {
	s, err := LookupShadow("root")
	if os.Geteuid() != 0 {
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("as uid %d: %+v, %v; want an error other than no entry", os.Geteuid(), s, err)
		}
		return
	}
	if err != nil || s.Name != "root" {
		t.Fatalf("LookupShadow(root) = %+v, %v", s, err)
	}
	data, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 9 || f[0] != "root" {
			continue
		}
		locked := strings.HasPrefix(f[1], "!") || strings.HasPrefix(f[1], "*")
		expire := int64(-1)
		if f[7] != "" {
			expire, _ = strconv.ParseInt(f[7], 10, 64)
		}
		if s.Locked != locked || s.Expire != expire {
			t.Errorf("root: locked %v expire %d; /etc/shadow says %v %d", s.Locked, s.Expire, locked, expire)
		}
	}
}
