package store

import (
	"context"
	"database/sql"
	"fmt"
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

// encodeHist encodes a duration histogram (bucket upper bound in ms →
// count) the way tb_stats_duration_hist and tb_stats_total_hist store it, as
// a JSON array of [bucket, count] pairs in ascending bucket order:
// [[63,1],[1040,2]]. One row per target (and day) instead of one per bucket
// keeps a stats query to a few dozen rows, and JSON keeps the rollups
// readable in SQL: v_deployment_stats unpacks them with json_each.
func encodeHist(h map[int64]int64) string {
	bounds := make([]int64, 0, len(h))
	for b := range h {
		bounds = append(bounds, b)
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i] < bounds[j] })
	buf := make([]byte, 0, 2+12*len(bounds))
	buf = append(buf, '[')
	for i, b := range bounds {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, b, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, h[b], 10)
		buf = append(buf, ']')
	}
	return string(append(buf, ']'))
}

// decodeHist calls add for every (bucket, count) of an encoded histogram.
// It reads exactly what encodeHist writes, give or take whitespace (which
// PostgreSQL's JSON functions would add), without a general JSON decoder:
// a 30-day window decodes tens of thousands of pairs.
func decodeHist(buf []byte, add func(bucket, n int64)) error {
	i := 0
	skip := func() {
		for i < len(buf) && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r') {
			i++
		}
	}
	expect := func(c byte) bool {
		skip()
		if i < len(buf) && buf[i] == c {
			i++
			return true
		}
		return false
	}
	num := func() (int64, bool) {
		skip()
		start := i
		var v int64
		for i < len(buf) && buf[i] >= '0' && buf[i] <= '9' {
			v = v*10 + int64(buf[i]-'0')
			i++
		}
		return v, i > start && i-start < 19
	}
	bad := fmt.Errorf("corrupt duration histogram %q", buf)
	if !expect('[') {
		return bad
	}
	if expect(']') {
		return nil
	}
	for {
		if !expect('[') {
			return bad
		}
		b, ok1 := num()
		if !expect(',') {
			return bad
		}
		n, ok2 := num()
		if !ok1 || !ok2 || !expect(']') {
			return bad
		}
		add(b, n)
		if expect(']') {
			skip()
			if i != len(buf) {
				return bad
			}
			return nil
		}
		if !expect(',') {
			return bad
		}
	}
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
	upsertHist = `INSERT INTO tb_stats_duration_hist (day, fraise, environment, hist)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (day, fraise, environment) DO UPDATE SET hist = excluded.hist`
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
	upsertTotalHist = `INSERT INTO tb_stats_total_hist (fraise, environment, hist)
		VALUES (?, ?, ?)
		ON CONFLICT (fraise, environment) DO UPDATE SET hist = excluded.hist`
)

