// Package container is the testing side of the namespace containers of
// internal/container: [Start] creates one for a test and destroys it in
// t.Cleanup, and the helpers of [Container] (Run, RunAs, WriteFile,
// ReadFile, MkdirAll, Chown, AddUser, AddGroup, WaitForSocket, WaitForPort,
// Background) fail the test (t.Fatal) instead of returning an error.
// Background processes are stopped in t.Cleanup, and their output is logged
// when the test failed. [Require] fails (never skips) a test that is not run
// as root or lacks a tool, naming the Debian package to install; [Bin] finds
// the built artifacts.
//
// What a container is and how it works is described in internal/container,
// which links no test code; only tests import this package.
package container
