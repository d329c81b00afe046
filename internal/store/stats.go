package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Stats summarises the finished deployments matching f: one row per known
// target matching f (sorted), preceded, unless f names a fraise, by a row
// for all of them together with an empty Target. A deployment belongs to
// the window when it finished at or after f.Since.
//
//   - ByStatus counts finished deployments by final status; Total is their sum.
//   - SuccessRate = succeeded / finished, skipped and superseded left out.
//   - Mean, median and p95 duration are over the finished deployments,
//     skipped and superseded left out. The mean is exact; median and p95
//     are nearest-rank and read from a histogram, so they are within
//     PercentileRelError (2%) of the exact figure, never below it.
//   - DeploysPerDay = Total / days in the window, the window running from
//     f.Since (or the first finished deployment) to now, at least one day.
//   - ChangeFailureRate = (rolled_back + rollback_failed) /
//     (succeeded + rolled_back + rollback_failed).
//   - Incidents counts incidents opened in the window, MeanTimeToRestore
//     (ms) averages those restored in it. A deployment ending rolled_back
//     on a healthy target is an incident restored by its own rollback: its
//     time to restore is its duration. One ending rollback_failed on a
//     healthy target opens an incident that lasts until a later deployment
//     of the target ends succeeded or rolled_back; its time to restore runs
//     from the start of the deployment that broke the target to the finish
//     of the one that restored it. Failures while a target is already
//     broken are part of the open incident.
//
// Stats never scans tb_deployment: tb_stats_cumulative holds each target's
// totals through each day it had a finish, so all time is a target's
// latest row and a window the latest row less the row before the window,
// plus an exact scan of the window's first day when f.Since falls inside
// it. That is a few rows per target whatever the window. When retention
// has removed deployments of that first day (Retention.Deployments), the
// window starts at its midnight instead, and Since says so.
func (db *DB) Stats(ctx context.Context, f StatsFilter) ([]Stats, error) {
	out, err := db.stats(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("compute deployment stats: %w", err)
	}
	return out, nil
}

func (db *DB) stats(ctx context.Context, f StatsFilter) ([]Stats, error) {
	now := db.nowMS()
	accs := map[Target]*statsAcc{}
	// The newest row of each target; the targets come from tb_fraise_state,
	// so that one with no finished deployment still gets its (empty) row.
	if err := db.rollupsBefore(ctx, f, math.MaxInt64, func(t Target, a *statsAcc) { accs[t] = a }); err != nil {
		return nil, err
	}
	var since *time.Time
	if !f.Since.IsZero() {
		s := f.Since.UTC()
		sinceMS := s.UnixMilli()
		// A window starting on a day retention pruned deployments of
		// starts at that day's midnight: the rollups are exact there.
		from, err := db.statsSince(ctx, sinceMS)
		if err != nil {
			return nil, err
		}
		if from != sinceMS {
			s, sinceMS = fromMS(from), from
		}
		since = &s
		firstFullDay := dayOf(sinceMS)
		if sinceMS%dayMS != 0 {
			firstFullDay++
		}
		err = db.rollupsBefore(ctx, f, firstFullDay, func(t Target, a *statsAcc) {
			if w := accs[t]; w != nil {
				w.merge(a, -1)
			}
		})
		if err != nil {
			return nil, err
		}
		if sinceMS%dayMS != 0 {
			if err := db.statsScan(ctx, f, sinceMS, firstFullDay*dayMS, accs); err != nil {
				return nil, err
			}
		}
	}

	targets := make([]Target, 0, len(accs))
	for t := range accs {
		targets = append(targets, t)
	}
	sort.Slice(targets, func(i, j int) bool { return targetLess(targets[i], targets[j]) })
	var out []Stats
	if f.Fraise == "" {
		all := newStatsAcc()
		for _, t := range targets {
			all.merge(accs[t], 1)
		}
		out = append(out, all.stats(Target{}, since, now))
	}
	for _, t := range targets {
		out = append(out, accs[t].stats(t, since, now))
	}
	return out, nil
}

