package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// DayStats is what finished on one UTC day: of one target, or of all the
// targets matching the filter together when Target is empty.
type DayStats struct {
	Target
	Day      time.Time        `json:"day"` // midnight UTC
	Total    int64            `json:"total"`
	ByStatus map[Status]int64 `json:"by_status"`
	// MedianDurationMS and P95DurationMS are over the day's deployments,
	// skipped and superseded left out (0 when none), and approximate as
	// Stats' are: see PercentileRelError.
	MedianDurationMS float64 `json:"median_duration_ms"`
	P95DurationMS    float64 `json:"p95_duration_ms"`
}

// DailyFilter selects what DailyStats reads.
type DailyFilter struct {
	StatsFilter
	// Durations asks for each day's median and p95 duration, which reads
	// each day's duration histogram: several times the work of the counts
	// alone when many targets are read. Without it they are 0.
	Durations bool
}

// DailyStats returns, for each UTC day from the day of f.Since through
// today, the deployments that finished on it, by final status, with
// their median and p95 duration if f asks: for every known target
// matching f one row a day, days without a finish included, preceded,
// unless f names a fraise, by the rows of all of them together. Targets
// are sorted, days ascending. f.Since is required; its day counts whole.
//
// A day's figures are its tb_stats_cumulative row less the target's row
// before it, so DailyStats reads a target's rows of the window and one
// more, never tb_deployment (without durations, only the index of their
// counts); retention, which keeps the rollups, does not change them.
func (db *DB) DailyStats(ctx context.Context, f DailyFilter) ([]DayStats, error) {
	out, err := db.dailyStats(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("compute daily deployment stats: %w", err)
	}
	return out, nil
}

func (db *DB) dailyStats(ctx context.Context, f DailyFilter) ([]DayStats, error) {
	if f.Since.IsZero() {
		return nil, errors.New("the window needs a start (Since)")
	}
	first, last := dayOf(f.Since.UnixMilli()), dayOf(db.nowMS())
	n := int(max(0, last-first+1))
	// Each target's newest row before the window, which its first day in
	// the window is told from, of every known target matching f.
	targets := map[Target]*dailyTarget{}
	err := db.rollupsBefore(ctx, f.StatsFilter, first, func(t Target, a *statsAcc) {
		dt := &dailyTarget{prev: cumRow{counts: a.counts}, days: make([]cumRow, n)}
		if f.Durations {
			dt.prev.hist = a.hist.sparse()
		}
		targets[t] = dt
	})
	if err != nil {
		return nil, err
	}
	err = db.rollupsBetween(ctx, f, first, last, func(t Target, day int64, counts [7]int64, hist []byte) error {
		dt := targets[t]
		if dt == nil {
			dt = &dailyTarget{days: make([]cumRow, n)} // recorded between the two reads
			targets[t] = dt
		}
		return dt.next(day-first, counts, hist)
	})
	if err != nil {
		return nil, err
	}
	order := make([]Target, 0, len(targets))
	for t := range targets {
		order = append(order, t)
	}
	sort.Slice(order, func(i, j int) bool { return targetLess(order[i], order[j]) })
	var out []DayStats
	if f.Fraise == "" && len(order) > 0 {
		out = appendAllDays(out, first, order, targets)
	}
	for _, t := range order {
		d := targets[t].days
		for i := range d {
			out = append(out, dayStats(t, first+int64(i), d[i].counts, d[i].hist.percentile))
		}
	}
	return out, nil
}

// dailyTarget is one target's days as DailyStats reads them.
type dailyTarget struct {
	// prev is the last row read; spare is a buffer for the next one,
	// which takes prev's place once its day is told.
	prev  cumRow
	spare sparseHist
	days  []cumRow
}

// next tells day i from the row read for it.
func (dt *dailyTarget) next(i int64, counts [7]int64, hist []byte) error {
	cur := cumRow{counts: counts, hist: dt.spare[:0]}
	err := decodeHist(hist, func(b, n int64) { cur.hist = append(cur.hist, histPair{b, n}) })
	if err != nil {
		return err
	}
	dt.days[i] = cur.minus(dt.prev)
	dt.spare, dt.prev = dt.prev.hist, cur
	return nil
}

// appendAllDays appends the rows of all targets together, one per day
// from first.
func appendAllDays(out []DayStats, first int64, order []Target, targets map[Target]*dailyTarget) []DayStats {
	h := newHist()
	for i := range targets[order[0]].days {
		clear(h)
		var counts [7]int64
		for _, t := range order {
			d := targets[t].days[i]
			for j, n := range d.counts {
				counts[j] += n
			}
			for _, e := range d.hist {
				h[bucketIndex(e.bucket)] += e.n
			}
		}
		pct := func(p int64) float64 { return (&statsAcc{hist: h}).percentiles(p)[0] }
		out = append(out, dayStats(Target{}, first+int64(i), counts, pct))
	}
	return out
}

