package main

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/testutil"
)

// TestWriteSecretFile covers the one function that creates every file the
// CLI writes secrets to: no symbolic link is followed in any component of
// the path, "~" is the home given (the account running otpgate), and
// nothing is ever written outside the directory named.
func TestWriteSecretFile(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// outside stands for a directory only root may write, such as
	// /etc/sudoers.d; victim is a home whose owner planted links to it.
	outside := filepath.Join(dir, "outside")
	victim := filepath.Join(dir, "victim")
	admin := filepath.Join(dir, "admin")
	for _, d := range []string{outside, victim, admin, filepath.Join(victim, "real")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	existing := filepath.Join(admin, "existing")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		filepath.Join(victim, "d"):              outside,                            // a planted directory link
		filepath.Join(victim, "real", "deeper"): outside,                            // the same, one level down
		filepath.Join(dir, "victim-link"):       victim,                             // a link higher up the path
		filepath.Join(victim, "qr.png"):         filepath.Join(outside, "qr.png"),   // a dangling last component
		filepath.Join(victim, "shadow"):         filepath.Join(outside, "existing"), // an existing target
		filepath.Join(victim, "real", "loop"):   filepath.Join(victim, "real", "loop"),
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "existing"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, typed, home string
		want              string // the path written, when no error is wanted
		wantErr           string
	}{
		{name: "plain path", typed: filepath.Join(admin, "codes.txt"), want: filepath.Join(admin, "codes.txt")},
		{name: "relative parts are cleaned", typed: admin + "/x/../clean.txt", want: filepath.Join(admin, "clean.txt")},
		{name: "tilde is the home given", typed: "~/qr.png", home: admin, want: filepath.Join(admin, "qr.png")},
		{name: "tilde in a home with a planted link is not the victim's", typed: "~/d/x", home: admin,
			wantErr: "open " + filepath.Join(admin, "d") + ": no such file or directory"},
		{name: "existing file", typed: existing, wantErr: existing + " already exists: choose a new file name"},
		{name: "symlink in the last component, dangling", typed: filepath.Join(victim, "qr.png"),
			wantErr: filepath.Join(victim, "qr.png") + " is a symbolic link (to " + filepath.Join(outside, "qr.png") + "): otpgate never writes through a symbolic link"},
		{name: "symlink in the last component, to a file", typed: filepath.Join(victim, "shadow"),
			wantErr: filepath.Join(victim, "shadow") + " is a symbolic link"},
		{name: "symlink in a middle directory", typed: filepath.Join(victim, "d", "x"),
			wantErr: filepath.Join(victim, "d") + " is a symbolic link (to " + outside + "): otpgate writes files only through real directories"},
		{name: "symlink in a deeper middle directory", typed: filepath.Join(victim, "real", "deeper", "x"),
			wantErr: filepath.Join(victim, "real", "deeper") + " is a symbolic link"},
		{name: "symlink high up the path", typed: filepath.Join(dir, "victim-link", "real", "x"),
			wantErr: filepath.Join(dir, "victim-link") + " is a symbolic link"},
		{name: "symlink loop", typed: filepath.Join(victim, "real", "loop", "x"),
			wantErr: filepath.Join(victim, "real", "loop") + " is a symbolic link"},
		{name: "tilde in a home that is a symlink", typed: "~/x", home: filepath.Join(victim, "d"),
			wantErr: filepath.Join(victim, "d") + " is a symbolic link"},
		{name: "a file as a directory", typed: filepath.Join(existing, "x"), wantErr: existing + " is not a directory"},
		{name: "a directory as the file", typed: admin, wantErr: admin + " is a directory: give the name of a new file"},
		{name: "tilde alone is a directory", typed: "~", home: admin, wantErr: admin + " is a directory"},
		{name: "missing directory", typed: filepath.Join(admin, "no", "such"), wantErr: "open " + filepath.Join(admin, "no") + ": no such file or directory"},
		{name: "tilde with another user's name", typed: "~victim/x", home: admin, wantErr: "cannot expand ~victim: only ~ (your own home directory) is expanded"},
		{name: "tilde without a home", typed: "~/x", wantErr: "cannot expand ~: the account running otpgate has no home directory"},
		{name: "empty", typed: "", wantErr: "no file name given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := writeSecretFile(tt.typed, tt.home, []byte("secret\n"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("wrote %s, want %s", got, tt.want)
			}
			st, err := os.Lstat(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
				t.Errorf("mode %v, want a regular file 0600", st.Mode())
			}
			if data, _ := os.ReadFile(tt.want); string(data) != "secret\n" {
				t.Errorf("content %q", data)
			}
		})
	}
	for _, f := range []string{existing, filepath.Join(outside, "existing")} {
		if data, _ := os.ReadFile(f); string(data) != "keep" {
			t.Errorf("%s was changed: %q", f, data)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("files were written through a symbolic link: %v", entries)
	}
	if entries, _ := os.ReadDir(victim); len(entries) != len([]string{"real", "d", "qr.png", "shadow"}) {
		t.Errorf("files were written in the victim's home: %v", entries)
	}
}

