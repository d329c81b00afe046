package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

const dayMS = 24 * 60 * 60 * 1000

// PercentileRelError bounds the relative error of the median and p95 that
// Stats and v_deployment_stats report: durations are counted in buckets no
// wider than 2% and a percentile is reported as its bucket's upper bound.
const PercentileRelError = 0.02

// durationBounds are the histogram buckets' upper bounds in ms, ascending.
// Below 64 ms every millisecond has its own bucket; from there each bound
// is the previous one times 1.02, rounded down, so a bucket (prev, bound]
// never spans more than 2% of its values. The last bucket (about 31 years)
// also takes anything longer.
var durationBounds = func() []int64 {
	var b []int64
	for v := int64(0); v < 64; v++ {
		b = append(b, v)
	}
	for v := int64(64); v < 1e12; {
		b = append(b, v)
		next := v * 102 / 100
		if next <= v {
			next = v + 1
		}
		v = next
	}
	return b
}()

// durationBucket is the histogram bucket of a duration: its upper bound.
func durationBucket(ms int64) int64 {
	if ms <= 0 {
		return 0
	}
	i := sort.Search(len(durationBounds), func(i int) bool { return durationBounds[i] >= ms })
	if i == len(durationBounds) {
		i--
	}
	return durationBounds[i]
}

// measured reports whether a finished deployment's duration counts in the
// duration figures: skipped and superseded ones did no work.
func measured(status string) bool { return status != StatusSkipped && status != StatusSuperseded }

func dayOf(ms int64) int64 {
	d := ms / dayMS
	if ms%dayMS < 0 {
		d--
	}
	return d
}

// The rollup upserts FinishDeployment runs; RebuildStats writes the same
// rows in bulk.
const (
	upsertDaily = `INSERT INTO tb_stats_daily
		(day, fraise, environment, status, n, sum_duration_ms, incidents, restored, sum_restore_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (day, fraise, environment, status) DO UPDATE SET
		  n = tb_stats_daily.n + excluded.n,
		  sum_duration_ms = tb_stats_daily.sum_duration_ms + excluded.sum_duration_ms,
		  incidents = tb_stats_daily.incidents + excluded.incidents,
		  restored = tb_stats_daily.restored + excluded.restored,
		  sum_restore_ms = tb_stats_daily.sum_restore_ms + excluded.sum_restore_ms`
	upsertHist = `INSERT INTO tb_stats_duration_hist (day, fraise, environment, bucket, n)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (day, fraise, environment, bucket) DO UPDATE SET n = tb_stats_duration_hist.n + excluded.n`
	upsertTotal = `INSERT INTO tb_stats_total
		(fraise, environment, status, n, sum_duration_ms, incidents, restored, sum_restore_ms, first_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (fraise, environment, status) DO UPDATE SET
		  n = tb_stats_total.n + excluded.n,
		  sum_duration_ms = tb_stats_total.sum_duration_ms + excluded.sum_duration_ms,
		  incidents = tb_stats_total.incidents + excluded.incidents,
		  restored = tb_stats_total.restored + excluded.restored,
		  sum_restore_ms = tb_stats_total.sum_restore_ms + excluded.sum_restore_ms,
		  first_at = CASE WHEN excluded.first_at < tb_stats_total.first_at
		                  THEN excluded.first_at ELSE tb_stats_total.first_at END`
	upsertTotalHist = `INSERT INTO tb_stats_total_hist (fraise, environment, bucket, n)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (fraise, environment, bucket) DO UPDATE SET n = tb_stats_total_hist.n + excluded.n`
)

func (db *DB) addToRollups(ctx context.Context, tx *sql.Tx, t Target, d finishedRow, acc incidentAcc) error {
	restored := int64(0)
	if acc.restoreMS.Valid {
		restored = 1
	}
	day := dayOf(d.finished)
	if _, err := tx.ExecContext(ctx, db.q(upsertDaily), day, t.Fraise, t.Environment, d.status,
		1, d.duration, acc.incident, restored, acc.restoreMS.Int64); err != nil {
		return fmt.Errorf("update daily stats: %w", err)
	}
	if _, err := tx.ExecContext(ctx, db.q(upsertTotal), t.Fraise, t.Environment, d.status,
		1, d.duration, acc.incident, restored, acc.restoreMS.Int64, d.finished); err != nil {
		return fmt.Errorf("update total stats: %w", err)
	}
	if !measured(d.status) {
		return nil
	}
	bucket := durationBucket(d.duration)
	if _, err := tx.ExecContext(ctx, db.q(upsertHist), day, t.Fraise, t.Environment, bucket, 1); err != nil {
		return fmt.Errorf("update daily duration histogram: %w", err)
	}
	if _, err := tx.ExecContext(ctx, db.q(upsertTotalHist), t.Fraise, t.Environment, bucket, 1); err != nil {
		return fmt.Errorf("update total duration histogram: %w", err)
	}
	return nil
}

