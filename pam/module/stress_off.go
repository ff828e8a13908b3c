//go:build !otpgate_gcstress

package main

// stress does nothing in real builds (see stress_on.go).
func stress() {}
