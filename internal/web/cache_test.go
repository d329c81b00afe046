package web

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// clock is a settable time for the caches' freshness.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// wait waits for a read or probe get started.
func wait(t *testing.T, done <-chan struct{}) {
	t.Helper()
	if done == nil {
		t.Fatal("no read or probe started")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the read or probe did not end")
	}
}

var prod = store.Target{Fraise: "shop", Environment: "production"}

// TestSubjectCache: a subject is read once, a commit that could not be
// read is asked again only after subjectRetry, and the cache keeps at
// most subjectEntries commits.
func TestSubjectCache(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	var mu sync.Mutex
	reads := map[string]int{}
	c := newSubjectCache(func(_ context.Context, fraise, env string, shas ...string) map[string]string {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]string{}
		for _, sha := range shas {
			reads[sha]++
			if !strings.HasPrefix(sha, "gone") {
				out[sha] = "subject of " + sha + "\nbody line"
			}
		}
		return out
	})
	c.now = clk.now
	readsOf := func(sha string) int { mu.Lock(); defer mu.Unlock(); return reads[sha] }

	s, done := c.get(prod, "abc")
	if s != "" {
		t.Fatalf("a subject before any read: %q", s)
	}
	wait(t, done)
	for range 3 {
		if s, done := c.get(prod, "abc"); s != "subject of abc" || done != nil {
			t.Fatalf("cached subject %q (read started: %v)", s, done != nil)
		}
	}
	if n := readsOf("abc"); n != 1 {
		t.Errorf("abc read %d times, want 1", n)
	}

	_, done = c.get(prod, "gone1")
	wait(t, done)
	if s, done := c.get(prod, "gone1"); s != "" || done != nil {
		t.Fatalf("an unreadable commit: %q, asked again at once: %v", s, done != nil)
	}
	clk.add(subjectRetry + time.Second)
	_, done = c.get(prod, "gone1")
	wait(t, done)
	if n := readsOf("gone1"); n != 2 {
		t.Errorf("gone1 read %d times after the retry delay, want 2", n)
	}

	if s, done := c.get(prod, ""); s != "" || done != nil {
		t.Errorf("no commit: %q, read %v", s, done != nil)
	}
	for i := range subjectEntries + 10 {
		c.get(prod, fmt.Sprintf("gone-%d", i))
	}
	c.mu.Lock()
	n, order := len(c.m), len(c.order)
	c.mu.Unlock()
	if n > subjectEntries || order > subjectEntries {
		t.Errorf("the cache holds %d commits (%d in order), want at most %d", n, order, subjectEntries)
	}
}

// TestLiveCache: one probe per environment at a time and at most one
// every liveEvery; the answer is kept with when it came.
func TestLiveCache(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	var mu sync.Mutex
	probes := 0
	release := make(chan struct{})
	c := newLiveCache(func(ctx context.Context, fraise, env string) LiveState {
		<-release
		mu.Lock()
		defer mu.Unlock()
		probes++
		ok := probes%2 == 1
		return LiveState{Healthy: &ok, Reason: fmt.Sprintf("probe %d", probes)}
	})
	c.now = clk.now
	count := func() int { mu.Lock(); defer mu.Unlock(); return probes }

	h, done := c.get(prod)
	if h.Word() != "unknown" || h.Reason() != "not checked yet" || h.Ago() != "" {
		t.Fatalf("before any probe: %s %q %q", h.Word(), h.Reason(), h.Ago())
	}
	if _, again := c.get(prod); again != nil {
		t.Fatal("a second probe started while the first runs")
	}
	close(release)
	wait(t, done)
	clk.add(3 * time.Second)
	h, again := c.get(prod)
	if again != nil || h.Word() != "healthy" || h.Reason() != "" || h.Ago() != "3 s" {
		t.Fatalf("after the probe: %s %q %q (probe started: %v)", h.Word(), h.Reason(), h.Ago(), again != nil)
	}
	clk.add(liveEvery)
	h, done = c.get(prod)
	wait(t, done)
	if h, _ = c.get(prod); h.Word() != "unhealthy" || h.Reason() != "probe 2" || count() != 2 {
		t.Fatalf("after the second probe: %s %q, %d probes", h.Word(), h.Reason(), count())
	}
}

func TestHealthInWords(t *testing.T) {
	yes, no := true, false
	at := time.Unix(1e9, 0)
	for _, tc := range []struct {
		name                string
		h                   health
		word, reason, units string
	}{
		{"not checked", health{Now: at}, "unknown", "not checked yet", ""},
		{"skipped", health{Skip: "nothing deployed yet"}, "unknown", "nothing deployed yet", ""},
		{"healthy", health{State: LiveState{Healthy: &yes, Units: map[string]bool{"a": true}}, Checked: at, Now: at}, "healthy", "", "units active"},
		{"unhealthy", health{State: LiveState{Healthy: &no, Reason: "HTTP 502"}, Checked: at, Now: at}, "unhealthy", "HTTP 502", ""},
		{"no check", health{State: LiveState{Reason: "no health check configured", Units: map[string]bool{"b": false, "a": false, "c": true}}, Checked: at, Now: at},
			"unknown", "no health check configured", "not active: a, b"},
		{"no check, no reason", health{Checked: at, Now: at}, "unknown", "no health check was run", ""},
		{"units error", health{State: LiveState{Healthy: &yes, UnitsError: "no bus"}, Checked: at, Now: at}, "healthy", "", "units not asked: no bus"},
		{"long reason", health{State: LiveState{Healthy: &no, Reason: strings.Repeat("é", 300)}, Checked: at, Now: at}, "unhealthy", strings.Repeat("é", 200) + "…", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w, r, u := tc.h.Word(), tc.h.Reason(), tc.h.UnitsNote(); w != tc.word || r != tc.reason || u != tc.units {
				t.Errorf("got %q %q %q, want %q %q %q", w, r, u, tc.word, tc.reason, tc.units)
			}
		})
	}
}
