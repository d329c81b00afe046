package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

// testRestartMode checks that each deployment records its restart mode
// and serving colour, that Restarts reads the newest one per target, and
// that unknown modes and colours are refused.
func (s *suite) testRestartMode(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	other := store.Target{Fraise: api.Fraise, Environment: "staging"}
	start := func(tg store.Target) int64 {
		return must(db.StartDeployment(ctx, store.Deployment{Target: tg, Trigger: store.TriggerCLI}))(t)
	}
	first, second, third := start(api), start(api), start(other)
	start(api) // records no mode: Restarts skips it
	check(t, db.SetDeploymentRestart(ctx, first, "blue_green", "blue"))
	check(t, db.SetDeploymentRestart(ctx, second, "blue_green", "green"))
	check(t, db.SetDeploymentRestart(ctx, third, "plain", ""))
	got := must(db.Restarts(ctx, "", ""))(t)
	want := []store.TargetRestart{{Target: api, Mode: "blue_green", Colour: "green"}, {Target: other, Mode: "plain"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Restarts (-want +got):\n%s", diff)
	}
	if got := must(db.Restarts(ctx, api.Fraise, "staging"))(t); len(got) != 1 || got[0].Mode != "plain" {
		t.Errorf("Restarts of %s: %+v", other, got)
	}
	if err := db.SetDeploymentRestart(ctx, first, "rolling", ""); err == nil {
		t.Error("unknown mode accepted")
	}
	if err := db.SetDeploymentRestart(ctx, first, "blue_green", "red"); err == nil {
		t.Error("unknown colour accepted")
	}
	if err := db.SetDeploymentRestart(ctx, 1<<40, "plain", ""); err == nil {
		t.Error("missing deployment accepted")
	}
}
