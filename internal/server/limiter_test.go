package server

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterPerSourceAndGlobal: each source has its own burst, refills at
// its rate, and a request its source refuses takes nothing from the
// global bucket.
func TestLimiterPerSourceAndGlobal(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(1, 3, 2)
	for i, want := range []bool{true, true, false, false} {
		if got := l.allow("a", now); got != want {
			t.Errorf("a, request %d: %v, want %v", i, got, want)
		}
	}
	// Global burst is max(rate, burst) = 3: two taken by a, one left.
	if !l.allow("b", now) {
		t.Error("b refused while the global bucket held a token")
	}
	if l.allow("c", now) {
		t.Error("c allowed past the global bucket")
	}
	later := now.Add(time.Second)
	if !l.allow("a", later) {
		t.Error("a refused after a second's refill")
	}
}

// TestLimiterTableIsBounded: a flood from many sources never grows the
// per-source table past maxSources; idle sources are swept first.
func TestLimiterTableIsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(10, 0, 1)
	for i := range maxSources + 10 {
		l.allow(fmt.Sprint("s", i), now)
		if len(l.sources) > maxSources {
			t.Fatalf("%d sources held, want at most %d", len(l.sources), maxSources)
		}
	}
	// All active: the table started over.
	if n := len(l.sources); n > 10+1 {
		t.Errorf("%d sources held after the table filled with active ones", n)
	}
	// Once they have refilled, a sweep forgets them but keeps the active.
	l = newLimiter(10, 0, 1)
	for i := range maxSources - 1 {
		l.allow(fmt.Sprint("s", i), now)
	}
	later := now.Add(time.Second)
	l.allow("fresh", later)
	l.allow("new", later)
	if n := len(l.sources); n != 2 {
		t.Errorf("%d sources held after sweeping refilled ones, want 2", n)
	}
}

// BenchmarkLimiterAllow is the limiter's cost per request, from a few
// sources under their rate and a global limit.
func BenchmarkLimiterAllow(b *testing.B) {
	l := newLimiter(1e9, 1e9, 40)
	sources := []string{"192.0.2.1", "192.0.2.2", "2001:db8::/64", "unix"}
	now := time.Unix(1_700_000_000, 0)
	b.ResetTimer()
	for i := range b.N {
		l.allow(sources[i%len(sources)], now.Add(time.Duration(i)))
	}
}