// statsAcc accumulates the figures of one target, or of all.
type statsAcc struct {
	byStatus   map[string]int64
	measured   int64 // finished, not skipped or superseded
	measuredMS int64 // their summed durations
	incidents  int64
	restored   int64
	restoreMS  int64
	firstAt    int64 // earliest finish; valid when hasFirst
	hasFirst   bool
	hist       map[int64]int64
}

func newStatsAcc() *statsAcc {
	return &statsAcc{byStatus: map[string]int64{}, hist: map[int64]int64{}}
}

func (a *statsAcc) addStatus(status string, n, sumMS, incidents, restored, restoreMS int64) {
	a.byStatus[status] += n
	if measured(status) {
		a.measured += n
		a.measuredMS += sumMS
	}
	a.incidents += incidents
	a.restored += restored
	a.restoreMS += restoreMS
}

func (a *statsAcc) addFirst(at int64) {
	if !a.hasFirst || at < a.firstAt {
		a.firstAt, a.hasFirst = at, true
	}
}

func (a *statsAcc) merge(b *statsAcc) {
	for s, n := range b.byStatus {
		a.byStatus[s] += n
	}
	a.measured += b.measured
	a.measuredMS += b.measuredMS
	a.incidents += b.incidents
	a.restored += b.restored
	a.restoreMS += b.restoreMS
	if b.hasFirst {
		a.addFirst(b.firstAt)
	}
	for k, n := range b.hist {
		a.hist[k] += n
	}
}

// percentile is the nearest-rank percentile pct/100 of the histogram: the
// upper bound of the bucket holding the ceil(pct/100 * n)-th duration.
func (a *statsAcc) percentile(pct int64) float64 {
	var total int64
	buckets := make([]int64, 0, len(a.hist))
	for b, n := range a.hist {
		buckets = append(buckets, b)
		total += n
	}
	if total == 0 {
		return 0
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i] < buckets[j] })
	rank := (pct*total + 99) / 100
	var cum int64
	for _, b := range buckets {
		cum += a.hist[b]
		if cum >= rank {
			return float64(b)
		}
	}
	return float64(buckets[len(buckets)-1])
}

