package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/bench/grow"
	"github.com/fraiseql/fraisier/internal/store"
)

// TestQueriesOnAGrownDatabase guards the class of bug where a query of a
// hot path reads a part of a table that grows with the history: it looks
// fine on a fresh database and stalls the intake on one that has lived a
// while. A realistic workload (see workload) goes through a store whose
// database holds many deployments, webhook events, steps with output,
// releases and lock events, and every distinct statement the store ran is
// then checked with each argument list it ran with:
//
//   - its plan (EXPLAIN QUERY PLAN, EXPLAIN) must not scan a growing
//     table, except in index order under a LIMIT, which stops early;
//   - run again in a transaction that is rolled back, it must touch at
//     most maxPages pages (SQLite's page cache hits and misses on its
//     connection; PostgreSQL's shared buffers hit and read, from EXPLAIN
//     ANALYZE): a search of an index by a column of few values (the forge
//     of every delivery) reads a growing part of the table too, which a
//     plan does not show.
//
// PostgreSQL plans a statement with its arguments' values (a custom plan)
// and, once it has run a prepared statement often, may keep one plan for
// any values (a generic plan), in which a partial index whose condition
// the statement does not repeat is unusable: both are checked.
func TestQueriesOnAGrownDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T, log *queryLog) *store.DB
	}{
		{"sqlite", func(t *testing.T, log *queryLog) *store.DB {
			return openWith(t, store.Options{Path: filepath.Join(t.TempDir(), "fraisier.db")}, log)
		}},
		{"postgres", func(t *testing.T, log *queryLog) *store.DB {
			return openWith(t, store.Options{URL: pg.Database(t)}, log)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newQueryLog()
			db := tc.open(t, log)
			old := growHistory(t, db)
			log.on.Store(true)
			newWorkload(t, db, old).run()
			log.on.Store(false)
			c := newPlanChecker(t, db)
			statements := log.statements()
			for _, s := range statements {
				c.check(s)
			}
			c.checkKnown()
			t.Logf("%d distinct statements checked", len(statements))
		})
	}
}

