package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

const dayMS = 24 * 60 * 60 * 1000

// measured reports whether a finished deployment's duration counts in the
// duration figures: skipped and superseded ones did no work.
func measured(status Status) bool { return status != StatusSkipped && status != StatusSuperseded }

func dayOf(ms int64) int64 {
	d := ms / dayMS
	if ms%dayMS < 0 {
		d--
	}
	return d
}

// statsAcc holds a target's (or all targets') figures over some set of
// finished deployments: a tb_stats_cumulative row, a window, a total.
type statsAcc struct {
	counts     [7]int64 // by status, in TerminalStatuses order
	measuredMS int64    // summed durations, skipped and superseded left out
	incidents  int64    // incidents opened
	restored   int64    // incidents restored
	restoreMS  int64    // their summed times to restore
	firstAt    int64    // earliest finish; 0 when none
	hist       hist
}

func newStatsAcc() *statsAcc { return &statsAcc{hist: newHist()} }

// statusIndex is status's position in TerminalStatuses, or -1.
func statusIndex(status Status) int {
	switch status {
	case StatusSucceeded:
		return 0
	case StatusFailed:
		return 1
	case StatusRolledBack:
		return 2
	case StatusRollbackFailed:
		return 3
	case StatusInterrupted:
		return 4
	case StatusSkipped:
		return 5
	case StatusSuperseded:
		return 6
	}
	return -1
}

// add counts one finished deployment.
func (a *statsAcc) add(status Status, duration, finished int64, acc incidentAcc) {
	if i := statusIndex(status); i >= 0 {
		a.counts[i]++
	}
	if measured(status) {
		a.measuredMS += duration
		a.hist[bucketIndex(duration)]++
	}
	a.incidents += int64(acc.incident)
	if acc.restoreMS.Valid {
		a.restored++
		a.restoreMS += acc.restoreMS.Int64
	}
	if a.firstAt == 0 || finished < a.firstAt {
		a.firstAt = finished
	}
}

// merge adds b's figures to a's; sign -1 subtracts them instead, which is
// how a window is cut out of two cumulative rows.
func (a *statsAcc) merge(b *statsAcc, sign int64) {
	for i, n := range b.counts {
		a.counts[i] += sign * n
	}
	a.measuredMS += sign * b.measuredMS
	a.incidents += sign * b.incidents
	a.restored += sign * b.restored
	a.restoreMS += sign * b.restoreMS
	for i, n := range b.hist {
		a.hist[i] += sign * n
	}
	if sign > 0 && b.firstAt != 0 && (a.firstAt == 0 || b.firstAt < a.firstAt) {
		a.firstAt = b.firstAt
	}
}

func (a *statsAcc) measured() int64 {
	return a.counts[0] + a.counts[1] + a.counts[2] + a.counts[3] + a.counts[4]
}

// percentiles returns the nearest-rank percentiles pcts/100 of the
// histogram: for each, the upper bound of the bucket holding the
// ceil(pct/100 * n)-th duration.
func (a *statsAcc) percentiles(pcts ...int64) []float64 {
	out := make([]float64, len(pcts))
	var total int64
	for _, n := range a.hist {
		total += n
	}
	if total == 0 {
		return out
	}
	var cum int64
	j := 0
	for i, n := range a.hist {
		cum += n
		for j < len(pcts) && cum >= (pcts[j]*total+99)/100 {
			out[j] = float64(durationBounds[i])
			j++
		}
	}
	return out
}

