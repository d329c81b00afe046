package testenv

import (
	"os"
	"testing"
	"time"
)

// Eventually polls cond every tick until it holds (true) or d has passed
// (false), for a caller that reports the timeout itself.
func Eventually(d, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(tick)
	}
	return true
}

// WaitFor polls cond every 20 ms until it holds; when d passes first it
// ends the test, naming what it waited for.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	if !Eventually(d, 20*time.Millisecond, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// WaitForFile waits up to d for path to exist.
func WaitForFile(t testing.TB, path string, d time.Duration) {
	t.Helper()
	WaitFor(t, path+" to appear", d, func() bool { return Exists(path) })
}

// Exists reports whether path exists.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
