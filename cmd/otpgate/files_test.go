package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateSecretFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "dangling"), link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"new file", filepath.Join(dir, "codes.txt"), ""},
		{"existing file", target, "already exists: choose a new file name"},
		{"dangling symlink is not followed", link, "already exists"},
		{"missing directory", filepath.Join(dir, "no", "such"), "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := writeSecretFile(tt.path, []byte("secret\n"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Lstat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
				t.Errorf("mode %v, want a regular file 0600", st.Mode())
			}
		})
	}
	if data, _ := os.ReadFile(target); string(data) != "keep" {
		t.Errorf("the existing file was changed: %q", data)
	}
	if _, err := os.Lstat(filepath.Join(dir, "dangling")); !os.IsNotExist(err) {
		t.Errorf("the symlink's target was created: %v", err)
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
		if err := a.offerSave("alice", dir, codes); err != nil {
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
		if err := a.offerSave("alice", dir, codes); err != nil || !strings.Contains(out.String(), "Not saved.") {
			t.Errorf("err %v, stdout %q", err, out)
		}
	})
	t.Run("closed stdin skips", func(t *testing.T) {
		a, out, _ := testApp(t, 1000, "")
		if err := a.offerSave("alice", dir, codes); err != nil || !strings.Contains(out.String(), "Not saved.") {
			t.Errorf("err %v, stdout %q", err, out)
		}
	})
	t.Run("tilde is the account's home, not $HOME", func(t *testing.T) {
		t.Setenv("HOME", "/root")
		a, _, _ := testApp(t, 1000, "~/tilde-codes\n")
		if err := a.offerSave("alice", dir, codes); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "tilde-codes")); err != nil {
			t.Errorf("not saved in the account's home: %v", err)
		}
	})
}

func TestReadLineFromPipe(t *testing.T) {
	a, _, errb := testApp(t, 1000, " 123456 \nsecond")
	if got, err := a.readCode("Code: "); err != nil || got != "123456" {
		t.Errorf("first: %q %v", got, err)
	}
	if got, err := a.readLine("Path: ", false); err != nil || got != "second" {
		t.Errorf("last line without newline: %q %v", got, err)
	}
	if _, err := a.readLine("More: ", false); err != errNoInput {
		t.Errorf("at EOF: %v", err)
	}
	if !strings.Contains(errb.String(), "Code: ") {
		t.Errorf("prompt not on stderr: %q", errb)
	}
	a, _, _ = testApp(t, 1000, "\n")
	if _, err := a.readCode("Code: "); err == nil || err.Error() != "no code entered" {
		t.Errorf("empty code: %v", err)
	}
}
