package pamstack

import (
	"fmt"
	"strconv"
	"strings"
)

// ControlCounts says whether a failure of the module with this control,
// at index i of the auth entries, fails the stack; if not, it says why.
func ControlCounts(auth []Entry, i int) (bool, string) {
	e := auth[i]
	switch e.Control {
	case "required", "requisite":
		return true, ""
	case "optional":
		return false, "'optional' ignores the module's result whenever another module succeeds, so a wrong code (or otpgated being down) still logs in"
	case "sufficient":
		if i+1 < len(auth) && auth[i+1].Base() == "pam_deny.so" && (auth[i+1].Control == "required" || auth[i+1].Control == "requisite") {
			return true, ""
		}
		return false, "'sufficient' ignores a failure (a wrong code falls through to the modules below) and its success skips every auth module below it"
	}
	if strings.HasPrefix(e.Control, "[") {
		acts := bracketActions(e.Control)
		act, ok := acts["auth_err"]
		if !ok {
			act, ok = acts["default"]
		}
		if !ok {
			return false, fmt.Sprintf("the control %s does not say what a wrong code (auth_err) does; Linux-PAM then does not fail the stack", e.Control)
		}
		switch act {
		case "bad", "die":
			return true, ""
		}
		return false, fmt.Sprintf("the control %s maps a wrong code (auth_err) to %q, which does not fail the stack", e.Control, act)
	}
	return false, fmt.Sprintf("the control %q is not one Linux-PAM knows for a module line", e.Control)
}

// FailureEndsStack reports whether a failure of auth[i] ends the auth stack
// before any later module runs: 'requisite', a bracket control mapping
// auth_err (or default) to die, or Debian's common-auth shape, where a
// failure falls through ('default=ignore') to a 'requisite pam_deny.so'
// that success jumps over.
func FailureEndsStack(auth []Entry, i int) bool {
	e := auth[i]
	if e.Control == "requisite" {
		return true
	}
	if !strings.HasPrefix(e.Control, "[") {
		return false
	}
	acts := bracketActions(e.Control)
	act, ok := acts["auth_err"]
	if !ok {
		act = acts["default"]
	}
	if act == "die" {
		return true
	}
	if act != "ignore" || i+1 >= len(auth) {
		return false
	}
	next := auth[i+1]
	jump, err := strconv.Atoi(acts["success"])
	return err == nil && jump >= 1 && next.Base() == "pam_deny.so" && (next.Control == "requisite" || bracketActions(next.Control)["default"] == "die")
}

// bracketActions parses "[a=b c=d]" into a map.
func bracketActions(c string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(strings.Trim(c, "[]")) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[strings.ToLower(k)] = strings.ToLower(v)
		}
	}
	return m
}
