package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

func (a *app) cmdStatus(ctx context.Context, args []string) error {
	fs := newFlagSet("status")
	asJSON := fs.Bool("json", false, jsonUsage)
	u, err := a.selfCommand("status", fs, args)
	if u == nil {
		return err
	}
	resp, err := a.do(ctx, &protocol.Request{Op: protocol.OpStatus, User: u.Name})
	if err != nil {
		return err
	}
	return a.printStatus(resp.Status, *asJSON)
}

// jsonUsage is the usage of the --json flag of status, admin show and
// admin list.
const jsonUsage = "print JSON: the protocol's UserStatus, with \"required\" meaning a code is asked at login and \"required_by\" saying why"

func (a *app) printStatus(st *protocol.UserStatus, asJSON bool) error {
	if st == nil {
		return fmt.Errorf("otpgated sent no status")
	}
	if asJSON {
		return writeJSON(a.stdout, newStatusJSON(st))
	}
	return writeStatus(a.stdout, st, a.now())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeStatus prints one user's status as aligned "Field: value" lines,
// times in local time. Its error is the failed write to w.
func writeStatus(w io.Writer, st *protocol.UserStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("User", clean(st.User))
	switch st.State {
	case protocol.StateActive:
		row("Two-factor", fmt.Sprintf("active (%s, %d digits, %d s)", clean(st.Algorithm), st.Digits, st.Period))
	case protocol.StatePending:
		row("Two-factor", "pending: enrollment started but not confirmed (run 'otpgate enroll')")
	default:
		row("Two-factor", "not set up (run 'otpgate enroll')")
	}
	row("Code required", requiredText(st))
	if st.State == protocol.StateActive {
		row("Recovery codes", fmt.Sprintf("%d left", st.RecoveryRemaining))
	}
	row("Failed attempts", fmt.Sprint(st.Failures))
	row("Locked", lockText(st, now, true))
	for _, b := range st.BlockedSources {
		row("Blocked address", fmt.Sprintf("%s until %s (too many failures from there; 'otpgate admin unlock %s' clears it)",
			clean(b.Source), localTime(b.Until), clean(st.User)))
	}
	if !st.EnrolledAt.IsZero() {
		row("Enrolled", localTime(st.EnrolledAt)+enrolledHow(st))
	}
	if !st.LastSuccess.IsZero() {
		row("Last success", localTime(st.LastSuccess))
	}
	for _, d := range st.Remembered {
		row("Remembered device", fmt.Sprintf("%s with key %s until %s ('otpgate forget' ends it)",
			clean(d.Source), clean(d.Fingerprint), localTime(d.Until)))
	}
	return tw.Flush()
}

// enrolledHow says how an enrollment was made, as a suffix to its time:
// " (at an SSH login from 192.0.2.7, key SHA256:...)".
func enrolledHow(st *protocol.UserStatus) string {
	switch st.EnrolledVia {
	case "login":
		if st.EnrolledKey == "" {
			return fmt.Sprintf(" (at a login from %s, after a password)", orDash(clean(st.EnrolledFrom)))
		}
		return fmt.Sprintf(" (at an SSH login from %s, key %s)", orDash(clean(st.EnrolledFrom)), clean(st.EnrolledKey))
	case "cli":
		return " (by the user with 'otpgate enroll')"
	case "admin":
		return " (by an administrator with 'otpgate admin enroll')"
	case "import":
		return " (imported with 'otpgate admin import')"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Why a code is, or is not, required: requirement's second result.
const (
	requiredByPolicy     = "policy"     // the policy requires a code (enrolled or not)
	requiredByEnrollment = "enrollment" // the policy leaves it optional and the user is enrolled
	exemptByPolicy       = "exempt"     // the policy exempts the user: no code, enrolled or not
)

// requirement is the one meaning of "required" in otpgate's output: is a
// code asked of this user at login? Yes when the policy requires it (a
// user not yet enrolled must enroll first) or when the user has an active
// enrollment the policy does not exempt; no otherwise. (A login from an
// exempt network or a remembered device may still skip the code.) by
// says why: requiredByPolicy, requiredByEnrollment, exemptByPolicy or ""
// (optional and not enrolled).
func requirement(st *protocol.UserStatus) (required bool, by string) {
	switch {
	case st.Exempt:
		return false, exemptByPolicy
	case st.PolicyRequires:
		return true, requiredByPolicy
	case st.State == protocol.StateActive:
		return true, requiredByEnrollment
	}
	return false, ""
}

// requiredText is requirement in words, as status and admin list show it.
func requiredText(st *protocol.UserStatus) string {
	switch _, by := requirement(st); by {
	case exemptByPolicy:
		return "no (exempt by policy)"
	case requiredByPolicy:
		if st.State != protocol.StateActive {
			return "yes (policy; enroll first)"
		}
		return "yes (policy)"
	case requiredByEnrollment:
		return "yes (enrolled)"
	}
	return "no"
}

// statusJSON is a UserStatus as status --json and admin list --json print
// it: "required" has requirement's meaning, not the policy's alone, and
// "required_by" says why.
type statusJSON struct {
	*protocol.UserStatus
	Required   bool   `json:"required"`
	RequiredBy string `json:"required_by"`
}

func newStatusJSON(st *protocol.UserStatus) statusJSON {
	req, by := requirement(st)
	return statusJSON{UserStatus: st, Required: req, RequiredBy: by}
}

// lockText describes a lockout: "no", "until 15:04:05 (in 4m)" or
// "until an administrator unlocks".
func lockText(st *protocol.UserStatus, now time.Time, long bool) string {
	switch {
	case st.LockedByAdmin:
		if long {
			return fmt.Sprintf("yes, until an administrator runs 'otpgate admin unlock %s'", clean(st.User))
		}
		return "until unlocked"
	case !st.LockedUntil.IsZero() && st.LockedUntil.After(now):
		return fmt.Sprintf("until %s (%s)", st.LockedUntil.Local().Format("15:04:05"), inDuration(st.LockedUntil.Sub(now)))
	}
	return "no"
}

// inDuration says "in 45s", "in 4m", "in 3h" or "in 2d", rounding up.
func inDuration(d time.Duration) string {
	up := func(unit time.Duration) int64 { return int64((d + unit - 1) / unit) }
	switch {
	case d < time.Minute:
		return fmt.Sprintf("in %ds", up(time.Second))
	case d < time.Hour:
		return fmt.Sprintf("in %dm", up(time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh", up(time.Hour))
	}
	return fmt.Sprintf("in %dd", up(24*time.Hour))
}

func localTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// writeUserTable prints users as an aligned table. Its error is the
// failed write to w.
func writeUserTable(w io.Writer, users []protocol.UserStatus, now time.Time) error {
	if len(users) == 0 {
		_, err := fmt.Fprintln(w, "No users are enrolled.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tSTATE\tVIA\tREQUIRED\tRECOVERY\tFAILURES\tLOCKED\tLAST SUCCESS")
	for i := range users {
		st := &users[i]
		last := "-"
		if !st.LastSuccess.IsZero() {
			last = st.LastSuccess.Local().Format("2006-01-02 15:04")
		}
		via := "-"
		if st.EnrolledVia != "" && st.State == protocol.StateActive {
			via = clean(st.EnrolledVia)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", strings.ReplaceAll(clean(st.User), "\t", "?"), clean(st.State), via, requiredText(st),
			st.RecoveryRemaining, st.Failures, lockText(st, now, false), last)
	}
	return tw.Flush()
}
