package importer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// usersfile returns a usersfile of n users u000000…, each with a 160-bit
// secret derived from its number, and the secrets in hex.
func usersfile(n int) (string, []string) {
	var b strings.Builder
	secrets := make([]string, n)
	b.WriteString("# generated\n")
	for i := range n {
		secrets[i] = fmt.Sprintf("%040x", 0x1000000+i*7919)
		fmt.Fprintf(&b, "HOTP/T30 u%06d - %s 0 123456 2024-01-01T00:00:00L\n", i, secrets[i])
	}
	return b.String(), secrets
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", MaxLineLength)
	tests := []struct {
		name, data string
		want       []string // "!" marks a line reported as too long
	}{
		{"empty", "", nil},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"blank lines", "\n\na\n", []string{"", "", "a"}},
		{"CRLF is the parser's business", "a\r\n", []string{"a\r"}},
		{"a line of MaxLineLength bytes", long + "\nb\n", []string{long, "b"}},
		{"one byte more", long + "y\nb\n", []string{"!", "b"}},
		{"far longer, then more lines", strings.Repeat(long, 3) + "\nb\nc", []string{"!", "b", "c"}},
		{"a long last line without newline", "a\n" + long + "y", []string{"a", "!"}},
		{"a last line of MaxLineLength bytes without newline", "a\n" + long, []string{"a", long}},
	}
	for _, tt := range tests {
		for _, reader := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"byte by byte", iotest.OneByteReader},
			{"data with EOF", iotest.DataErrReader},
		} {
			t.Run(tt.name+"/"+reader.name, func(t *testing.T) {
				lr := newLineReader(reader.wrap(strings.NewReader(tt.data)))
				var got []string
				for {
					line, tooLong, err := lr.next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if tooLong {
						got = append(got, "!")
					} else {
						got = append(got, string(line))
					}
					if lr.line != len(got) {
						t.Fatalf("line number %d after %d lines", lr.line, len(got))
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("got %d lines %.80q, want %d %.80q", len(got), got, len(tt.want), tt.want)
				}
			})
		}
	}
}

// TestParseOATHLargeFile parses a usersfile of 2 000 users, 150 KB: every
// user, in order, with the secret of its line (oathtool agrees on a
// sample). The importer once refused any file over 64 KiB.
func TestParseOATHLargeFile(t *testing.T) {
	data, secrets := usersfile(2000)
	if len(data) <= 64<<10 {
		t.Fatalf("the file is only %d bytes", len(data))
	}
	entries, err := ParseOATH("big.oath", []byte(data))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	defer ClearSecrets(entries)
	if len(entries) != len(secrets) {
		t.Fatalf("%d entries, want %d", len(entries), len(secrets))
	}
	for i, e := range entries {
		if e.User != fmt.Sprintf("u%06d", i) || e.Source != fmt.Sprintf("big.oath:%d", i+2) || hex.EncodeToString(e.Secret) != secrets[i] {
			t.Fatalf("entry %d: %s from %s", i, e.User, e.Source)
		}
	}
	for _, i := range []int{0, 999, 1999} {
		if got, want := code(t, entries[i]), oathtool(t, secrets[i]); got != want {
			t.Errorf("user %d: code %s, oathtool says %s", i, got, want)
		}
	}
}

// TestScanOATHLongLine: a line over MaxLineLength is named, and the lines
// after it are still checked.
func TestScanOATHLongLine(t *testing.T) {
	good := "HOTP/T30 alice - 3132333435363738393031323334353637383930\n"
	data := good + "# " + strings.Repeat("x", MaxLineLength) + "\n" + "HOTP bob - 3132333435363738393031323334353637383930\n"
	_, err := ParseOATH("F", []byte(data))
	want := "F:2: the line is longer than 65536 bytes: is this a pam_oath usersfile?\nF:3: token type HOTP is counter-based"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %s…", err, want)
	}
}

// TestScanOATHClearsSecrets: the secret an entry callback saw is zero once
// it returns, and ScanOATH keeps no entry.
func TestScanOATHClearsSecrets(t *testing.T) {
	data, _ := usersfile(3)
	var seen [][]byte
	n, err := ScanOATH("F", strings.NewReader(data), func(e *Entry) error {
		if len(e.Secret) != 20 || bytes.Count(e.Secret, []byte{0}) == 20 {
			t.Errorf("%s: secret %d bytes, all zero?", e.User, len(e.Secret))
		}
		seen = append(seen, e.Secret)
		return nil
	}, func(le *LineError) { t.Errorf("problem: %v", le) })
	if err != nil || n != 3 {
		t.Fatalf("%d entries, %v", n, err)
	}
	for i, s := range seen {
		if !bytes.Equal(s, make([]byte, len(s))) {
			t.Errorf("secret %d not cleared", i)
		}
	}
}

