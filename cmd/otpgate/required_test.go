//go:build root

package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
)

// runWith runs otpgate as root against socket and returns its stdout.
func runWith(t *testing.T, socket string, args ...string) string {
	t.Helper()
	a, stdout, stderr := testApp(t, 0, "")
	if code := a.run(context.Background(), append([]string{"--socket", socket}, args...)); code != exitOK {
		t.Fatalf("otpgate %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// TestRequiredMeansOneThing checks that status, status --json, admin
// list, admin list --json and admin show --json all answer "is a code
// required of this user at login?" the same way, for every combination
// of policy (required, optional, exempt) and enrollment state.
func TestRequiredMeansOneThing(t *testing.T) {
	tests := []struct {
		name       string
		st         protocol.UserStatus
		required   bool
		requiredBy string
		text       string // status's "Code required" and admin list's REQUIRED
	}{
		{"policy requires, enrolled", protocol.UserStatus{State: protocol.StateActive, PolicyRequires: true}, true, "policy", "yes (policy)"},
		{"policy requires, not enrolled", protocol.UserStatus{State: protocol.StateNone, PolicyRequires: true}, true, "policy", "yes (policy; enroll first)"},
		{"policy requires, pending", protocol.UserStatus{State: protocol.StatePending, PolicyRequires: true}, true, "policy", "yes (policy; enroll first)"},
		{"optional, enrolled", protocol.UserStatus{State: protocol.StateActive}, true, "enrollment", "yes (enrolled)"},
		{"optional, not enrolled", protocol.UserStatus{State: protocol.StateNone}, false, "", "no"},
		{"optional, pending", protocol.UserStatus{State: protocol.StatePending}, false, "", "no"},
		{"exempt, enrolled", protocol.UserStatus{State: protocol.StateActive, Exempt: true}, false, "exempt", "no (exempt by policy)"},
		{"exempt, not enrolled", protocol.UserStatus{State: protocol.StateNone, Exempt: true}, false, "exempt", "no (exempt by policy)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDaemon(t, func(req *protocol.Request) *protocol.Response {
				st := tt.st
				st.User = "root"
				if req.User != "" {
					st.User = req.User
				}
				switch req.Op {
				case protocol.OpStatus, protocol.OpAdminShow:
					return &protocol.Response{Status: &st}
				case protocol.OpAdminList:
					return &protocol.Response{Users: []protocol.UserStatus{st}}
				}
				return &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: protocol.ErrBadRequest, Message: "unexpected " + string(req.Op)}}}
			})

			status := runWith(t, d.socket, "status")
			if want := regexp.MustCompile(`(?m)^Code required: +` + regexp.QuoteMeta(tt.text) + `$`); !want.MatchString(status) {
				t.Errorf("status says:\n%s\nwant Code required: %s", status, tt.text)
			}

			list := strings.Split(strings.TrimSpace(runWith(t, d.socket, "admin", "list")), "\n")
			if len(list) != 2 {
				t.Fatalf("admin list:\n%s", strings.Join(list, "\n"))
			}
			cols := regexp.MustCompile(`\s{2,}`).Split(list[1], -1)
			if head := regexp.MustCompile(`\s{2,}`).Split(list[0], -1); len(head) < 4 || head[3] != "REQUIRED" || len(cols) < 4 || cols[3] != tt.text {
				t.Errorf("admin list:\n%s\nwant REQUIRED %q", strings.Join(list, "\n"), tt.text)
			}

			type reqJSON struct {
				Required   bool   `json:"required"`
				RequiredBy string `json:"required_by"`
				Exempt     bool   `json:"exempt"`
				State      string `json:"state"`
			}
			want := reqJSON{tt.required, tt.requiredBy, tt.st.Exempt, tt.st.State}
			for _, args := range [][]string{{"status", "--json"}, {"admin", "show", "root", "--json"}} {
				var got reqJSON
				if err := json.Unmarshal([]byte(runWith(t, d.socket, args...)), &got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("otpgate %s: %+v, want %+v", strings.Join(args, " "), got, want)
				}
			}
			var all []reqJSON
			if err := json.Unmarshal([]byte(runWith(t, d.socket, "admin", "list", "--json")), &all); err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 || all[0] != want {
				t.Errorf("admin list --json: %+v, want [%+v]", all, want)
			}
		})
	}
}