func ratio(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

func (a *statsAcc) stats(t Target, since *time.Time, nowMS int64) Stats {
	s := Stats{Target: t, Since: since, ByStatus: map[Status]int64{}, PercentileRelError: PercentileRelError}
	for i, st := range TerminalStatuses() {
		s.ByStatus[st] = a.counts[i]
		s.Total += a.counts[i]
	}
	ok := a.counts[0]
	failed := a.counts[2] + a.counts[3]
	s.SuccessRate = ratio(ok, a.measured())
	s.ChangeFailureRate = ratio(failed, ok+failed)
	s.MeanDurationMS = ratio(a.measuredMS, a.measured())
	p := a.percentiles(50, 95)
	s.MedianDurationMS, s.P95DurationMS = p[0], p[1]
	s.Incidents = a.incidents
	s.MeanTimeToRestore = ratio(a.restoreMS, a.restored)
	start := a.firstAt
	if since != nil {
		start = since.UnixMilli()
	}
	if s.Total > 0 {
		s.DeploysPerDay = float64(s.Total) / max(1, float64(nowMS-start)/dayMS)
	}
	return s
}

// rollupCols are tb_stats_cumulative's figures, in scanRollup's order.
const rollupCols = `succeeded, failed, rolled_back, rollback_failed, interrupted, skipped, superseded,
	measured_ms, incidents, restored, restore_ms, first_at, hist`

// scanRollup reads rollupCols, preceded by the extra destinations given.
func scanRollup(s scanner, extra ...any) (*statsAcc, error) {
	a := newStatsAcc()
	var hist []byte
	dest := append(extra, &a.counts[0], &a.counts[1], &a.counts[2], &a.counts[3], &a.counts[4], &a.counts[5],
		&a.counts[6], &a.measuredMS, &a.incidents, &a.restored, &a.restoreMS, &a.firstAt, &hist)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	if err := a.hist.addEncoded(hist, 1); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *statsAcc) rollupArgs() []any {
	return []any{a.counts[0], a.counts[1], a.counts[2], a.counts[3], a.counts[4], a.counts[5], a.counts[6],
		a.measuredMS, a.incidents, a.restored, a.restoreMS, a.firstAt, encodeHist(a.hist)}
}

const upsertRollup = `INSERT INTO tb_stats_cumulative (fraise, environment, day, ` + rollupCols + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (fraise, environment, day) DO UPDATE SET
	  succeeded = excluded.succeeded, failed = excluded.failed, rolled_back = excluded.rolled_back,
	  rollback_failed = excluded.rollback_failed, interrupted = excluded.interrupted,
	  skipped = excluded.skipped, superseded = excluded.superseded, measured_ms = excluded.measured_ms,
	  incidents = excluded.incidents, restored = excluded.restored, restore_ms = excluded.restore_ms,
	  first_at = excluded.first_at, hist = excluded.hist`

// addToRollups counts a finished deployment in tb_stats_cumulative: the
// row of its finish day, created from the target's previous row if need
// be, and any later rows (only when clocks went back). The caller holds the
// target's tb_fraise_state row lock, which makes the read-modify-write safe
// on PostgreSQL.
func (db *DB) addToRollups(ctx context.Context, tx *sql.Tx, t Target, d finishedRow, acc incidentAcc) error {
	day := dayOf(d.finished)
	var rowDay int64
	cur, err := scanRollup(tx.QueryRowContext(ctx, db.q(`SELECT day, `+rollupCols+` FROM tb_stats_cumulative
		WHERE fraise = ? AND environment = ? AND day <= ? ORDER BY day DESC LIMIT 1`+db.d.forUpdate),
		t.Fraise, t.Environment, day), &rowDay)
	switch {
	case notFound(err):
		cur = newStatsAcc()
	case err != nil:
		return fmt.Errorf("read stats of %s: %w", t, err)
	}
	cur.add(d.status, d.duration, d.finished, acc)
	if _, err := tx.ExecContext(ctx, db.q(upsertRollup), append([]any{t.Fraise, t.Environment, day}, cur.rollupArgs()...)...); err != nil {
		return fmt.Errorf("update stats of %s: %w", t, err)
	}

	rows, err := tx.QueryContext(ctx, db.q(`SELECT day, `+rollupCols+` FROM tb_stats_cumulative
		WHERE fraise = ? AND environment = ? AND day > ? ORDER BY day`+db.d.forUpdate), t.Fraise, t.Environment, day)
	if err != nil {
		return fmt.Errorf("read later stats of %s: %w", t, err)
	}
	later := map[int64]*statsAcc{}
	err = eachRow(rows, func() error {
		var day int64
		a, err := scanRollup(rows, &day)
		later[day] = a
		return err
	})
	if err != nil {
		return fmt.Errorf("read later stats of %s: %w", t, err)
	}
	for day, a := range later {
		a.add(d.status, d.duration, d.finished, acc)
		if _, err := tx.ExecContext(ctx, db.q(upsertRollup), append([]any{t.Fraise, t.Environment, day}, a.rollupArgs()...)...); err != nil {
			return fmt.Errorf("update stats of %s: %w", t, err)
		}
	}
	return nil
}
