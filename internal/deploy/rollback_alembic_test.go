package deploy

import (
	"context"
	"database/sql"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestRollbackAlembic: fraisier rollback with real alembic downgrades the
// database to the revision the earlier release recorded, running the
// downgrade from the release that was current (the earlier one has no b2
// to undo), checked in alembic's own table.
func TestRollbackAlembic(t *testing.T) {
	f, dbPath := newAlembicFixture(t)
	version := func() string {
		t.Helper()
		db, err := sql.Open("sqlite", dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var v string
		if err := db.QueryRow("SELECT version_num FROM alembic_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	f.push("healthy", alembicFiles)
	res := f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v1")
	first := res.Release
	f.push("healthy", alembicB2)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v2")
	if v := version(); v != "b2" {
		t.Fatalf("alembic_version after v2 = %q, want b2", v)
	}

	env, _ := f.cfg.Lookup("hello", "production")
	res, err := f.engine.Rollback(context.Background(), f.collab, RollbackRequest{Env: env, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.expect(res, store.StatusSucceeded, "v1")
	if res.Release != first {
		t.Fatalf("rolled back to %s, want %s", res.Release, first)
	}
	if v := version(); v != "a1" {
		t.Fatalf("alembic_version after the rollback = %q, want a1", v)
	}
	steps, _ := f.db.Steps(context.Background(), res.DeploymentID)
	var down string
	for _, s := range steps {
		if s.Name == "migrate down" {
			down = s.Status + " " + s.Detail
		}
	}
	if want := "succeeded b2 → a1 (down with release "; len(down) < len(want) || down[:len(want)] != want {
		t.Fatalf("migrate down step %q, want %q…", down, want)
	}
}
