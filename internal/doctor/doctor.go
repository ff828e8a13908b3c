// Package doctor inspects a server's otpgate setup the way an administrator
// would: otpgated, its socket, state and configuration; the PAM stacks of
// sshd, sudo and the console; sshd's effective configuration; sudo's
// timestamp; whether an administrator can still get in; and the clock.
//
// The checks are pure functions over file contents and command output
// (pam.go, sshd.go, sudo.go, accounts.go, files.go, clock.go), so that they
// are tested with table tests; system.go gathers the inputs from the live
// system and runs them. Every problem is a Finding that says what is wrong,
// why it matters and the exact fix.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Severity says how bad a finding is.
type Severity string

// The severities. Errors and warnings make `otpgate doctor` exit non-zero;
// notes (Info) do not.
const (
	// Error: logins are not protected as intended, or someone is (or will
	// be) locked out.
	Error Severity = "error"
	// Warning: works, but weaker or more surprising than intended.
	Warning Severity = "warning"
	// Info: a fact worth knowing that is not a problem by itself.
	Info Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// Finding is one problem (or note): what is wrong, why it matters and how
// to fix it.
type Finding struct {
	// ID names the kind of finding ("pam-sshd-missing"); stable, for
	// scripts.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Where is the file and line, command or object concerned.
	Where string `json:"where,omitempty"`
	// Problem says what is wrong.
	Problem string `json:"problem"`
	// Why says what it leads to.
	Why string `json:"why"`
	// Fix is the exact change that fixes it.
	Fix string `json:"fix"`
}

// Report is the result of a run: the findings and the names of the checks
// that were run.
type Report struct {
	Checks   []string  `json:"checks"`
	Findings []Finding `json:"findings"`
	Errors   int       `json:"errors"`
	Warnings int       `json:"warnings"`
}

// add appends findings and counts them.
func (r *Report) add(fs ...Finding) {
	for _, f := range fs {
		r.Findings = append(r.Findings, f)
		switch f.Severity {
		case Error:
			r.Errors++
		case Warning:
			r.Warnings++
		}
	}
}

// check records that the named check ran.
func (r *Report) check(name string) { r.Checks = append(r.Checks, name) }

// OK reports whether there is neither an error nor a warning.
func (r *Report) OK() bool { return r.Errors == 0 && r.Warnings == 0 }

// Has reports whether the report contains a finding with this ID.
func (r *Report) Has(id string) bool {
	for _, f := range r.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

// sort orders findings by severity, keeping the order of the checks within
// one severity.
func (r *Report) sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		return r.Findings[i].Severity.rank() < r.Findings[j].Severity.rank()
	})
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: one block per finding, then a
// summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s [%s]", strings.ToUpper(string(f.Severity)), f.ID)
		if f.Where != "" {
			fmt.Fprintf(&b, " %s", f.Where)
		}
		fmt.Fprintf(&b, "\n  problem: %s\n  why:     %s\n  fix:     %s\n\n",
			indent(f.Problem), indent(f.Why), indent(f.Fix))
	}
	switch {
	case len(r.Findings) == 0:
		fmt.Fprintf(&b, "No problems found (%d checks: %s).\n", len(r.Checks), strings.Join(r.Checks, ", "))
	case r.OK():
		fmt.Fprintf(&b, "No problems found; %d notes above (%d checks).\n", len(r.Findings), len(r.Checks))
	default:
		fmt.Fprintf(&b, "%d errors, %d warnings, %d notes (%d checks).\n",
			r.Errors, r.Warnings, len(r.Findings)-r.Errors-r.Warnings, len(r.Checks))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// indent continues multi-line text under its label.
func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n           ")
}
