package store_test

import (
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestSeeHostHealth: a recorded probe is believed while it is fresh and
// its node alive; stale or with its node dead it is unknown, never
// healthy.
func TestSeeHostHealth(t *testing.T) {
	now := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	rec := func(healthy bool, age time.Duration, detail string) *store.HostHealth {
		return &store.HostHealth{Node: "web-2", CheckedAt: now.Add(-age), Healthy: healthy, Detail: detail}
	}
	tests := []struct {
		name      string
		rec       *store.HostHealth
		hasCheck  bool
		nodeAlive bool
		word      string
		summary   string
	}{
		{"fresh and healthy", rec(true, 8*time.Second, ""), true, true, "healthy", "healthy, checked 8s ago by web-2"},
		{"fresh and unhealthy", rec(false, 3*time.Second, "GET /health: 503"), true, true, "unhealthy", "unhealthy: GET /health: 503, checked 3s ago by web-2"},
		{"just within three probes", rec(true, store.HostHealthStale, ""), true, true, "healthy", "healthy, checked 45s ago by web-2"},
		{"stale", rec(true, 2*time.Minute, ""), true, true, "unknown", "unknown: last checked 2m ago"},
		{"node dead", rec(true, 5*time.Second, ""), true, false, "unknown", "unknown: last checked 5s ago; node web-2 is not alive"},
		{"never checked", nil, true, true, "unknown", "unknown: not checked yet"},
		{"no health check", rec(true, time.Second, ""), false, true, "unknown", "unknown: no health check configured"},
		{"a clock ahead", rec(true, -3*time.Second, ""), true, true, "healthy", "healthy, checked 0s ago by web-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := store.SeeHostHealth(tc.rec, tc.hasCheck, tc.nodeAlive, now)
			if s.Word != tc.word || s.Summary() != tc.summary {
				t.Errorf("got %q, %q; want %q, %q", s.Word, s.Summary(), tc.word, tc.summary)
			}
		})
	}
}