// rollupsBefore calls fn with the newest tb_stats_cumulative row before
// day of every known target matching f: its totals through the day before.
// Targets without such a row get empty totals.
func (db *DB) rollupsBefore(ctx context.Context, f StatsFilter, day int64, fn func(Target, *statsAcc)) error {
	where, args := targetWhere("", f.Fraise, f.Environment)
	// Materialized, so that the newest day is looked up once per target
	// (an index seek) and not once per rollup row of the target.
	rows, err := db.sql.QueryContext(ctx, db.q(`WITH s AS MATERIALIZED (
		    SELECT fraise, environment,
		           (SELECT m.day FROM tb_stats_cumulative m
		            WHERE m.fraise = t.fraise AND m.environment = t.environment AND m.day < ?
		            ORDER BY m.day DESC LIMIT 1) AS day
		    FROM tb_fraise_state t`+where+`
		)
		SELECT s.fraise, s.environment, c.day, `+prefixCols("c.", rollupCols)+`
		FROM s LEFT JOIN tb_stats_cumulative c
		  ON c.fraise = s.fraise AND c.environment = s.environment AND c.day = s.day`),
		append([]any{day}, args...)...)
	if err != nil {
		return fmt.Errorf("read stats rollups: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			t    Target
			have sql.NullInt64
			n    [12]sql.NullInt64
			hist sql.RawBytes
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &have, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6],
			&n[7], &n[8], &n[9], &n[10], &n[11], &hist); err != nil {
			return err
		}
		a := newStatsAcc()
		if have.Valid {
			for i := range a.counts {
				a.counts[i] = n[i].Int64
			}
			a.measuredMS, a.incidents, a.restored, a.restoreMS, a.firstAt = n[7].Int64, n[8].Int64, n[9].Int64, n[10].Int64, n[11].Int64
			if err := a.hist.addEncoded(hist, 1); err != nil {
				return fmt.Errorf("stats of %s: %w", t, err)
			}
		}
		fn(t, a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read stats rollups: %w", err)
	}
	return nil
}

// prefixCols qualifies a comma-separated column list.
func prefixCols(prefix, cols string) string {
	fields := strings.Split(cols, ",")
	for i, f := range fields {
		fields[i] = prefix + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// statsScan adds the deployments finished in [from, to) exactly, from
// tb_deployment over its finished_at index.
func (db *DB) statsScan(ctx context.Context, f StatsFilter, from, to int64, accs map[Target]*statsAcc) error {
	conds := []string{"finished_at >= ?", "finished_at < ?"}
	args := []any{from, to}
	// The || '' keeps the planner on the finished_at index: with an index
	// on fraise it would otherwise walk every deployment of the fraise.
	if f.Fraise != "" {
		conds = append(conds, "fraise || '' = ?")
		args = append(args, f.Fraise)
	}
	if f.Environment != "" {
		conds = append(conds, "environment || '' = ?")
		args = append(args, f.Environment)
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, status, duration_ms, finished_at, incident, restore_ms
		FROM tb_deployment WHERE `+strings.Join(conds, " AND ")), args...)
	if err != nil {
		return fmt.Errorf("read the window's first day: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			t                  Target
			status             Status
			duration, finished int64
			acc                incidentAcc
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &status, &duration, &finished, &acc.incident, &acc.restoreMS); err != nil {
			return err
		}
		a := accs[t]
		if a == nil {
			// Finished but unknown to tb_fraise_state: only if it was
			// edited by hand. Counted all the same.
			a = newStatsAcc()
			accs[t] = a
		}
		a.add(status, duration, finished, acc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the window's first day: %w", err)
	}
	return nil
}

// eachRow calls fn for every row and closes rows.
func eachRow(rows *sql.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}
