package store

import (
	"context"
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

// DailyStats returns, for each UTC day from the day of f.Since through
// today, the deployments that finished on it, by final status, with their
// median and p95 duration: for every known target matching f one row a
// day, days without a finish included, preceded, unless f names a fraise,
// by the rows of all of them together. Targets are sorted, days ascending.
// f.Since is required; its day counts whole.
//
// A day's figures are its tb_stats_cumulative row less the target's row
// before it, so DailyStats reads a target's rows of the window and one
// more, never tb_deployment; retention, which keeps the rollups, does not
// change them.
func (db *DB) DailyStats(ctx context.Context, f StatsFilter) ([]DayStats, error) {
	out, err := db.dailyStats(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("compute daily deployment stats: %w", err)
	}
	return out, nil
}

func (db *DB) dailyStats(ctx context.Context, f StatsFilter) ([]DayStats, error) {
	if f.Since.IsZero() {
		return nil, errors.New("the window needs a start (Since)")
	}
	first, last := dayOf(f.Since.UnixMilli()), dayOf(db.nowMS())
	n := int(max(0, last-first+1))
	// The newest row before the window, which each day of the window is
	// told from, of every known target matching f.
	prev := map[Target]*statsAcc{}
	if err := db.rollupsBefore(ctx, f, first, func(t Target, a *statsAcc) { prev[t] = a }); err != nil {
		return nil, err
	}
	days := map[Target][]*statsAcc{}
	for t := range prev {
		days[t] = make([]*statsAcc, n)
	}
	err := db.rollupsBetween(ctx, f, first, last, func(t Target, day int64, a *statsAcc) {
		p := prev[t]
		if p == nil {
			// A target recorded between the two reads.
			p = newStatsAcc()
			days[t] = make([]*statsAcc, n)
		}
		diff := newStatsAcc()
		diff.merge(a, 1)
		diff.merge(p, -1)
		days[t][day-first] = diff
		prev[t] = a
	})
	if err != nil {
		return nil, err
	}
	targets := make([]Target, 0, len(days))
	for t := range days {
		targets = append(targets, t)
	}
	sort.Slice(targets, func(i, j int) bool { return targetLess(targets[i], targets[j]) })
	var out []DayStats
	if f.Fraise == "" {
		all := make([]*statsAcc, n)
		for i := range all {
			all[i] = newStatsAcc()
			for _, t := range targets {
				if a := days[t][i]; a != nil {
					all[i].merge(a, 1)
				}
			}
		}
		out = appendDays(out, Target{}, first, all)
	}
	for _, t := range targets {
		out = appendDays(out, t, first, days[t])
	}
	return out, nil
}

// appendDays appends a target's rows, one per day from first; a nil
// figure is a day without a finish.
func appendDays(out []DayStats, t Target, first int64, days []*statsAcc) []DayStats {
	for i, a := range days {
		d := DayStats{Target: t, Day: fromMS((first + int64(i)) * dayMS), ByStatus: map[Status]int64{}}
		if a == nil {
			a = &statsAcc{}
		}
		for j, st := range TerminalStatuses() {
			d.ByStatus[st] = a.counts[j]
			d.Total += a.counts[j]
		}
		p := a.percentiles(50, 95)
		d.MedianDurationMS, d.P95DurationMS = p[0], p[1]
		out = append(out, d)
	}
	return out
}

// rollupsBetween calls fn with the tb_stats_cumulative rows of days first
// through last of every known target matching f, in ascending day order.
func (db *DB) rollupsBetween(ctx context.Context, f StatsFilter, first, last int64, fn func(Target, int64, *statsAcc)) error {
	where, args := targetWhere("t.", f.Fraise, f.Environment)
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT c.fraise, c.environment, c.day, `+prefixCols("c.", rollupCols)+`
		FROM tb_fraise_state t JOIN tb_stats_cumulative c
		  ON c.fraise = t.fraise AND c.environment = t.environment AND c.day >= ? AND c.day <= ?`+where+`
		ORDER BY c.day`), append([]any{first, last}, args...)...)
	if err != nil {
		return fmt.Errorf("read daily stats rollups: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			t   Target
			day int64
		)
		a, err := scanRollup(rows, &t.Fraise, &t.Environment, &day)
		if err != nil {
			return err
		}
		fn(t, day, a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read daily stats rollups: %w", err)
	}
	return nil
}
