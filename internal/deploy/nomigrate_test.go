package deploy

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestDeployNoMigrate: a deployment asked not to migrate (one host of a
// rollout whose migration host is another) switches the code and leaves
// the database as it is, its migrate step recorded skipped with the
// reason given, or --no-migrate without one; the same push deployed
// normally migrates.
func TestDeployNoMigrate(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "app.db")
	f := newFixture(t, fmt.Sprintf(`        database:
          tool: sql
          dir: migrations
          url: sqlite:///%s
`, dbPath))
	ctx := context.Background()
	f.push("healthy", migrationFiles(1, false))
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	for _, tc := range []struct {
		name, why, wantDetail string
	}{
		{"with the rollout's reason", "migrations run once per rollout, on web-1", "migrations run once per rollout, on web-1"},
		{"without a reason", "", "--no-migrate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.push("healthy", migrationFiles(2, false))
			res := f.deploy(Request{Force: true, NoMigrate: true, NoMigrateWhy: tc.why})
			f.expect(res, store.StatusSucceeded, fmt.Sprintf("v%d", f.version))
			if got := applied(t, dbPath); !slices.Equal(got, []int64{1}) {
				t.Fatalf("tracking table holds %v, want [1]: the database must stay", got)
			}
			steps, err := f.db.Steps(ctx, res.DeploymentID)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(steps, func(s store.Step) bool { return s.Name == "migrate" })
			if i < 0 || steps[i].Status != store.StepSkipped || steps[i].Detail != tc.wantDetail {
				t.Fatalf("migrate step %+v, want skipped with %q", steps, tc.wantDetail)
			}
		})
	}
	f.expect(f.deploy(Request{Force: true}), store.StatusSucceeded, fmt.Sprintf("v%d", f.version))
	if got := applied(t, dbPath); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("tracking table holds %v after a deployment that migrates, want [1 2]", got)
	}
}