// TestScanOATHStopsOnEntryError: the callback's error ends the scan.
func TestScanOATHStopsOnEntryError(t *testing.T) {
	data, _ := usersfile(10)
	stop := errors.New("daemon gone")
	calls := 0
	_, err := ScanOATH("F", strings.NewReader(data), func(*Entry) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	}, func(*LineError) {})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("%d calls, %v", calls, err)
	}
}

// TestBlockVerifier: the second pass gets exactly the bytes the first pass
// read, and none of a block that changed: a change anywhere, a longer and
// a shorter file are all ErrChanged, before the changed bytes are handed
// out.
func TestBlockVerifier(t *testing.T) {
	orig := bytes.Repeat([]byte("0123456789abcdef"), 3*blockSize/16+100) // 3 blocks and a bit
	rec := newBlockRecorder(iotest.HalfReader(bytes.NewReader(orig)))
	if got, err := io.ReadAll(rec); err != nil || !bytes.Equal(got, orig) {
		t.Fatalf("recorder passed %d bytes, %v", len(got), err)
	}
	if len(rec.sums) != 4 {
		t.Fatalf("%d blocks recorded, want 4", len(rec.sums))
	}
	changed := func(at int) []byte {
		b := bytes.Clone(orig)
		b[at] ^= 1
		return b
	}
	tests := []struct {
		name string
		data []byte
		// good is how many bytes may be handed out before ErrChanged
		// (-1: none expected, the whole file is the same).
		good int
	}{
		{"same", orig, -1},
		{"first byte", changed(0), 0},
		{"in block 3", changed(2*blockSize + 5), 2 * blockSize},
		{"last byte", changed(len(orig) - 1), 3 * blockSize},
		{"longer", append(bytes.Clone(orig), '\n'), 3 * blockSize},
		{"shorter", orig[:len(orig)-1], 3 * blockSize},
		{"shorter by the last block", orig[:3*blockSize], 3 * blockSize},
		{"longer by a block", append(bytes.Clone(orig), orig[:blockSize]...), 3 * blockSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newBlockVerifier(bytes.NewReader(tt.data), rec.sums)
			got, err := io.ReadAll(iotest.OneByteReader(v))
			if tt.good < 0 {
				if err != nil || !bytes.Equal(got, orig) {
					t.Fatalf("got %d bytes, %v", len(got), err)
				}
				return
			}
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("err %v, want ErrChanged", err)
			}
			if len(got) != tt.good || !bytes.Equal(got, orig[:tt.good]) {
				t.Errorf("%d bytes handed out before the change was noticed, want the %d checked ones", len(got), tt.good)
			}
		})
	}
}

// TestUsersfileTwoPasses: Entries yields what Check checked. A file
// replaced by rename after the check (as pam_oath rewrites it at every
// login) is still read as checked, from the open descriptor; one written
// in place is refused before anything is read from it.
func TestUsersfileTwoPasses(t *testing.T) {
	data, secrets := usersfile(2000)
	tests := []struct {
		name    string
		between func(t *testing.T, path string)
		changed bool
	}{
		{"unchanged", func(*testing.T, string) {}, false},
		{"replaced by rename", func(t *testing.T, path string) {
			other, _ := usersfile(5)
			writeFile(t, path+".new", other)
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"appended to", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "HOTP/T30 mallory - %040x\n", 1)
			f.Close()
		}, true},
		{"one byte overwritten, mtime put back", func(t *testing.T, path string) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("7"), int64(strings.Index(data, secrets[1500]))); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.oath")
			writeFile(t, path, data)
			u, err := OpenUsersfile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			n, err := u.Check(func(*Entry) error { return nil }, func(le *LineError) { t.Errorf("problem: %v", le) })
			if err != nil || n != 2000 {
				t.Fatalf("check: %d users, %v", n, err)
			}
			tt.between(t, path)
			var got int
			err = u.Entries(func(e *Entry) error {
				if hex.EncodeToString(e.Secret) != secrets[got] {
					t.Fatalf("entry %d (%s) is not the checked one", got, e.User)
				}
				got++
				return nil
			})
			if !tt.changed {
				if err != nil || got != 2000 {
					t.Fatalf("entries: %d, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrChanged) || got != 0 {
				t.Fatalf("entries: %d, %v; want none and ErrChanged", got, err)
			}
			if want := path + " changed after it was checked"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
