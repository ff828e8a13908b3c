// Package testutil holds helpers shared by the tests of several packages.
// Only _test.go files import it: no shipped program links it (make lint
// checks that).
package testutil

import (
	"bytes"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that one or more writers (the output of an
// exec.Cmd, a logger used by many goroutines) and a reader (the test) may
// use concurrently. The zero value is an empty buffer ready to use.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Must fails the test at once when a setup step returns an error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
