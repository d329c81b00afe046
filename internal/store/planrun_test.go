package store_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/fraiseql/fraisier/internal/store"
)

// planChecker plans and runs again the statements of a grown database.
type planChecker struct {
	t  *testing.T
	db *store.DB
	// conn is a connection of the checker's own: SQLite's page counters
	// are per connection, and PostgreSQL's prepared statements too.
	conn  *sql.Conn
	views map[string]string // view name → its definition (SQLite)
	// pgModes are the plans PostgreSQL may run the store's statements
	// with: its sessions' plan_cache_mode decides.
	pgModes []string
	seen    map[string]bool // entries of known that a statement matched
}

func newPlanChecker(t *testing.T, db *store.DB) *planChecker {
	t.Helper()
	ctx := context.Background()
	c := &planChecker{t: t, db: db, views: map[string]string{}, seen: map[string]bool{}}
	pool := db.SQL()
	if db.Backend() == "sqlite" {
		// A plain connection to the same file: its counters count only
		// what runs on it.
		raw, err := sql.Open("sqlite", "file:"+db.Options().Path+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		pool = raw
		rows, err := raw.QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE type = 'view'")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				t.Fatal(err)
			}
			c.views[name] = def
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.conn = conn
	if db.Backend() == "postgres" {
		var mode string
		if err := conn.QueryRowContext(ctx, "SHOW plan_cache_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		c.pgModes = []string{"force_custom_plan"}
		if mode != "force_custom_plan" {
			c.pgModes = append(c.pgModes, "force_generic_plan")
		}
	}
	return c
}

// planRun is one statement planned and run again: its plan, the pages it
// touched, or why it could not run again.
type planRun struct {
	mode  string // "" or PostgreSQL's plan kind, as " (generic plan)"
	plan  string
	pages int64
	err   error
}

func (c *planChecker) runs(query string, args []any) []planRun {
	c.t.Helper()
	if c.db.Backend() == "postgres" {
		var out []planRun
		for _, mode := range c.pgModes {
			out = append(out, c.pgRun(query, args, mode))
		}
		return out
	}
	r := planRun{plan: c.lines(c.conn, "EXPLAIN QUERY PLAN "+query, args...)}
	r.pages, r.err = c.sqlitePages(query, args)
	return []planRun{r}
}

// lines runs an EXPLAIN and returns its rows' last column (the plan's
// text in both dialects), a line each.
func (c *planChecker) lines(q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) string {
	c.t.Helper()
	rows, err := q.QueryContext(context.Background(), query, args...)
	if err != nil {
		c.t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		c.t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			c.t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s", vals[len(vals)-1]))
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// sqlitePages runs the statement again in a transaction that is rolled
// back and returns how many pages it asked the page cache for.
func (c *planChecker) sqlitePages(query string, args []any) (int64, error) {
	ctx := context.Background()
	if _, err := c.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return 0, err
	}
	defer c.conn.ExecContext(ctx, "ROLLBACK")
	before, err := c.cachePages()
	if err != nil {
		return 0, err
	}
	rows, err := c.conn.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	after, err := c.cachePages()
	return after - before, err
}

// cachePages is how many pages the connection has asked its page cache
// for so far, found there or not.
func (c *planChecker) cachePages() (int64, error) {
	var n int64
	err := c.conn.Raw(func(dc any) error {
		st, ok := dc.(sqlite.DBStatus)
		if !ok {
			return fmt.Errorf("connection of type %T has no page cache counters", dc)
		}
		for _, op := range []sqlite.DBStatusOp{sqlite.DBStatusCacheHit, sqlite.DBStatusCacheMiss} {
			v, _, err := st.Status(op, false)
			if err != nil {
				return err
			}
			n += int64(v)
		}
		return nil
	})
	return n, err
}

// pgRun prepares the statement under plan_cache_mode mode, explains its
// execution with args, and runs it again under EXPLAIN (ANALYZE, BUFFERS)
// in a transaction that is rolled back: the shared buffers its plan hit
// or read, from its top node's line, which counts its children's.
func (c *planChecker) pgRun(query string, args []any, mode string) planRun {
	c.t.Helper()
	ctx := context.Background()
	r := planRun{}
	if mode == "force_generic_plan" {
		r.mode = " (generic plan)"
	}
	tx, err := c.conn.BeginTx(ctx, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	// PREPARE outlives the transaction: deallocated once it has ended.
	defer func() {
		tx.Rollback()
		c.conn.ExecContext(ctx, "DEALLOCATE plan_check")
	}()
	for _, q := range []string{"SET LOCAL plan_cache_mode = " + mode, "PREPARE plan_check AS " + query} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			c.t.Fatalf("%s: %v", q, err)
		}
	}
	lits := make([]string, len(args))
	for i, a := range args {
		lits[i] = pgLiteral(a)
	}
	execute := "EXECUTE plan_check"
	if len(lits) > 0 {
		execute += "(" + strings.Join(lits, ", ") + ")"
	}
	r.plan = c.lines(tx, "EXPLAIN "+execute)
	var out string
	out, r.err = c.pgAnalyze(tx, "EXPLAIN (ANALYZE, BUFFERS) "+execute)
	if r.err == nil {
		r.pages = pgBufferPages(out)
	}
	return r
}

// pgAnalyze is lines that returns the statement's error rather than
// failing: run again, a write can fail.
func (c *planChecker) pgAnalyze(tx *sql.Tx, query string) (string, error) {
	rows, err := tx.QueryContext(context.Background(), query)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n"), rows.Err()
}

var (
	pgBuffers     = regexp.MustCompile(`^\s*Buffers: shared (.*)$`)
	pgBufferCount = regexp.MustCompile(`(\w+)=(\d+)`)
)

// pgBufferPages is the shared buffers hit and read of an EXPLAIN
// (ANALYZE, BUFFERS) output's first Buffers line, the top node's; the
// planner's own reads follow "Planning" and are not counted.
func pgBufferPages(plan string) int64 {
	for _, line := range strings.Split(plan, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Planning") {
			return 0
		}
		m := pgBuffers.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var n int64
		for _, kv := range pgBufferCount.FindAllStringSubmatch(m[1], -1) {
			if kv[1] == "hit" || kv[1] == "read" {
				v, _ := strconv.ParseInt(kv[2], 10, 64)
				n += v
			}
		}
		return n
	}
	return 0
}

// pgLiteral writes an argument as the store passed it as a PostgreSQL
// literal, for EXECUTE.
func pgLiteral(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case []byte:
		return "'\\x" + hex.EncodeToString(x) + "'::bytea"
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return "'" + x.UTC().Format(time.RFC3339Nano) + "'"
	default:
		return fmt.Sprint(x)
	}
}
