// Command module is the Go half of pam_otpgate: libpam_otpgate_go.so, a
// cgo c-shared library that the C loader pam_otpgate.so (pam/loader.c)
// dlopens from pam_sm_authenticate and calls through its one exported
// function, otpgate_pam_authenticate.
//
// The library asks otpgated whether the user needs a code (protocol.OpCheck),
// prompts for it through the PAM conversation, and asks otpgated to verify it
// (protocol.OpVerify). The daemon decides; this code only maps its replies to
// PAM return codes, failing closed on anything it does not recognise.
//
// Because it runs inside sshd, sudo and other PAM applications, it keeps to
// strict rules (docs/pam.md): no pam_set_data, no goroutines or timers left
// running, no os/exec, no signal handlers, no os/user, never stderr; at most
// two socket round trips, each with a deadline; messages go through the PAM
// conversation or to syslog (LOG_AUTHPRIV).
//
// Build it with pam/Makefile (tag go_pam_module, -buildmode=c-shared). The
// otpgate_gcstress tag adds heavy allocation, GC and goroutines to every
// authentication; it exists only for the loader's stress test.
package main

func main() {}
