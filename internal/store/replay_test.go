package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/bench/grow"
	"github.com/fraiseql/fraisier/internal/store"
)

// TestReplayLookupIsIndexed: the intake looks for an earlier delivery of
// every push it queues; on a database with many webhook events that is a
// search of ix_webhook_event_pushed, never a scan of the table or of every
// accepted event.
func TestReplayLookupIsIndexed(t *testing.T) {
	tests := []struct {
		name    string
		open    func(t *testing.T) *store.DB
		explain string
		want    string
		never   []string
	}{
		{"sqlite", openSQLite, "EXPLAIN QUERY PLAN ", "SEARCH tb_webhook_event USING INDEX ix_webhook_event_pushed (sha=?)", []string{"SCAN", "TEMP B-TREE", "ix_webhook_event_outcome"}},
		{"postgres", openPostgres, "EXPLAIN ", "ix_webhook_event_pushed", []string{"Seq Scan", "ix_webhook_event_outcome"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			if err := grow.Populate(ctx, db, 20000, 100000, 1); err != nil {
				t.Fatal(err)
			}
			var accepted int
			if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM tb_webhook_event WHERE outcome = 'accepted'").Scan(&accepted); err != nil {
				t.Fatal(err)
			}
			for query, args := range store.EarlierPushQueries(db) {
				plan := explain(t, db.SQL(), tc.explain+query, args...)
				if !strings.Contains(plan, tc.want) {
					t.Errorf("plan for %d commits on %d accepted events does not use %q:\n%s", len(args), accepted, tc.want, plan)
				}
				for _, bad := range tc.never {
					if strings.Contains(plan, bad) {
						t.Errorf("plan for %d commits on %d accepted events has %q:\n%s", len(args), accepted, bad, plan)
					}
				}
			}
		})
	}
}

// explain runs an EXPLAIN statement and returns its rows' text, a line
// each.
func explain(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		// The last column is the plan's text in both dialects.
		lines = append(lines, vals[len(vals)-1].String)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
