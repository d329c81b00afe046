package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strconv"
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

// bucketIndex is the position in durationBounds of a duration's bucket.
func bucketIndex(ms int64) int {
	if ms <= 0 {
		return 0
	}
	i := sort.Search(len(durationBounds), func(i int) bool { return durationBounds[i] >= ms })
	return min(i, len(durationBounds)-1)
}

// durationBucket is the histogram bucket of a duration: its upper bound.
func durationBucket(ms int64) int64 { return durationBounds[bucketIndex(ms)] }

// hist is a duration histogram: hist[i] counts the durations in the bucket
// durationBounds[i]. Dense, because merging and walking a thousand slots is
// cheaper than a map of the few hundred in use.
type hist []int64

func newHist() hist { return make(hist, len(durationBounds)) }

// addEncoded adds sign times an encoded histogram to h.
func (h hist) addEncoded(buf []byte, sign int64) error {
	i, unknown := 0, int64(-1)
	err := decodeHist(buf, func(b, n int64) {
		// Buckets come in ascending order: the index only moves forward.
		for i < len(durationBounds) && durationBounds[i] < b {
			i++
		}
		if i == len(durationBounds) || durationBounds[i] != b {
			unknown = b
			return
		}
		h[i] += sign * n
	})
	if err == nil && unknown >= 0 {
		err = fmt.Errorf("duration histogram has an unknown bucket %d ms (rebuild the stats)", unknown)
	}
	return err
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

// encodeHist encodes a duration histogram (bucket upper bound in ms →
// count) the way tb_stats_cumulative stores it, as a JSON array of
// [bucket, count] pairs in ascending bucket order: [[63,1],[1040,2]]. A
// column rather than a row per bucket keeps a stats query to a few rows per
// target, and JSON keeps it readable in SQL: v_deployment_stats unpacks it
// with json_each.
func encodeHist(h hist) string {
	buf := make([]byte, 0, 512)
	buf = append(buf, '[')
	for i, n := range h {
		if n == 0 {
			continue
		}
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, durationBounds[i], 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, n, 10)
		buf = append(buf, ']')
	}
	return string(append(buf, ']'))
}

// decodeHist calls add for every (bucket, count) of an encoded histogram.
// It reads exactly what encodeHist writes, give or take whitespace (which
// PostgreSQL's JSON functions would add), without a general JSON decoder:
// a 30-day window decodes tens of thousands of pairs.
func decodeHist(buf []byte, add func(bucket, n int64)) error {
	d := histDecoder{buf: buf}
	if !d.expect('[') {
		return d.corrupt()
	}
	if d.expect(']') {
		return d.end()
	}
	for {
		if !d.expect('[') {
			return d.corrupt()
		}
		b, ok := d.num()
		if !ok || !d.expect(',') {
			return d.corrupt()
		}
		n, ok := d.num()
		if !ok || !d.expect(']') {
			return d.corrupt()
		}
		add(b, n)
		if d.expect(']') {
			return d.end()
		}
		if !d.expect(',') {
			return d.corrupt()
		}
	}
}

type histDecoder struct {
	buf []byte
	i   int
}

func (d *histDecoder) skipSpace() {
	for d.i < len(d.buf) {
		switch d.buf[d.i] {
		case ' ', '\n', '\t', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *histDecoder) expect(c byte) bool {
	d.skipSpace()
	if d.i < len(d.buf) && d.buf[d.i] == c {
		d.i++
		return true
	}
	return false
}

// num reads a non-negative integer of at most 18 digits, which cannot
// overflow.
func (d *histDecoder) num() (int64, bool) {
	d.skipSpace()
	start := d.i
	var v int64
	for d.i < len(d.buf) && d.buf[d.i] >= '0' && d.buf[d.i] <= '9' && d.i-start < 18 {
		v = v*10 + int64(d.buf[d.i]-'0')
		d.i++
	}
	if d.i < len(d.buf) && d.buf[d.i] >= '0' && d.buf[d.i] <= '9' {
		return 0, false
	}
	return v, d.i > start
}

func (d *histDecoder) end() error {
	d.skipSpace()
	if d.i != len(d.buf) {
		return d.corrupt()
	}
	return nil
}

func (d *histDecoder) corrupt() error {
	return fmt.Errorf("corrupt duration histogram %.80q", d.buf)
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
func statusIndex(status string) int {
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
func (a *statsAcc) add(status string, duration, finished int64, acc incidentAcc) {
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
	s := Stats{Target: t, Since: since, ByStatus: map[string]int64{}, PercentileRelError: PercentileRelError}
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
	return db.addManyToRollups(ctx, tx, t, d, acc, 1)
}

// addManyToRollups is addToRollups for n deployments alike (the requests a
// batch of webhooks superseded), at the cost of one.
func (db *DB) addManyToRollups(ctx context.Context, tx *sql.Tx, t Target, d finishedRow, acc incidentAcc, n int) error {
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
	for range n {
		cur.add(d.status, d.duration, d.finished, acc)
	}
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
		for range n {
			a.add(d.status, d.duration, d.finished, acc)
		}
		if _, err := tx.ExecContext(ctx, db.q(upsertRollup), append([]any{t.Fraise, t.Environment, day}, a.rollupArgs()...)...); err != nil {
			return fmt.Errorf("update stats of %s: %w", t, err)
		}
	}
	return nil
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
			status             string
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