// TestDiscardRemovesOnlyTheNewFile checks that a file created and then
// abandoned (enroll failed after creating the PNG) is removed from the
// directory it was created in, even if the path now leads elsewhere.
func TestDiscardRemovesOnlyTheNewFile(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	home, outside := filepath.Join(dir, "home"), filepath.Join(dir, "outside")
	for _, d := range []string{filepath.Join(home, "d"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := openNewSecretFile("~/d/qr.png", home)
	if err != nil {
		t.Fatal(err)
	}
	// The owner of home swaps d for a link to outside, where a file of the
	// same name exists.
	if err := os.Rename(filepath.Join(home, "d"), filepath.Join(home, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(home, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "qr.png"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Must(t, f.discard())
	if data, err := os.ReadFile(filepath.Join(outside, "qr.png")); err != nil || string(data) != "keep" {
		t.Errorf("the file behind the link was removed or changed: %q %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(home, "old", "qr.png")); !os.IsNotExist(err) {
		t.Errorf("the abandoned file is still there: %v", err)
	}
}

func TestOfferSave(t *testing.T) {
	dir := t.TempDir()
	taken := filepath.Join(dir, "taken")
	if err := os.WriteFile(taken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh")
	codes := []string{"7k2m-q9xd-4hfa", "abcd-efgh-jkmn"}

	t.Run("existing file then a new one", func(t *testing.T) {
		a, out, errb := testApp(t, 1000, taken+"\n"+fresh+"\n")
		if err := a.offerSave(context.Background(), "alice", dir, codes); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errb.String(), taken+" already exists") {
			t.Errorf("no refusal for the existing file:\n%s", errb)
		}
		data, err := os.ReadFile(fresh)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(data), "7k2m-q9xd-4hfa\nabcd-efgh-jkmn\n") || !strings.HasPrefix(string(data), "# otpgate recovery codes for alice") {
			t.Errorf("file content:\n%s", data)
		}
		if !strings.Contains(out.String(), "Saved to "+fresh+" (mode 0600)") {
			t.Errorf("stdout:\n%s", out)
		}
	})
	t.Run("enter skips", func(t *testing.T) {
		a, out, _ := testApp(t, 1000, "\n")
		if err := a.offerSave(context.Background(), "alice", dir, codes); err != nil || !strings.Contains(out.String(), "Not saved.") {
			t.Errorf("err %v, stdout %q", err, out)
		}
	})
	t.Run("closed stdin skips", func(t *testing.T) {
		a, out, _ := testApp(t, 1000, "")
		if err := a.offerSave(context.Background(), "alice", dir, codes); err != nil || !strings.Contains(out.String(), "Not saved.") {
			t.Errorf("err %v, stdout %q", err, out)
		}
	})
	t.Run("tilde is the account's home, not $HOME", func(t *testing.T) {
		t.Setenv("HOME", "/root")
		a, _, _ := testApp(t, 1000, "~/tilde-codes\n")
		if err := a.offerSave(context.Background(), "alice", dir, codes); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "tilde-codes")); err != nil {
			t.Errorf("not saved in the account's home: %v", err)
		}
	})
}

func TestReadLineFromPipe(t *testing.T) {
	a, _, errb := testApp(t, 1000, " 123456 \nsecond")
	ctx := context.Background()
	if got, err := a.readCode(ctx, "Code: "); err != nil || got != " 123456 " {
		t.Errorf("first: %q %v, want the code as typed", got, err)
	}
	if got, err := a.readLine(ctx, "Path: "); err != nil || got != "second" {
		t.Errorf("last line without newline: %q %v", got, err)
	}
	if _, err := a.readLine(ctx, "More: "); !errors.Is(err, errNoInput) {
		t.Errorf("at EOF: %v", err)
	}
	if !strings.Contains(errb.String(), "Code: ") {
		t.Errorf("prompt not on stderr: %q", errb)
	}
	a, _, _ = testApp(t, 1000, "\r\n")
	if got, err := a.readCode(ctx, "Code: "); err != nil || got != "" {
		t.Errorf("empty code: %q %v, want it sent as typed", got, err)
	}
}

// TestHomeIsTheRealUIDsAccount checks where "~" points: the home of the
// real uid's account in the password database, whatever $HOME says; an
// unknown uid has none, so "~" is refused rather than guessed.
func TestHomeIsTheRealUIDsAccount(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", t.TempDir())
	for _, tt := range []struct {
		uid  int
		want string
	}{
		{0, root.HomeDir},
		{2147480000, ""},
	} {
		a, _, _ := testApp(t, tt.uid, "")
		a.getenv = os.Getenv
		if got := a.home(); got != tt.want {
			t.Errorf("uid %d: home %q, want %q", tt.uid, got, tt.want)
		}
	}
}
