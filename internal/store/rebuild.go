package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// bulkInserter inserts rows many per statement, which is what makes
// Populate and RebuildStats fast on both backends: per-statement overhead
// dominates single-row inserts.
type bulkInserter struct {
	db      *DB
	tx      *sql.Tx
	table   string
	cols    []string
	perStmt int
	stmt    *sql.Stmt // perStmt rows
	buf     []any
}

func (db *DB) newBulkInserter(tx *sql.Tx, table string, cols ...string) *bulkInserter {
	// Both backends accept at least 32766 parameters per statement;
	// beyond a few hundred rows the gain is nil.
	per := min(256, 30000/len(cols))
	return &bulkInserter{db: db, tx: tx, table: table, cols: cols, perStmt: per}
}

func (b *bulkInserter) query(rows int) string {
	row := "(" + placeholders(len(b.cols)) + ")"
	return b.db.q(b.db.d.bulkInsert + b.table + " (" + strings.Join(b.cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", rows), ", "))
}

func (b *bulkInserter) add(ctx context.Context, vals ...any) error {
	b.buf = append(b.buf, vals...)
	if len(b.buf) < b.perStmt*len(b.cols) {
		return nil
	}
	if b.stmt == nil {
		stmt, err := b.tx.PrepareContext(ctx, b.query(b.perStmt))
		if err != nil {
			return fmt.Errorf("prepare insert into %s: %w", b.table, err)
		}
		b.stmt = stmt
	}
	if _, err := b.stmt.ExecContext(ctx, b.buf...); err != nil {
		return fmt.Errorf("insert into %s: %w", b.table, err)
	}
	b.buf = b.buf[:0]
	return nil
}

// flush inserts what is buffered and releases the prepared statement.
func (b *bulkInserter) flush(ctx context.Context) error {
	if b.stmt != nil {
		defer b.stmt.Close()
		b.stmt = nil
	}
	if len(b.buf) == 0 {
		return nil
	}
	if _, err := b.tx.ExecContext(ctx, b.query(len(b.buf)/len(b.cols)), b.buf...); err != nil {
		return fmt.Errorf("insert into %s: %w", b.table, err)
	}
	b.buf = b.buf[:0]
	return nil
}

// RebuildStats recomputes everything derived from tb_deployment: the
// incident accounting of each finished deployment, tb_fraise_state and the
// stats rollups. It is the repair tool for rollups that drifted, and how
// rows inserted in bulk (Populate) get their rollups. It replays finished
// deployments in finish order through the same code FinishDeployment uses,
// so the result matches the incremental rollups exactly.
//
// Once retention has removed deployments (Retention.Deployments), the
// rollups hold what is no longer there to recount, and it refuses.
func (db *DB) RebuildStats(ctx context.Context) error {
	pruned, err := db.deploymentsPrunedBefore(ctx)
	if err != nil {
		return fmt.Errorf("rebuild stats: %w", err)
	}
	if !pruned.IsZero() {
		return fmt.Errorf("rebuild stats: deployments finished before %s were removed by retention (state.retention.deployments): the rollups count them, and cannot be rebuilt from what is left", pruned.Format(time.DateOnly))
	}
	if err := db.write(ctx, func(tx *sql.Tx) error { return db.rebuild(ctx, tx) }); err != nil {
		return fmt.Errorf("rebuild stats: %w", err)
	}
	return nil
}

func (db *DB) rebuild(ctx context.Context, tx *sql.Tx) error {
	states := map[Target]*targetState{}
	state := func(t Target) *targetState {
		st, ok := states[t]
		if !ok {
			st = &targetState{Status: "never"}
			states[t] = st
		}
		return st
	}
	type fix struct {
		id  int64
		acc incidentAcc
	}
	var (
		fixes []fix
		// Each target's running totals, the day they have reached, and the
		// tb_stats_cumulative rows of the days it has finished.
		running  = map[Target]*statsAcc{}
		runDay   = map[Target]int64{}
		rollups  [][]any
		snapshot = func(t Target) {
			row := append([]any{t.Fraise, t.Environment, runDay[t]}, running[t].rollupArgs()...)
			rollups = append(rollups, row)
		}
	)
	// Strings are read as raw bytes and interned: a million rows name only
	// a few dozen targets and statuses, and allocating each anew would
	// dominate the scan.
	interned := map[string]string{}
	intern := func(b sql.RawBytes) string {
		if s, ok := interned[string(b)]; ok {
			return s
		}
		s := string(b)
		interned[s] = s
		return s
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, fraise, environment, status, started_at, finished_at,
		duration_ms, incident, restore_ms
		FROM tb_deployment WHERE finished_at IS NOT NULL ORDER BY finished_at, id`)
	if err != nil {
		return fmt.Errorf("read deployments: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			d                   finishedRow
			fraise, env, status sql.RawBytes
			duration            sql.NullInt64
			stored              incidentAcc
		)
		if err := rows.Scan(&d.id, &fraise, &env, &status, &d.started, &d.finished,
			&duration, &stored.incident, &stored.restoreMS); err != nil {
			return err
		}
		t := Target{Fraise: intern(fraise), Environment: intern(env)}
		d.status = intern(status)
		d.duration = duration.Int64
		if !duration.Valid {
			d.duration = max(0, d.finished-d.started)
		}
		// The current release's details are read afterwards, for the one
		// deployment per target that ends up current (see below).
		acc := state(t).apply(d)
		if acc != stored {
			fixes = append(fixes, fix{d.id, acc})
		}
		// Finish order makes each target's days ascend: a day's row is
		// complete when the target's next finish falls on a later day.
		day := dayOf(d.finished)
		if running[t] == nil {
			running[t] = newStatsAcc()
		} else if day != runDay[t] {
			snapshot(t)
		}
		runDay[t] = day
		running[t].add(d.status, d.duration, d.finished, acc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read deployments: %w", err)
	}
	for t := range running {
		snapshot(t)
	}
	for t, st := range states {
		if !st.DeployedAt.Valid {
			continue
		}
		err := tx.QueryRowContext(ctx, db.q("SELECT new_sha, release, actor FROM tb_deployment WHERE id = ?"),
			st.deployedID).Scan(&st.CurrentSHA, &st.CurrentRelease, &st.DeployedBy)
		if err != nil {
			return fmt.Errorf("read current release of %s: %w", t, err)
		}
	}

	// The status shown is the newest deployment's, finished or not.
	rows, err = tx.QueryContext(ctx, `SELECT d.fraise, d.environment, d.id, d.status FROM tb_deployment d
		JOIN (SELECT MAX(id) AS id FROM tb_deployment GROUP BY fraise, environment) m ON m.id = d.id`)
	if err != nil {
		return fmt.Errorf("read latest deployments: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			t  Target
			id int64
			st string
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &id, &st); err != nil {
			return err
		}
		s := state(t)
		s.Status, s.LastDeployment = st, sql.NullInt64{Int64: id, Valid: true}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read latest deployments: %w", err)
	}

	if len(fixes) > 0 {
		stmt, err := tx.PrepareContext(ctx, db.q("UPDATE tb_deployment SET incident = ?, restore_ms = ? WHERE id = ?"))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, f := range fixes {
			if _, err := stmt.ExecContext(ctx, f.acc.incident, f.acc.restoreMS, f.id); err != nil {
				return fmt.Errorf("update incident accounting of deployment %d: %w", f.id, err)
			}
		}
	}
	for _, table := range []string{"tb_stats_cumulative", "tb_fraise_state"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			return fmt.Errorf("empty %s: %w", table, err)
		}
	}

	ins := db.newBulkInserter(tx, "tb_fraise_state", "fraise", "environment", "status", "current_sha",
		"current_release", "deployed_at", "deployed_by", "last_deployment_id", "broken_since", "broken_deployment_id")
	for t, st := range states {
		if err := ins.add(ctx, t.Fraise, t.Environment, st.Status, st.CurrentSHA, st.CurrentRelease, st.DeployedAt,
			st.DeployedBy, st.LastDeployment, st.BrokenSince, st.BrokenDeployment); err != nil {
			return err
		}
	}
	if err := ins.flush(ctx); err != nil {
		return err
	}
	// In primary key order: the table is clustered on it, and appending is
	// much cheaper than inserting at random places.
	sort.Slice(rollups, func(i, j int) bool {
		a, b := rollups[i], rollups[j]
		if a[0] != b[0] {
			return a[0].(string) < b[0].(string)
		}
		if a[1] != b[1] {
			return a[1].(string) < b[1].(string)
		}
		return a[2].(int64) < b[2].(int64)
	})
	ins = db.newBulkInserter(tx, "tb_stats_cumulative", append([]string{"fraise", "environment", "day"},
		strings.Split(strings.Join(strings.Fields(rollupCols), ""), ",")...)...)
	for _, row := range rollups {
		if err := ins.add(ctx, row...); err != nil {
			return err
		}
	}
	return ins.flush(ctx)
}
