// Package bench holds the comparison benchmarks' load generator, pamload/pamload.c,
// a C PAM application (see its header comment), and the test that
// cross-checks its RFC 6238 codes against oathtool. The suite that runs it
// against pam_otpgate, pam_google_authenticator and pam_oath is in
// bench/compare (make bench-compare).
package bench
