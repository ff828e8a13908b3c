package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecoveryCodeAdvice checks that what enroll and recovery-codes say
// about the codes agrees: keep them off this server, so a file saved here
// is only a way to carry them off, and the output after saving and the
// file itself say to copy it elsewhere and delete it here.
func TestRecoveryCodeAdvice(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	codes := []string{"7k2m-q9xd-4hfa", "abcd-efgh-jkmn"}
	tests := []struct {
		name   string
		answer string // typed at the save prompt
		file   string // the file written, "" for none
		rm     string // the rm command advised, "" for none
	}{
		{"skipped", "", "", ""},
		{"saved", filepath.Join(dir, "codes.txt"), filepath.Join(dir, "codes.txt"), "rm " + filepath.Join(dir, "codes.txt")},
		{"saved to a name with a space", filepath.Join(dir, "my codes"), filepath.Join(dir, "my codes"), "rm '" + filepath.Join(dir, "my codes") + "'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, out, errb := testApp(t, os.Getuid(), tt.answer+"\n")
			if err := a.showRecoveryCodes(context.Background(), "alice", codes); err != nil {
				t.Fatal(err)
			}
			shown, after, ok := strings.Cut(out.String(), codes[1])
			if !ok {
				t.Fatalf("the codes are not shown:\n%s", out)
			}
			if !strings.Contains(shown, "Keep them off this server") {
				t.Errorf("no warning to keep the codes off this server before them:\n%s", shown)
			}
			if !strings.Contains(after, "save them to a new file (mode 0600),\ncopy it elsewhere and delete it here.") {
				t.Errorf("the offer to save does not say the file is only to carry them off:\n%s", after)
			}
			if !strings.Contains(errb.String(), "Save them to a file? Enter a path, or press Enter to skip: ") {
				t.Errorf("no save prompt on stderr:\n%s", errb)
			}
			if tt.file == "" {
				if !strings.Contains(after, "Not saved.") || strings.Contains(after, "rm ") {
					t.Errorf("after skipping:\n%s", after)
				}
				return
			}
			if !strings.Contains(after, "Saved to "+tt.file+" (mode 0600).\nCopy it off this server (or hand it over), then delete it here: "+tt.rm+"\n") {
				t.Errorf("after saving, no advice to copy the file off and delete it (%s):\n%s", tt.rm, after)
			}
			data, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "# Do not keep this file on "+host+": copy the codes to a password manager or\n# paper, then delete it there.\n") {
				t.Errorf("the file does not say to move it off %s:\n%s", host, data)
			}
		})
	}
}