func openWith(t *testing.T, opts store.Options, log *queryLog) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.WithConnector(opts, log.wrap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The grown database's size: a scan of a growing table, or of the rows
// of one forge, target or status, touches many times maxPages.
const (
	grownDeployments = 20000
	grownEvents      = 100000
	// maxPages is what one statement may touch. A deployment appends up
	// to 64 KiB of output to a step (16 pages, read and written); a
	// multi-row insert of a burst touches each index a few times a row;
	// stats reads rollup rows of every target, the most of any statement
	// here, and well under this.
	maxPages = 250
)

// known are statements of the hot paths that read a growing part of a
// table today, each with why it is left: a statement whose text contains
// the key is reported in the log rather than failed. Each must still be
// found, so that the entry goes once the statement is fixed.
var known = map[string]string{}

// growHistory fills db with a history: grow.Populate's deployments and webhook
// events, then five steps with output for each finished deployment, a
// release for each that succeeded, and for one in ten an order (it ran
// after the deployment before it) and a lock event. It
// returns a delivery recorded in that history, for redelivery.
func growHistory(t *testing.T, db *store.DB) store.WebhookEvent {
	t.Helper()
	ctx := context.Background()
	if err := grow.Populate(ctx, db, grownDeployments, grownEvents, 1); err != nil {
		t.Fatal(err)
	}
	p := "?"
	if db.Backend() == "postgres" {
		p = "$1"
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`WITH s (seq, name) AS (VALUES (1, 'fetch'), (2, 'build'), (3, 'migrate'), (4, 'switch'), (5, 'health'))
			INSERT INTO tb_deployment_step (deployment_id, seq, name, status, started_at, finished_at, exit_code, output)
			SELECT d.id, s.seq, s.name, 'succeeded', d.started_at, d.finished_at, 0, ` + p + `
			FROM tb_deployment d, s WHERE d.finished_at IS NOT NULL`, []any{[]byte(strings.Repeat("compiling module\n", 12))}},
		{`INSERT INTO tb_release (fraise, environment, name, sha, path, state, deployment_id, created_at)
			SELECT fraise, environment, release, new_sha, '/srv/' || release, 'good', id, finished_at
			FROM tb_deployment WHERE status = 'succeeded'
			ON CONFLICT (fraise, environment, name) DO NOTHING`, nil},
		{`INSERT INTO tb_deployment_after (deployment_id, webhook_event_id, after_id)
			SELECT id, webhook_event_id, id - 1 FROM tb_deployment
			WHERE webhook_event_id IS NOT NULL AND id % 10 = 0`, nil},
		// One deployment in ten was a push held for its checks, released
		// by a check result recorded for its commit.
		{`INSERT INTO tb_check_hold (fraise, environment, forge, repository, sha, ref, actor, webhook_event_id, status, reason, deployment_id, created_at, finished_at)
			SELECT fraise, environment, 'github', 'acme/' || fraise, new_sha, 'refs/heads/main', actor, COALESCE(webhook_event_id, 0), 'released', 'checks passed', id, started_at, started_at
			FROM tb_deployment WHERE id % 10 = 1`, nil},
		{`INSERT INTO tb_check_result (fraise, environment, forge, repository, sha, name, passed, conclusion, webhook_event_id, received_at)
			SELECT fraise, environment, 'github', 'acme/' || fraise, new_sha, 'CI', 1, 'success', COALESCE(webhook_event_id, 0), started_at
			FROM tb_deployment WHERE id % 10 = 1`, nil},
		{`INSERT INTO tb_outbox (kind, target, event, deployment_id, payload, created_at, next_attempt_at, attempts, state, sent_at)
			SELECT 'notification', 'team', status, id, '{"version":1}', finished_at, finished_at + 1000, 1,
				CASE WHEN id % 50 = 0 THEN 'given_up' ELSE 'sent' END, finished_at + 1000
			FROM tb_deployment WHERE finished_at IS NOT NULL`, nil},
		{`INSERT INTO tb_outbox_attempt (outbox_id, at, outcome, http_status, duration_ms)
			SELECT id, next_attempt_at, state, 200, 40 FROM tb_outbox`, nil},
		{`INSERT INTO tb_lock_event (fraise, environment, event, owner, host, pid, acquired_at, expires_at, at)
			SELECT fraise, environment, 'expired', 'serve-1', host, pid, started_at, started_at + 60000, started_at + 60000
			FROM tb_deployment WHERE id % 10 = 0`, nil},
		// One deployment in ten was a push rolled out across three hosts.
		{`INSERT INTO tb_rollout (fraise, environment, sha, ref, trigger, actor, webhook_event_id, status, policy, migrate_host, batch, created_at, started_at, finished_at)
			SELECT fraise, environment, new_sha, 'refs/heads/main', 'webhook', actor, webhook_event_id, 'succeeded',
				'{"hosts":["web-1","web-2","web-3"],"batch":1}', 'web-1', 2, started_at, started_at, finished_at
			FROM tb_deployment WHERE id % 10 = 2 AND finished_at IS NOT NULL`, nil},
		{`WITH h (host, pos) AS (VALUES ('web-1', 0), ('web-2', 1), ('web-3', 2))
			INSERT INTO tb_rollout_host (rollout_id, host, position, batch, status, started_at, finished_at)
			SELECT r.id, h.host, h.pos, h.pos, 'succeeded', r.started_at, r.finished_at FROM tb_rollout r, h`, nil},
	} {
		if _, err := db.SQL().ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("grow: %v\n%s", err, q.sql)
		}
	}
	if db.Backend() == "postgres" {
		// A server that has lived a while has its statistics: autovacuum
		// analyzes what grows. SQLite has none (nothing runs ANALYZE), as
		// a real fraisier database has none.
		if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
	}
	old, err := db.Webhooks(ctx, store.WebhookFilter{Forge: "github", Outcome: store.OutcomeAccepted, BeforeID: grownEvents / 2, Limit: 1})
	if err != nil || len(old) != 1 {
		t.Fatalf("an old delivery to redeliver: %v (%d found)", err, len(old))
	}
	return old[0]
}

// maintenance are statements that read no table: nothing to plan.
var maintenance = regexp.MustCompile(`(?i)^\s*(PRAGMA|SET|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b`)

