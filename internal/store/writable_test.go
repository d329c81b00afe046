package store_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// pgAdmin runs statements as the cluster's superuser in the database at
// rawURL.
func pgAdmin(t *testing.T, rawURL string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// pgRole creates a login role (roles are the cluster's: the name carries
// the test's database) and returns rawURL as that role.
func pgRole(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	name = strings.TrimPrefix(u.Path, "/") + "_" + name
	pgAdmin(t, rawURL, "CREATE ROLE "+name+" LOGIN")
	t.Cleanup(func() { pgAdmin(t, rawURL, "DROP OWNED BY "+name, "DROP ROLE "+name) })
	u.User = url.User(name)
	return u.String()
}

// writeSomething records a deployment and finishes it: rows in the
// deployments, the fraise's state and the statistics.
func writeSomething(ctx context.Context, o store.Options) error {
	db, err := store.Open(ctx, o)
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "api", Environment: "production"}})
	if err != nil {
		return err
	}
	return db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
}

// TestCheckWritablePostgres: each verdict of CheckWritable, produced for
// real, and checked against what a real write as that role does.
func TestCheckWritablePostgres(t *testing.T) {
	ctx := context.Background()
	admin := pg.Database(t)
	db, err := store.Open(ctx, store.Options{URL: admin})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	wantAccessError := func(t *testing.T, err error, what, fix string) {
		t.Helper()
		var we *store.WriteAccessError
		if !errors.As(err, &we) {
			t.Fatalf("CheckWritable: %v, want a WriteAccessError", err)
		}
		t.Logf("%s → fix: %s", we.What, we.Fix)
		if !strings.Contains(we.What, what) || !strings.Contains(we.Fix, fix) {
			t.Errorf("got %q (fix %q), want %q (fix %q)", we.What, we.Fix, what, fix)
		}
	}

	t.Run("owner", func(t *testing.T) {
		if err := store.CheckWritable(ctx, store.Options{URL: admin}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("granted", func(t *testing.T) {
		role := pgRole(t, admin, "writer")
		pgAdmin(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+mustUser(t, role))
		if err := store.CheckWritable(ctx, store.Options{URL: role}); err != nil {
			t.Fatal(err)
		}
		if err := writeSomething(ctx, store.Options{URL: role}); err != nil {
			t.Fatalf("the check said writable, a write says %v", err)
		}
	})
	t.Run("select only", func(t *testing.T) {
		role := pgRole(t, admin, "reader")
		pgAdmin(t, admin, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+mustUser(t, role))
		err := store.CheckWritable(ctx, store.Options{URL: role})
		wantAccessError(t, err, "role "+mustUser(t, role)+" lacks INSERT, UPDATE, DELETE on tb_", "as the tables' owner (postgres): GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+mustUser(t, role))
		if err := writeSomething(ctx, store.Options{URL: role}); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("the check said not writable, a write says %v", err)
		}
	})
	t.Run("read-only by default", func(t *testing.T) {
		role := pgRole(t, admin, "rodefault")
		pgAdmin(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+mustUser(t, role),
			"ALTER ROLE "+mustUser(t, role)+" SET default_transaction_read_only = on")
		wantAccessError(t, store.CheckWritable(ctx, store.Options{URL: role}), "default_transaction_read_only is on", "ALTER ROLE "+mustUser(t, role)+" SET default_transaction_read_only = off")
		if err := writeSomething(ctx, store.Options{URL: role}); err == nil || !strings.Contains(err.Error(), "read-only transaction") {
			t.Fatalf("the check said not writable, a write says %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := store.CheckWritable(ctx, store.Options{URL: "postgres://nobody:s3cret-pw@/nothing?host=" + url.QueryEscape(t.TempDir())})
		if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("CheckWritable: %v, want an error without the password", err)
		}
	})
}

// TestCheckWritablePostgresMigration: a schema older than this fraisier
// must be migratable by the role: it may create in the schema and owns
// the tables.
func TestCheckWritablePostgresMigration(t *testing.T) {
	ctx := context.Background()
	admin := pg.Database(t)
	// A fresh database: nothing to write yet, everything to create.
	role := pgRole(t, admin, "fresh")
	if err := store.CheckWritable(ctx, store.Options{URL: admin}); err != nil {
		t.Fatalf("owner of a fresh database: %v", err)
	}
	err := store.CheckWritable(ctx, store.Options{URL: role})
	var we *store.WriteAccessError
	if !errors.As(err, &we) || !strings.Contains(we.What, "from version 0 to ") || !strings.Contains(we.Fix, "GRANT CREATE ON SCHEMA public TO "+mustUser(t, role)) {
		t.Fatalf("fresh database, no CREATE: %v (%+v)", err, we)
	}
	if _, err := store.Open(ctx, store.Options{URL: role}); err == nil {
		t.Fatal("the check said it cannot migrate, yet a migration worked")
	}

	// Tables granted but owned by another role, and a migration pending.
	db, err := store.Open(ctx, store.Options{URL: admin})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	user := mustUser(t, role)
	pgAdmin(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+user,
		"GRANT CREATE ON SCHEMA public TO "+user)
	if err := store.CheckWritable(ctx, store.Options{URL: role}); err != nil {
		t.Fatalf("granted, schema current: %v", err)
	}
	pgAdmin(t, admin, "DELETE FROM tb_schema_migrations WHERE version = (SELECT MAX(version) FROM tb_schema_migrations)")
	err = store.CheckWritable(ctx, store.Options{URL: role})
	if !errors.As(err, &we) || !strings.Contains(we.What, "does not own tb_") || !strings.Contains(we.Fix, "as postgres, the tables' owner") {
		t.Fatalf("older schema, not the owner: %v", err)
	}
	if err := store.CheckWritable(ctx, store.Options{URL: admin}); err != nil {
		t.Fatalf("older schema, the owner: %v", err)
	}
}

func mustUser(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.User.Username()
}

// TestCheckWritableSQLite: a file and directory this user may write, and
// one made read-only (for root, whom mode bits do not stop, by a
// read-only bind mount: see testenv.ReadOnly).
func TestCheckWritableSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "fraisier.db")
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := store.CheckWritable(ctx, store.Options{Path: path}); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckWritable(ctx, store.Options{Path: path + ".missing"}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	testenv.ReadOnly(t, filepath.Dir(path))
	err = store.CheckWritable(ctx, store.Options{Path: path})
	var we *store.WriteAccessError
	if !errors.As(err, &we) || !strings.Contains(we.What, "is not writable by uid") {
		t.Fatalf("read-only: %v", err)
	}
}
