package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// testHostHealth: a host target's health is one row, replaced by each
// probe, listed by target; a zero CheckedAt is the store's clock; the
// detail is capped at a character boundary; a probe needs a target and
// a node.
func (s *suite) testHostHealth(t *testing.T) {
	f := s.fleet(t)
	if hs := must(f.db.HostHealth(f.ctx))(t); len(hs) != 0 {
		t.Fatalf("a fresh database has host health %+v", hs)
	}
	check(t, f.db.RecordHostHealth(f.ctx, store.HostHealth{Target: hostOf("web-2"), Node: "web-2", Healthy: true}))
	check(t, f.db.RecordHostHealth(f.ctx, store.HostHealth{Target: hostOf("web-1"), Node: "web-1", Healthy: false, Detail: "connection refused"}))
	f.clk.Advance(15 * time.Second)
	// é is two bytes: 300 of them cut at 500 bytes must not split one.
	long := strings.Repeat("é", 300)
	check(t, f.db.RecordHostHealth(f.ctx, store.HostHealth{Target: hostOf("web-2"), Node: "web-2", Healthy: false, Detail: long}))
	explicit := epoch.Add(time.Hour)
	check(t, f.db.RecordHostHealth(f.ctx, store.HostHealth{Target: hostOf("web-3"), Node: "web-3", Healthy: true, CheckedAt: explicit}))

	hs := must(f.db.HostHealth(f.ctx))(t)
	if len(hs) != 3 || hs[0].Target != hostOf("web-1") || hs[1].Target != hostOf("web-2") || hs[2].Target != hostOf("web-3") {
		t.Fatalf("host health %+v, want web-1, web-2, web-3", hs)
	}
	tests := []struct {
		name    string
		got     store.HostHealth
		healthy bool
		at      time.Time
		detail  string
	}{
		{"unhealthy, its detail kept", hs[0], false, epoch, "connection refused"},
		{"replaced by the later probe", hs[1], false, epoch.Add(15 * time.Second), strings.Repeat("é", 248) + "…"},
		{"the probe's own time", hs[2], true, explicit, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.got
			if h.Healthy != tc.healthy || !h.CheckedAt.Equal(tc.at) || h.Detail != tc.detail || h.Node != strings.TrimPrefix(h.Environment, "production@") {
				t.Errorf("got %+v (detail %d bytes), want healthy %v at %v, detail %d bytes", h, len(h.Detail), tc.healthy, tc.at, len(tc.detail))
			}
			if len(h.Detail) > store.HostHealthDetailCap {
				t.Errorf("detail of %d bytes, over the cap of %d", len(h.Detail), store.HostHealthDetailCap)
			}
		})
	}
	for _, bad := range []store.HostHealth{{Target: hostOf("web-1")}, {Node: "web-1"}} {
		if err := f.db.RecordHostHealth(f.ctx, bad); err == nil {
			t.Errorf("RecordHostHealth(%+v) accepted", bad)
		}
	}
}