func (c *planChecker) check(s loggedStatement) {
	c.t.Helper()
	if maintenance.MatchString(s.query) {
		return
	}
	for _, args := range s.argSets {
		for _, r := range c.runs(s.query, args) {
			var problems []string
			for _, table := range c.fullScans(s.query, r.plan) {
				problems = append(problems, "scans "+table)
			}
			switch {
			case r.err != nil:
				// Run again on a database that moved on, a write can fail
				// (a row it inserted now exists): its plan is all there is.
				c.t.Logf("not run again (%v); plan only:\n%s", r.err, s.query)
			case r.pages > maxPages:
				problems = append(problems, fmt.Sprintf("touches %d pages (at most %d)", r.pages, maxPages))
			}
			if len(problems) == 0 {
				continue
			}
			msg := fmt.Sprintf("on a database of %d deployments and %d webhook events, a statement %s%s:\n%s\nargs %v\nplan:\n%s",
				grownDeployments, grownEvents, strings.Join(problems, ", "), r.mode, strings.TrimSpace(s.query), args, r.plan)
			if key := c.knownKey(s.query); key != "" {
				c.seen[key] = true
				c.t.Logf("known: %s\n%s", known[key], msg)
				continue
			}
			c.t.Error(msg)
		}
	}
}

func (c *planChecker) knownKey(query string) string {
	flat := dollar.ReplaceAllString(strings.Join(strings.Fields(query), " "), "?")
	for key := range known {
		if strings.Contains(flat, key) {
			return key
		}
	}
	return ""
}

// checkKnown fails on an entry of known that no statement matched: fixed,
// it must go.
func (c *planChecker) checkKnown() {
	for key, why := range known {
		if !c.seen[key] {
			c.t.Errorf("known problem no longer seen; remove its entry from known: %q (%s)", key, why)
		}
	}
}

var (
	sqliteScan = regexp.MustCompile(`(?m)^SCAN (\w+)`)
	pgSeqScan  = regexp.MustCompile(`Seq Scan on (\w+)`)
	// tableAlias finds "tb_x alias" and "tb_x AS alias" in a statement or
	// in a view's definition.
	tableAlias = regexp.MustCompile(`(?i)\b(tb_\w+)\s+(?:AS\s+)?(\w+)`)
	hasLimit   = regexp.MustCompile(`(?i)\bLIMIT\b`)
	viewName   = regexp.MustCompile(`\bv_\w+`)
	dollar     = regexp.MustCompile(`\$\d+`)
)

// boundedTables hold a row per target, per migration, per kind of record
// retention prunes (tb_retention), or per API token an operator made
// (tb_api_token), or per node sharing the database (tb_node), or per
// host target (tb_host_health): every
// other table grows with the history.
var boundedTables = map[string]bool{"tb_fraise_state": true, "tb_restart_state": true, "tb_lock": true, "tb_job_state": true, "tb_schema_migrations": true, "tb_retention": true, "tb_api_token": true, "tb_node": true, "tb_host_health": true}

// fullScans are the growing tables the plan reads whole. A scan in index
// order under a LIMIT, with no sort, stops after the rows it returns (the
// pages check says whether it reads many to find them). In SQLite's plan
// of an INSERT, a table the statement does not name is a foreign key's
// child table, scanned only to settle a deferred constraint violation,
// which the store never leaves pending: what runs is in the pages check.
func (c *planChecker) fullScans(query, plan string) []string {
	names := map[string]string{}
	text := query
	for _, v := range viewName.FindAllString(query, -1) {
		text += "\n" + c.views[v]
	}
	for _, m := range tableAlias.FindAllStringSubmatch(text, -1) {
		names[m[2]] = m[1]
	}
	scan := sqliteScan
	if c.db.Backend() == "postgres" {
		scan = pgSeqScan
	}
	limited := hasLimit.MatchString(query) && !strings.Contains(plan, "TEMP B-TREE") && !strings.Contains(plan, "Sort")
	insert := strings.HasPrefix(strings.ToUpper(strings.TrimSpace(query)), "INSERT")
	var out []string
	for _, m := range scan.FindAllStringSubmatch(plan, -1) {
		table := m[1]
		if t, ok := names[table]; ok && !strings.HasPrefix(table, "tb_") {
			table = t
		}
		switch {
		case !strings.HasPrefix(table, "tb_"), boundedTables[table], limited:
		case insert && !regexp.MustCompile(`\b`+table+`\b`).MatchString(query):
		default:
			out = append(out, table)
		}
	}
	return out
}
