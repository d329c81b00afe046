package testenv

import (
	"fmt"
	"os"
	"testing"
)

// StrictEnv names the environment variable that turns a skip for a missing
// outside system into a failure. CI sets it so that a broken runner cannot
// go green by skipping everything that matters.
const StrictEnv = "FRAISIER_TEST_STRICT"

// Strict reports whether missing test dependencies must fail the test.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Unavailable ends the test because something it needs cannot run here:
// a skip normally, a failure under FRAISIER_TEST_STRICT=1.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, StrictEnv)
		return
	}
	t.Skip(msg)
}

// ReliabilityEnv names the environment variable make reliability sets.
const ReliabilityEnv = "FRAISIER_RELIABILITY"

// Reliability runs the rest of the test only under make reliability: the
// long load and attack runs, kept outside make test's time budget. It is a
// choice of suite, not a missing part, so strict mode does not turn it
// into a failure.
func Reliability(t testing.TB) {
	t.Helper()
	if os.Getenv(ReliabilityEnv) != "1" {
		t.Skip("part of make reliability (" + ReliabilityEnv + "=1)")
	}
}