func ratio(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

func (a *statsAcc) stats(t Target, since *time.Time, nowMS int64) Stats {
	s := Stats{Target: t, Since: since, ByStatus: map[string]int64{}, PercentileRelError: PercentileRelError}
	for _, st := range TerminalStatuses() {
		s.ByStatus[st] = a.byStatus[st]
		s.Total += a.byStatus[st]
	}
	ok := a.byStatus[StatusSucceeded]
	failed := a.byStatus[StatusRolledBack] + a.byStatus[StatusRollbackFailed]
	s.SuccessRate = ratio(ok, a.measured)
	s.ChangeFailureRate = ratio(failed, ok+failed)
	if a.measured > 0 {
		s.MeanDurationMS = float64(a.measuredMS) / float64(a.measured)
	}
	s.MedianDurationMS = a.percentile(50)
	s.P95DurationMS = a.percentile(95)
	s.Incidents = a.incidents
	if a.restored > 0 {
		s.MeanTimeToRestore = float64(a.restoreMS) / float64(a.restored)
	}
	start, haveStart := a.firstAt, a.hasFirst
	if since != nil {
		start, haveStart = since.UnixMilli(), true
	}
	if haveStart && s.Total > 0 {
		s.DeploysPerDay = float64(s.Total) / max(1, float64(nowMS-start)/dayMS)
	}
	return s
}

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
// Stats reads the rollups, never tb_deployment, except for an exact scan of
// the first day when f.Since falls inside it.
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
	get := func(t Target) *statsAcc {
		a, ok := accs[t]
		if !ok {
			a = newStatsAcc()
			accs[t] = a
		}
		return a
	}

	where, args := targetWhere("", f.Fraise, f.Environment)
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT fraise, environment FROM tb_fraise_state"+where), args...)
	if err != nil {
		return nil, err
	}
	err = eachRow(rows, func() error {
		var t Target
		if err := rows.Scan(&t.Fraise, &t.Environment); err != nil {
			return err
		}
		get(t)
		return nil
	})
	if err != nil {
		return nil, err
	}

	var since *time.Time
	if f.Since.IsZero() {
		if err := db.statsAllTime(ctx, f, get); err != nil {
			return nil, err
		}
	} else {
		s := f.Since.UTC()
		since = &s
		if err := db.statsSince(ctx, f, s.UnixMilli(), get); err != nil {
			return nil, err
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
		for _, a := range accs {
			all.merge(a)
		}
		out = append(out, all.stats(Target{}, since, now))
	}
	for _, t := range targets {
		out = append(out, accs[t].stats(t, since, now))
	}
	return out, nil
}

func (db *DB) statsAllTime(ctx context.Context, f StatsFilter, get func(Target) *statsAcc) error {
	where, args := targetWhere("", f.Fraise, f.Environment)
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, status, n, sum_duration_ms,
		incidents, restored, sum_restore_ms, first_at FROM tb_stats_total`+where), args...)
	if err != nil {
		return err
	}
	err = eachRow(rows, func() error {
		var (
			t                                    Target
			status                               string
			n, sumMS, inc, rest, restMS, firstAt int64
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &status, &n, &sumMS, &inc, &rest, &restMS, &firstAt); err != nil {
			return err
		}
		a := get(t)
		a.addStatus(status, n, sumMS, inc, rest, restMS)
		a.addFirst(firstAt)
		return nil
	})
	if err != nil {
		return err
	}
	rows, err = db.sql.QueryContext(ctx, db.q("SELECT fraise, environment, bucket, n FROM tb_stats_total_hist"+where), args...)
	if err != nil {
		return err
	}
	return eachRow(rows, func() error {
		var (
			t         Target
			bucket, n int64
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &bucket, &n); err != nil {
			return err
		}
		get(t).hist[bucket] += n
		return nil
	})
}

// statsSince adds the deployments finished at or after since: whole days
// from the daily rollups, and the part of since's own day that falls in the
// window by an exact scan of tb_deployment over the finished_at index.
func (db *DB) statsSince(ctx context.Context, f StatsFilter, since int64, get func(Target) *statsAcc) error {
	firstFullDay := dayOf(since)
	if since%dayMS != 0 {
		firstFullDay++
		if err := db.statsScan(ctx, f, since, firstFullDay*dayMS, get); err != nil {
			return err
		}
	}
	conds := []string{"day >= ?"}
	args := []any{firstFullDay}
	if f.Fraise != "" {
		conds = append(conds, "fraise = ?")
		args = append(args, f.Fraise)
	}
	if f.Environment != "" {
		conds = append(conds, "environment = ?")
		args = append(args, f.Environment)
	}
	where := " WHERE " + strings.Join(conds, " AND ")
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, status,
		CAST(SUM(n) AS BIGINT), CAST(SUM(sum_duration_ms) AS BIGINT), CAST(SUM(incidents) AS BIGINT),
		CAST(SUM(restored) AS BIGINT), CAST(SUM(sum_restore_ms) AS BIGINT)
		FROM tb_stats_daily`+where+" GROUP BY fraise, environment, status"), args...)
	if err != nil {
		return err
	}
	err = eachRow(rows, func() error {
		var (
			t                           Target
			status                      string
			n, sumMS, inc, rest, restMS int64
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &status, &n, &sumMS, &inc, &rest, &restMS); err != nil {
			return err
		}
		get(t).addStatus(status, n, sumMS, inc, rest, restMS)
		return nil
	})
	if err != nil {
		return err
	}
	rows, err = db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, bucket, CAST(SUM(n) AS BIGINT)
		FROM tb_stats_duration_hist`+where+" GROUP BY fraise, environment, bucket"), args...)
	if err != nil {
		return err
	}
	return eachRow(rows, func() error {
		var (
			t         Target
			bucket, n int64
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &bucket, &n); err != nil {
			return err
		}
		get(t).hist[bucket] += n
		return nil
	})
}

func (db *DB) statsScan(ctx context.Context, f StatsFilter, from, to int64, get func(Target) *statsAcc) error {
	conds := []string{"finished_at >= ?", "finished_at < ?"}
	args := []any{from, to}
	if f.Fraise != "" {
		conds = append(conds, "fraise = ?")
		args = append(args, f.Fraise)
	}
	if f.Environment != "" {
		conds = append(conds, "environment = ?")
		args = append(args, f.Environment)
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, status, duration_ms, incident, restore_ms
		FROM tb_deployment WHERE `+strings.Join(conds, " AND ")), args...)
	if err != nil {
		return err
	}
	return eachRow(rows, func() error {
		var (
			t             Target
			status        string
			duration, inc int64
			restore       sql.NullInt64
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &status, &duration, &inc, &restore); err != nil {
			return err
		}
		a := get(t)
		rest := int64(0)
		if restore.Valid {
			rest = 1
		}
		a.addStatus(status, 1, duration, inc, rest, restore.Int64)
		if measured(status) {
			a.hist[durationBucket(duration)]++
		}
		return nil
	})
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