func dayStats(t Target, day int64, counts [7]int64, percentile func(int64) float64) DayStats {
	d := DayStats{Target: t, Day: fromMS(day * dayMS), ByStatus: make(map[Status]int64, len(counts))}
	for j, st := range TerminalStatuses() {
		d.ByStatus[st] = counts[j]
		d.Total += counts[j]
	}
	if d.Total > 0 {
		d.MedianDurationMS, d.P95DurationMS = percentile(50), percentile(95)
	}
	return d
}

// dailyCols are the columns of tb_stats_cumulative DailyStats reads, but
// for the histogram.
const dailyCols = `c.succeeded, c.failed, c.rolled_back, c.rollback_failed, c.interrupted, c.skipped, c.superseded`

// rollupsBetween calls fn with the tb_stats_cumulative rows of days first
// through last of every known target matching f, each target's in
// ascending day order; hist, the encoded histogram, is valid during the
// call only, and empty unless f asks for durations.
func (db *DB) rollupsBetween(ctx context.Context, f DailyFilter, first, last int64, fn func(t Target, day int64, counts [7]int64, hist []byte) error) error {
	where, args := targetWhere("t.", f.Fraise, f.Environment)
	hist := "'[]'"
	if f.Durations {
		hist = "c.hist"
	}
	// In tb_fraise_state's order, so that each target's rows are a range
	// of the primary key and nothing is sorted.
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT c.fraise, c.environment, c.day, `+dailyCols+`, `+hist+`
		FROM tb_fraise_state t JOIN tb_stats_cumulative c
		  ON c.fraise = t.fraise AND c.environment = t.environment AND c.day >= ? AND c.day <= ?`+where+`
		ORDER BY t.fraise, t.environment, c.day`), append([]any{first, last}, args...)...)
	if err != nil {
		return fmt.Errorf("read daily stats rollups: %w", err)
	}
	var (
		t      Target
		day    int64
		counts [7]int64
		raw    sql.RawBytes
	)
	err = eachRow(rows, func() error {
		if err := rows.Scan(&t.Fraise, &t.Environment, &day, &counts[0], &counts[1], &counts[2], &counts[3],
			&counts[4], &counts[5], &counts[6], &raw); err != nil {
			return err
		}
		if err := fn(t, day, counts, raw); err != nil {
			return fmt.Errorf("stats of %s: %w", t, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read daily stats rollups: %w", err)
	}
	return nil
}

// cumRow is what DailyStats reads of a tb_stats_cumulative row, or the
// difference of two: counts by status, in TerminalStatuses order, and the
// duration histogram.
type cumRow struct {
	counts [7]int64
	hist   sparseHist
}

// minus is c less p, an earlier row of the same target.
func (c cumRow) minus(p cumRow) cumRow {
	d := cumRow{hist: c.hist.minus(p.hist)}
	for i := range c.counts {
		d.counts[i] = c.counts[i] - p.counts[i]
	}
	return d
}

// sparseHist is a duration histogram as its non-empty buckets: far fewer
// than durationBounds for a day's deployments.
type sparseHist []histPair

type histPair struct{ bucket, n int64 }

func (h hist) sparse() sparseHist {
	var s sparseHist
	for i, n := range h {
		if n != 0 {
			s = append(s, histPair{durationBounds[i], n})
		}
	}
	return s
}

// minus is h less p, both in ascending bucket order, p's counts no larger
// than h's.
func (h sparseHist) minus(p sparseHist) sparseHist {
	var out sparseHist
	j := 0
	for _, e := range h {
		for j < len(p) && p[j].bucket < e.bucket {
			j++
		}
		if j < len(p) && p[j].bucket == e.bucket {
			e.n -= p[j].n
		}
		if e.n != 0 {
			out = append(out, e)
		}
	}
	return out
}

// percentile is the nearest-rank percentile pct/100 of h, in ascending
// bucket order (a bucket may come more than once): the upper bound of the
// bucket holding the ceil(pct/100 * n)-th duration; 0 when h is empty.
func (h sparseHist) percentile(pct int64) float64 {
	var total int64
	for _, e := range h {
		total += e.n
	}
	if total == 0 {
		return 0
	}
	rank, cum := (pct*total+99)/100, int64(0)
	for _, e := range h {
		cum += e.n
		if cum >= rank {
			return float64(e.bucket)
		}
	}
	return float64(h[len(h)-1].bucket)
}
