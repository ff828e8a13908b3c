//go:build integration

package integration

import "testing"

// must fails the test at once when a setup step returns an error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