// addToRollups counts a finished deployment in the rollups. The caller holds
// the target's tb_fraise_state row lock, which is what makes the
// read-modify-write of the histograms safe on PostgreSQL.
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
	for _, h := range []struct {
		what, read, upsert string
		key                []any
	}{
		{"daily", "SELECT hist FROM tb_stats_duration_hist WHERE day = ? AND fraise = ? AND environment = ?",
			upsertHist, []any{day, t.Fraise, t.Environment}},
		{"total", "SELECT hist FROM tb_stats_total_hist WHERE fraise = ? AND environment = ?",
			upsertTotalHist, []any{t.Fraise, t.Environment}},
	} {
		var enc []byte
		err := tx.QueryRowContext(ctx, db.q(h.read+db.d.forUpdate), h.key...).Scan(&enc)
		if err != nil && !notFound(err) {
			return fmt.Errorf("read %s duration histogram: %w", h.what, err)
		}
		counts := map[int64]int64{}
		if enc != nil {
			if err := decodeHist(enc, func(b, n int64) { counts[b] += n }); err != nil {
				return fmt.Errorf("read %s duration histogram of %s: %w", h.what, t, err)
			}
		}
		counts[bucket]++
		if _, err := tx.ExecContext(ctx, db.q(h.upsert), append(h.key, encodeHist(counts))...); err != nil {
			return fmt.Errorf("update %s duration histogram: %w", h.what, err)
		}
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

// percentiles returns the nearest-rank percentiles pcts/100 of the
// histogram: for each, the upper bound of the bucket holding the
// ceil(pct/100 * n)-th duration.
func (a *statsAcc) percentiles(pcts ...int64) []float64 {
	out := make([]float64, len(pcts))
	var total int64
	buckets := make([]int64, 0, len(a.hist))
	for b, n := range a.hist {
		buckets = append(buckets, b)
		total += n
	}
	if total == 0 {
		return out
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i] < buckets[j] })
	var cum int64
	i := 0
	for _, b := range buckets {
		cum += a.hist[b]
		for i < len(pcts) && cum >= (pcts[i]*total+99)/100 {
			out[i] = float64(b)
			i++
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
	p := a.percentiles(50, 95)
	s.MedianDurationMS, s.P95DurationMS = p[0], p[1]
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

// statsSet holds the accumulators of every target seen. Rows are scanned
// as raw bytes and looked up without allocating: a stats query reads
// thousands of rows naming a few dozen targets.
type statsSet struct {
	m map[string]map[string]*statsAcc
}

func (s *statsSet) get(fraise, env []byte) *statsAcc {
	if a := s.m[string(fraise)][string(env)]; a != nil {
		return a
	}
	byEnv := s.m[string(fraise)]
	if byEnv == nil {
		byEnv = map[string]*statsAcc{}
		s.m[string(fraise)] = byEnv
	}
	a := newStatsAcc()
	byEnv[string(env)] = a
	return a
}

// canonStatus is status as one of the constants, so that raw bytes need no
// allocation; unknown statuses (none are stored) are copied.
func canonStatus(b []byte) string {
	for _, st := range TerminalStatuses() {
		if string(b) == st {
			return st
		}
	}
	return string(b)
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
	set := &statsSet{m: map[string]map[string]*statsAcc{}}
	var fraise, env sql.RawBytes

	where, args := targetWhere("", f.Fraise, f.Environment)
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT fraise, environment FROM tb_fraise_state"+where), args...)
	if err != nil {
		return nil, err
	}
	err = eachRow(rows, func() error {
		if err := rows.Scan(&fraise, &env); err != nil {
			return err
		}
		set.get(fraise, env)
		return nil
	})
	if err != nil {
		return nil, err
	}

	var since *time.Time
	if f.Since.IsZero() {
		if err := db.statsAllTime(ctx, f, set); err != nil {
			return nil, err
		}
	} else {
		s := f.Since.UTC()
		since = &s
		if err := db.statsSince(ctx, f, s.UnixMilli(), set); err != nil {
			return nil, err
		}
	}

	var targets []Target
	for fr, byEnv := range set.m {
		for e := range byEnv {
			targets = append(targets, Target{Fraise: fr, Environment: e})
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targetLess(targets[i], targets[j]) })
	var out []Stats
	if f.Fraise == "" {
		all := newStatsAcc()
		for _, t := range targets {
			all.merge(set.m[t.Fraise][t.Environment])
		}
		out = append(out, all.stats(Target{}, since, now))
	}
	for _, t := range targets {
		out = append(out, set.m[t.Fraise][t.Environment].stats(t, since, now))
	}
	return out, nil
}

func (db *DB) statsAllTime(ctx context.Context, f StatsFilter, set *statsSet) error {
	var fraise, env, status sql.RawBytes
	where, args := targetWhere("", f.Fraise, f.Environment)
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, status, n, sum_duration_ms,
		incidents, restored, sum_restore_ms, first_at FROM tb_stats_total`+where), args...)
	if err != nil {
		return err
	}
	err = eachRow(rows, func() error {
		var n, sumMS, inc, rest, restMS, firstAt int64
		if err := rows.Scan(&fraise, &env, &status, &n, &sumMS, &inc, &rest, &restMS, &firstAt); err != nil {
			return err
		}
		a := set.get(fraise, env)
		a.addStatus(canonStatus(status), n, sumMS, inc, rest, restMS)
		a.addFirst(firstAt)
		return nil
	})
	if err != nil {
		return err
	}
	rows, err = db.sql.QueryContext(ctx, db.q("SELECT fraise, environment, hist FROM tb_stats_total_hist"+where), args...)
	if err != nil {
		return err
	}
	var hist sql.RawBytes
	return eachRow(rows, func() error {
		if err := rows.Scan(&fraise, &env, &hist); err != nil {
			return err
		}
		h := set.get(fraise, env).hist
		return decodeHist(hist, func(b, n int64) { h[b] += n })
	})
}

// statsSince adds the deployments finished at or after since: whole days
// from the daily rollups, and the part of since's own day that falls in the
// window by an exact scan of tb_deployment over the finished_at index.
func (db *DB) statsSince(ctx context.Context, f StatsFilter, since int64, set *statsSet) error {
	firstFullDay := dayOf(since)
	if since%dayMS != 0 {
		firstFullDay++
		if err := db.statsScan(ctx, f, since, firstFullDay*dayMS, set); err != nil {
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
	var fraise, env, status, hist sql.RawBytes
	// Summed here rather than with GROUP BY: the rows come in key order,
	// day first, and grouping by target would make SQLite sort them.
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, status, n, sum_duration_ms,
		incidents, restored, sum_restore_ms FROM tb_stats_daily`+where), args...)
	if err != nil {
		return err
	}
	err = eachRow(rows, func() error {
		var n, sumMS, inc, rest, restMS int64
		if err := rows.Scan(&fraise, &env, &status, &n, &sumMS, &inc, &rest, &restMS); err != nil {
			return err
		}
		set.get(fraise, env).addStatus(canonStatus(status), n, sumMS, inc, rest, restMS)
		return nil
	})
	if err != nil {
		return err
	}
	rows, err = db.sql.QueryContext(ctx, db.q("SELECT fraise, environment, hist FROM tb_stats_duration_hist"+where), args...)
	if err != nil {
		return err
	}
	return eachRow(rows, func() error {
		if err := rows.Scan(&fraise, &env, &hist); err != nil {
			return err
		}
		h := set.get(fraise, env).hist
		return decodeHist(hist, func(b, n int64) { h[b] += n })
	})
}

func (db *DB) statsScan(ctx context.Context, f StatsFilter, from, to int64, set *statsSet) error {
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
	var fraise, env, status sql.RawBytes
	return eachRow(rows, func() error {
		var (
			duration, inc int64
			restore       sql.NullInt64
		)
		if err := rows.Scan(&fraise, &env, &status, &duration, &inc, &restore); err != nil {
			return err
		}
		a := set.get(fraise, env)
		st := canonStatus(status)
		rest := int64(0)
		if restore.Valid {
			rest = 1
		}
		a.addStatus(st, 1, duration, inc, rest, restore.Int64)
		if measured(st) {
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
