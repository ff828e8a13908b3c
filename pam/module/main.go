// Command module is the Go half of pam_otpgate: libpam_otpgate_go.so, a
// cgo c-shared library that the C loader pam_otpgate.so (pam/loader.c)
// dlopens from pam_sm_authenticate and calls through its one exported
// function, otpgate_pam_authenticate.
//
// The library relays otpgated's login dialogue (protocol.OpLoginStart,
// protocol.OpLoginAnswer) to the PAM conversation. The daemon decides; this
// code only maps its verdict to PAM return codes, failing closed on anything
// it does not recognise.
//
// Because it runs inside sshd, sudo and other PAM applications, it keeps to
// strict rules (docs/pam.md): no pam_set_data, no goroutines or timers left
// running, no os/exec, no signal handlers, no os/user, never stderr; one
// socket, each exchange with a deadline; messages go through the PAM
// conversation or to syslog through libpam's pam_syslog (LOG_AUTHPRIV). It
// starts in a fresh process per login (sshd's PAM child), so it links only
// what a relay needs (deps_test.go).
//
// Build it with pam/Makefile (tag go_pam_module, -buildmode=c-shared). The
// otpgate_gcstress tag adds heavy allocation, GC and goroutines to every
// authentication; it exists only for the loader's stress test.
package main

func main() {}
