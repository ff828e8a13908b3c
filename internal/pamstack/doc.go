// Package pamstack reads Linux-PAM service files the way libpam does:
// comments, backslash continuations, bracketed controls and arguments,
// "@include" and the "include"/"substack" controls. It resolves a service
// into its module lines ([Load]) and says what a line's control does with
// a failure ([ControlCounts], [FailureEndsStack]). It judges nothing:
// internal/doctor checks the stacks, internal/setup edits them.
package pamstack
