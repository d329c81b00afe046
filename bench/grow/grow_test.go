package grow_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/bench/grow"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/store/storetest"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

var pg pgtest.Server

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// TestPopulate, on both backends: the history has the deployments,
// events and links asked for, mostly succeeded, over many targets; its
// derived tables are what RebuildStats makes of it; and the indexes the
// load dropped are back.
func TestPopulate(t *testing.T) {
	epoch := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) store.Options
	}{
		{"sqlite", func(t *testing.T) store.Options {
			return store.Options{Path: filepath.Join(t.TempDir(), "fraisier.db")}
		}},
		{"postgres", func(t *testing.T) store.Options { return store.Options{URL: pg.Database(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts(t)
			opts.Now = func() time.Time { return epoch }
			db, err := store.Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			testPopulate(t, db)
		})
	}
}

func testPopulate(t *testing.T, db *store.DB) {
	ctx := context.Background()
	check(t, grow.Populate(ctx, db, 3000, 4000, 1))
	st := must(db.Stats(ctx, store.StatsFilter{}))(t)
	if st[0].Total != 3000 || len(st) < 20 {
		t.Fatalf("populated stats: total %d over %d rows", st[0].Total, len(st))
	}
	if st[0].ByStatus[store.StatusSucceeded] < 2000 {
		t.Errorf("populated statuses are not mostly succeeded: %v", st[0].ByStatus)
	}
	evs := must(db.Webhooks(ctx, store.WebhookFilter{Limit: 5000}))(t)
	if len(evs) != 4000 {
		t.Errorf("%d webhook events, want 4000", len(evs))
	}
	linked := 0
	for _, e := range evs {
		linked += len(e.DeploymentIDs)
	}
	if linked != 1800 {
		t.Errorf("%d webhook links, want 1800", linked)
	}
	if states := must(db.FraiseStates(ctx, "", ""))(t); len(states) < 20 {
		t.Errorf("%d fraise states after populating", len(states))
	}
	// Rebuilding again changes nothing.
	before := storetest.Derived(t, db)
	check(t, db.RebuildStats(ctx))
	if diff := cmp.Diff(before, storetest.Derived(t, db)); diff != "" {
		t.Errorf("rebuild after populate changed rollups:\n%s", diff)
	}
	// And the indexes it dropped are back.
	check(t, grow.Populate(ctx, db, 10, 10, 2))
	if ds := must(db.Deployments(ctx, store.DeploymentFilter{Fraise: "api", Limit: 1}))(t); len(ds) != 1 {
		t.Errorf("history after a second populate: %+v", ds)
	}
}

func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
