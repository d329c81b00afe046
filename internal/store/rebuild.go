package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// bulkInserter inserts rows many per statement, which is what makes
// Populate and RebuildStats fast on both backends: per-statement overhead
// dominates single-row inserts.
type bulkInserter struct {
	ctx     context.Context
	db      *DB
	tx      *sql.Tx
	table   string
	cols    []string
	perStmt int
	stmt    *sql.Stmt // perStmt rows
	buf     []any
}

func (db *DB) newBulkInserter(ctx context.Context, tx *sql.Tx, table string, cols ...string) *bulkInserter {
	// Both backends accept at least 32766 parameters per statement;
	// beyond a few hundred rows the gain is nil.
	per := min(256, 30000/len(cols))
	return &bulkInserter{ctx: ctx, db: db, tx: tx, table: table, cols: cols, perStmt: per}
}

func (b *bulkInserter) query(rows int) string {
	row := "(" + placeholders(len(b.cols)) + ")"
	return b.db.q(b.db.d.bulkInsert + b.table + " (" + strings.Join(b.cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", rows), ", "))
}

func (b *bulkInserter) add(vals ...any) error {
	b.buf = append(b.buf, vals...)
	if len(b.buf) < b.perStmt*len(b.cols) {
		return nil
	}
	if b.stmt == nil {
		stmt, err := b.tx.PrepareContext(b.ctx, b.query(b.perStmt))
		if err != nil {
			return fmt.Errorf("prepare insert into %s: %w", b.table, err)
		}
		b.stmt = stmt
	}
	if _, err := b.stmt.ExecContext(b.ctx, b.buf...); err != nil {
		return fmt.Errorf("insert into %s: %w", b.table, err)
	}
	b.buf = b.buf[:0]
	return nil
}

// flush inserts what is buffered and releases the prepared statement.
func (b *bulkInserter) flush() error {
	if b.stmt != nil {
		defer b.stmt.Close()
		b.stmt = nil
	}
	if len(b.buf) == 0 {
		return nil
	}
	if _, err := b.tx.ExecContext(b.ctx, b.query(len(b.buf)/len(b.cols)), b.buf...); err != nil {
		return fmt.Errorf("insert into %s: %w", b.table, err)
	}
	b.buf = b.buf[:0]
	return nil
}

type dailyKey struct {
	day    int64
	t      Target
	status string
}

type rollupSums struct {
	n, sumMS, incidents, restored, restoreMS, firstAt int64
}

func (r *rollupSums) add(d finishedRow, acc incidentAcc) {
	if r.n == 0 || d.finished < r.firstAt {
		r.firstAt = d.finished
	}
	r.n++
	r.sumMS += d.duration
	r.incidents += int64(acc.incident)
	if acc.restoreMS.Valid {
		r.restored++
		r.restoreMS += acc.restoreMS.Int64
	}
}

// RebuildStats recomputes everything derived from tb_deployment: the
// incident accounting of each finished deployment, tb_fraise_state and the
// stats rollups. It is the repair tool for rollups that drifted, and how
// rows inserted in bulk (Populate) get their rollups. It replays finished
// deployments in finish order through the same code FinishDeployment uses,
// so the result matches the incremental rollups exactly.
func (db *DB) RebuildStats(ctx context.Context) error {
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
		fixes     []fix
		daily     = map[dailyKey]*rollupSums{}
		total     = map[dailyKey]*rollupSums{}     // day unused
		hist      = map[dailyKey]map[int64]int64{} // status unused
		totalHist = map[Target]map[int64]int64{}
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
		day := dayOf(d.finished)
		for _, k := range []struct {
			m map[dailyKey]*rollupSums
			k dailyKey
		}{{daily, dailyKey{day, t, d.status}}, {total, dailyKey{0, t, d.status}}} {
			s := k.m[k.k]
			if s == nil {
				s = &rollupSums{}
				k.m[k.k] = s
			}
			s.add(d, acc)
		}
		if measured(d.status) {
			b := durationBucket(d.duration)
			k := dailyKey{day: day, t: t}
			if hist[k] == nil {
				hist[k] = map[int64]int64{}
			}
			hist[k][b]++
			if totalHist[t] == nil {
				totalHist[t] = map[int64]int64{}
			}
			totalHist[t][b]++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read deployments: %w", err)
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
	for _, table := range []string{"tb_stats_daily", "tb_stats_duration_hist", "tb_stats_total", "tb_stats_total_hist", "tb_fraise_state"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			return fmt.Errorf("empty %s: %w", table, err)
		}
	}

	ins := db.newBulkInserter(ctx, tx, "tb_fraise_state", "fraise", "environment", "status", "current_sha",
		"current_release", "deployed_at", "deployed_by", "last_deployment_id", "broken_since", "broken_deployment_id")
	for t, st := range states {
		if err := ins.add(t.Fraise, t.Environment, st.Status, st.CurrentSHA, st.CurrentRelease, st.DeployedAt,
			st.DeployedBy, st.LastDeployment, st.BrokenSince, st.BrokenDeployment); err != nil {
			return err
		}
	}
	if err := ins.flush(); err != nil {
		return err
	}
	// Inserted in primary key order: these tables are clustered on it, and
	// appending is much cheaper than inserting at random places.
	ins = db.newBulkInserter(ctx, tx, "tb_stats_daily", "day", "fraise", "environment", "status", "n",
		"sum_duration_ms", "incidents", "restored", "sum_restore_ms")
	for _, k := range sortedDailyKeys(daily) {
		s := daily[k]
		if err := ins.add(k.day, k.t.Fraise, k.t.Environment, k.status, s.n, s.sumMS, s.incidents, s.restored, s.restoreMS); err != nil {
			return err
		}
	}
	if err := ins.flush(); err != nil {
		return err
	}
	ins = db.newBulkInserter(ctx, tx, "tb_stats_total", "fraise", "environment", "status", "n",
		"sum_duration_ms", "incidents", "restored", "sum_restore_ms", "first_at")
	for _, k := range sortedDailyKeys(total) {
		s := total[k]
		if err := ins.add(k.t.Fraise, k.t.Environment, k.status, s.n, s.sumMS, s.incidents, s.restored, s.restoreMS, s.firstAt); err != nil {
			return err
		}
	}
	if err := ins.flush(); err != nil {
		return err
	}
	ins = db.newBulkInserter(ctx, tx, "tb_stats_duration_hist", "day", "fraise", "environment", "hist")
	for _, k := range sortedDailyKeys(hist) {
		if err := ins.add(k.day, k.t.Fraise, k.t.Environment, encodeHist(hist[k])); err != nil {
			return err
		}
	}
	if err := ins.flush(); err != nil {
		return err
	}
	ins = db.newBulkInserter(ctx, tx, "tb_stats_total_hist", "fraise", "environment", "hist")
	targets := make([]Target, 0, len(totalHist))
	for t := range totalHist {
		targets = append(targets, t)
	}
	sort.Slice(targets, func(i, j int) bool { return targetLess(targets[i], targets[j]) })
	for _, t := range targets {
		if err := ins.add(t.Fraise, t.Environment, encodeHist(totalHist[t])); err != nil {
			return err
		}
	}
	return ins.flush()
}

func sortedDailyKeys[V any](m map[dailyKey]V) []dailyKey {
	keys := make([]dailyKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.day != b.day {
			return a.day < b.day
		}
		if a.t != b.t {
			return targetLess(a.t, b.t)
		}
		return a.status < b.status
	})
	return keys
}
