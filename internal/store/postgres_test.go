package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/store/storetest"
)

func openPostgres(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{URL: pg.Database(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, openPostgres)
}

// The store's locking relies on READ COMMITTED, and a server configured
// with a stricter default must not change what it does: the concurrent
// takeover of one push's requests on a database whose
// default_transaction_isolation is repeatable read (without the store's
// explicit level, its push stays accepted with nothing standing).
func TestPostgresStricterDefaultIsolation(t *testing.T) {
	storetest.RunOnly(t, func(t *testing.T) *store.DB {
		t.Helper()
		url := pg.Database(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DO $$ BEGIN
			EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', current_database(), 'repeatable read');
			END $$`); err != nil {
			t.Fatal(err)
		}
		db, err := store.Open(ctx, store.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		var level string
		if err := db.SQL().QueryRowContext(ctx, "SHOW default_transaction_isolation").Scan(&level); err != nil || level != "repeatable read" {
			t.Fatalf("default_transaction_isolation %q (%v), want repeatable read", level, err)
		}
		return db
	}, "QueueConcurrentTakeover", "QueueConcurrentIntake")
}
