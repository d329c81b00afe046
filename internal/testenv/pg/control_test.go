package pg_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/fraiseql/fraisier/internal/testenv/pg"
)

// TestStopStartServer: a stopped server refuses connections, and started
// again it serves the data it had, in both stop modes.
func TestStopStartServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pg.Start(ctx)
	if errors.Is(err, pg.ErrUnavailable) {
		testenv.Unavailable(t, "PostgreSQL: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if err := c.CreateDatabase(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, c, "CREATE TABLE t (n int); INSERT INTO t VALUES (42)")
	for _, immediate := range []bool{false, true} {
		if err := c.StopServer(ctx, immediate); err != nil {
			t.Fatal(err)
		}
		if conn, err := pgx.Connect(ctx, c.URL("kept", "")); err == nil {
			conn.Close(ctx)
			t.Fatalf("immediate=%v: connected to a stopped server", immediate)
		}
		if err := c.StartServer(ctx); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, c.URL("kept", ""))
		if err != nil {
			t.Fatalf("immediate=%v: connect after the restart: %v\n%s", immediate, err, c.LogTail(2000))
		}
		var n int
		err = conn.QueryRow(ctx, "SELECT n FROM t").Scan(&n)
		conn.Close(ctx)
		if err != nil || n != 42 {
			t.Fatalf("immediate=%v: after the restart: %d, %v; want 42", immediate, n, err)
		}
	}
}

func mustExec(ctx context.Context, t *testing.T, c *pg.Cluster, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, c.URL("kept", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}
