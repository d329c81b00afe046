package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// RebuildStats recomputes everything derived from tb_deployment: the
// incident accounting of each finished deployment, tb_fraise_state and the
// stats rollups. It is the repair tool for rollups that drifted, and how
// rows inserted in bulk get their rollups. It replays finished
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

// rebuilt is what a rebuild derives, target by target.
type rebuilt struct {
	states map[Target]*targetState
	// running are each target's running totals, runDay the day they have
	// reached, and rollups the tb_stats_cumulative rows of the days it
	// has finished.
	running map[Target]*statsAcc
	runDay  map[Target]int64
	rollups [][]any
	// fixes are the deployments whose stored incident accounting differs
	// from the replay's.
	fixes []incidentFix
	// interned holds the few distinct target names and statuses a large
	// history repeats, read as raw bytes: allocating each anew would
	// dominate the scan.
	interned map[string]string
}

type incidentFix struct {
	id  int64
	acc incidentAcc
}

func (r *rebuilt) state(t Target) *targetState {
	st, ok := r.states[t]
	if !ok {
		st = &targetState{Status: "never"}
		r.states[t] = st
	}
	return st
}

func (r *rebuilt) intern(b sql.RawBytes) string {
	if s, ok := r.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	r.interned[s] = s
	return s
}

// snapshot closes the current day of t's running totals as a rollup row.
func (r *rebuilt) snapshot(t Target) {
	r.rollups = append(r.rollups, append([]any{t.Fraise, t.Environment, r.runDay[t]}, r.running[t].rollupArgs()...))
}

func (db *DB) rebuild(ctx context.Context, tx *sql.Tx) error {
	r := &rebuilt{
		states: map[Target]*targetState{}, running: map[Target]*statsAcc{},
		runDay: map[Target]int64{}, interned: map[string]string{},
	}
	if err := db.replayFinished(ctx, tx, r); err != nil {
		return err
	}
	if err := db.readCurrentReleases(ctx, tx, r.states); err != nil {
		return err
	}
	if err := readLatest(ctx, tx, r); err != nil {
		return err
	}
	if err := db.fixIncidents(ctx, tx, r.fixes); err != nil {
		return err
	}
	return db.writeDerived(ctx, tx, r)
}

// replayFinished applies every finished deployment, in finish order, to its
// target's state and running totals.
func (db *DB) replayFinished(ctx context.Context, tx *sql.Tx, r *rebuilt) error {
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
		t := Target{Fraise: r.intern(fraise), Environment: r.intern(env)}
		d.status = Status(r.intern(status))
		d.duration = duration.Int64
		if !duration.Valid {
			d.duration = max(0, d.finished-d.started)
		}
		// The current release's details are read afterwards, for the one
		// deployment per target that ends up current.
		acc := r.state(t).apply(d)
		if acc != stored {
			r.fixes = append(r.fixes, incidentFix{d.id, acc})
		}
		// Finish order makes each target's days ascend: a day's row is
		// complete when the target's next finish falls on a later day.
		day := dayOf(d.finished)
		if r.running[t] == nil {
			r.running[t] = newStatsAcc()
		} else if day != r.runDay[t] {
			r.snapshot(t)
		}
		r.runDay[t] = day
		r.running[t].add(d.status, d.duration, d.finished, acc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read deployments: %w", err)
	}
	for t := range r.running {
		r.snapshot(t)
	}
	return nil
}

// readCurrentReleases fills in each state's current release from the
// deployment that made it current.
func (db *DB) readCurrentReleases(ctx context.Context, tx *sql.Tx, states map[Target]*targetState) error {
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
	return nil
}

// readLatest gives each target the status of its newest deployment,
// finished or not: the one shown.
func readLatest(ctx context.Context, tx *sql.Tx, r *rebuilt) error {
	rows, err := tx.QueryContext(ctx, `SELECT d.fraise, d.environment, d.id, d.status FROM tb_deployment d
		JOIN (SELECT MAX(id) AS id FROM tb_deployment GROUP BY fraise, environment) m ON m.id = d.id`)
	if err != nil {
		return fmt.Errorf("read latest deployments: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			t  Target
			id int64
			st Status
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &id, &st); err != nil {
			return err
		}
		s := r.state(t)
		s.Status, s.LastDeployment = st, sql.NullInt64{Int64: id, Valid: true}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read latest deployments: %w", err)
	}
	return nil
}

func (db *DB) fixIncidents(ctx context.Context, tx *sql.Tx, fixes []incidentFix) error {
	if len(fixes) == 0 {
		return nil
	}
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
	return nil
}

var (
	rebuiltStateCols = []string{"fraise", "environment", "status", "current_sha", "current_release",
		"deployed_at", "deployed_by", "last_deployment_id", "broken_since", "broken_deployment_id"}
	rebuiltRollupCols = append([]string{"fraise", "environment", "day"},
		strings.Split(strings.Join(strings.Fields(rollupCols), ""), ",")...)
)

// writeDerived replaces tb_fraise_state and tb_stats_cumulative with what
// the rebuild derived.
func (db *DB) writeDerived(ctx context.Context, tx *sql.Tx, r *rebuilt) error {
	for _, table := range []string{"tb_stats_cumulative", "tb_fraise_state"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			return fmt.Errorf("empty %s: %w", table, err)
		}
	}
	states := make([]any, 0, len(r.states)*len(rebuiltStateCols))
	for t, st := range r.states {
		states = append(states, t.Fraise, t.Environment, st.Status, st.CurrentSHA, st.CurrentRelease, st.DeployedAt,
			st.DeployedBy, st.LastDeployment, st.BrokenSince, st.BrokenDeployment)
	}
	if err := db.insertAll(ctx, tx, "tb_fraise_state", rebuiltStateCols, states); err != nil {
		return err
	}
	// In primary key order: the table is clustered on it, and appending is
	// much cheaper than inserting at random places.
	sort.Slice(r.rollups, func(i, j int) bool {
		a, b := r.rollups[i], r.rollups[j]
		if a[0] != b[0] {
			return a[0].(string) < b[0].(string)
		}
		if a[1] != b[1] {
			return a[1].(string) < b[1].(string)
		}
		return a[2].(int64) < b[2].(int64)
	})
	rollups := make([]any, 0, len(r.rollups)*len(rebuiltRollupCols))
	for _, row := range r.rollups {
		rollups = append(rollups, row...)
	}
	return db.insertAll(ctx, tx, "tb_stats_cumulative", rebuiltRollupCols, rollups)
}

// insertAll inserts args, len(cols) values a row, into table, a few
// hundred rows per statement.
func (db *DB) insertAll(ctx context.Context, tx *sql.Tx, table string, cols []string, args []any) error {
	per := min(256, 30000/len(cols))
	row := "(" + placeholders(len(cols)) + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	for len(args) > 0 {
		n := min(per, len(args)/len(cols))
		query := head + strings.Repeat(row+", ", n-1) + row
		if _, err := tx.ExecContext(ctx, db.q(query), args[:n*len(cols)]...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		args = args[n*len(cols):]
	}
	return nil
}
