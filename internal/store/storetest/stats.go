package storetest

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

// handMade records a small known history on two targets, one deployment
// every six hours from base, and returns the deployments as recorded.
func handMade(t *testing.T, db *store.DB, clk *clock, base time.Time) []store.Deployment {
	t.Helper()
	ctx := context.Background()
	type step struct {
		tg     store.Target
		status store.Status
		dur    time.Duration
	}
	plan := []step{
		{api, store.StatusSucceeded, 60 * time.Second},
		{api, store.StatusSucceeded, 120 * time.Second},
		{web, store.StatusSucceeded, 30 * time.Second},
		{api, store.StatusFailed, 30 * time.Second},
		{api, store.StatusRolledBack, 90 * time.Second}, // incident, restored in 90 s
		{web, store.StatusSucceeded, 45 * time.Second},
		{api, store.StatusSucceeded, 100 * time.Second},
		{api, store.StatusRollbackFailed, 200 * time.Second}, // incident opens
		{api, store.StatusFailed, 10 * time.Second},          // still broken
		{web, store.StatusRolledBack, 60 * time.Second},      // incident, restored in 60 s
		{api, store.StatusRollbackFailed, 20 * time.Second},  // part of the open incident
		{api, store.StatusSucceeded, 50 * time.Second},       // restores api
		{api, store.StatusSkipped, time.Second},
		{api, store.StatusSuperseded, 500 * time.Millisecond},
		{api, store.StatusInterrupted, 40 * time.Second},
	}
	var ids []int64
	for i, p := range plan {
		clk.Set(base.Add(time.Duration(i) * 6 * time.Hour))
		st := store.StatusRunning
		if p.status == store.StatusSuperseded {
			st = store.StatusQueued
		}
		id := must(db.StartDeployment(ctx, store.Deployment{Target: p.tg, Status: st, NewSHA: sha(i + 1), Actor: "alice"}))(t)
		clk.Advance(p.dur)
		if p.status == store.StatusInterrupted {
			check(t, db.MarkInterrupted(ctx, id, "gone"))
		} else {
			check(t, db.FinishDeployment(ctx, id, store.Finish{Status: p.status}))
		}
		ids = append(ids, id)
	}
	var out []store.Deployment
	for _, id := range ids {
		out = append(out, must(db.Deployment(ctx, id))(t))
	}
	return out
}

// expected is a brute-force Stats over recorded deployments: the
// definitions of DB.Stats applied row by row, with exact percentiles.
type expected struct {
	total, measured, sumMS      int64
	byStatus                    map[store.Status]int64
	durations                   []float64
	incidents, restored, restMS int64
	first                       time.Time
}

// reference computes per-target and overall figures for deployments
// finished at or after since. Incidents follow the documented rules, with
// the broken state tracked over the whole history.
func reference(ds []store.Deployment, since time.Time) map[store.Target]*expected {
	out := map[store.Target]*expected{{}: {byStatus: map[store.Status]int64{}}}
	brokenStart := map[store.Target]time.Time{}
	sorted := append([]store.Deployment(nil), ds...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].FinishedAt.Before(*sorted[j].FinishedAt) })
	for _, d := range sorted {
		if d.FinishedAt == nil {
			continue
		}
		var incident, restored, restore int64
		start, broken := brokenStart[d.Target]
		switch d.Status {
		case store.StatusRollbackFailed:
			if !broken {
				incident = 1
				brokenStart[d.Target] = d.StartedAt
			}
		case store.StatusRolledBack, store.StatusSucceeded:
			if broken {
				restored, restore = 1, d.FinishedAt.Sub(start).Milliseconds()
				delete(brokenStart, d.Target)
			} else if d.Status == store.StatusRolledBack {
				incident, restored, restore = 1, 1, d.DurationMS
			}
		}
		if d.FinishedAt.Before(since) {
			continue
		}
		for _, k := range []store.Target{{}, d.Target} {
			e := out[k]
			if e == nil {
				e = &expected{byStatus: map[store.Status]int64{}}
				out[k] = e
			}
			e.total++
			e.byStatus[d.Status]++
			if d.Status != store.StatusSkipped && d.Status != store.StatusSuperseded {
				e.measured++
				e.sumMS += d.DurationMS
				e.durations = append(e.durations, float64(d.DurationMS))
			}
			e.incidents += incident
			e.restored += restored
			e.restMS += restore
			if e.first.IsZero() || d.FinishedAt.Before(e.first) {
				e.first = *d.FinishedAt
			}
		}
	}
	return out
}

func nearestRank(xs []float64, pct int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := (pct*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

// compareStats checks got against the brute-force figures: counts, rates
// and means exactly, percentiles within the stated precision.
func compareStats(t *testing.T, label string, got store.Stats, e *expected, since *time.Time, now time.Time) {
	t.Helper()
	if e == nil {
		e = &expected{byStatus: map[store.Status]int64{}}
	}
	if got.Total != e.total {
		t.Errorf("%s: total %d, want %d", label, got.Total, e.total)
	}
	for _, st := range store.TerminalStatuses() {
		if got.ByStatus[st] != e.byStatus[st] {
			t.Errorf("%s: %s %d, want %d", label, st, got.ByStatus[st], e.byStatus[st])
		}
	}
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	near := func(name string, got, want, rel float64) {
		t.Helper()
		if math.Abs(got-want) > rel*math.Abs(want)+1e-9 {
			t.Errorf("%s: %s %v, want %v (±%g%%)", label, name, got, want, rel*100)
		}
	}
	ok := e.byStatus[store.StatusSucceeded]
	bad := e.byStatus[store.StatusRolledBack] + e.byStatus[store.StatusRollbackFailed]
	near("success rate", got.SuccessRate, ratio(ok, e.measured), 1e-12)
	near("change failure rate", got.ChangeFailureRate, ratio(bad, ok+bad), 1e-12)
	near("mean duration", got.MeanDurationMS, ratio(e.sumMS, e.measured), 1e-12)
	if got.Incidents != e.incidents {
		t.Errorf("%s: incidents %d, want %d", label, got.Incidents, e.incidents)
	}
	near("mean time to restore", got.MeanTimeToRestore, ratio(e.restMS, e.restored), 1e-12)
	for _, p := range []struct {
		name string
		pct  int
		got  float64
	}{{"median", 50, got.MedianDurationMS}, {"p95", 95, got.P95DurationMS}} {
		want := nearestRank(e.durations, p.pct)
		if p.got < want || p.got > want*(1+got.PercentileRelError)+1e-9 {
			t.Errorf("%s: %s %v, want %v to +%g%%", label, p.name, p.got, want, got.PercentileRelError*100)
		}
	}
	if got.PercentileRelError <= 0 || got.PercentileRelError > 0.02 {
		t.Errorf("%s: stated percentile precision %v", label, got.PercentileRelError)
	}
	start := e.first
	if since != nil {
		start = *since
	}
	var perDay float64
	if e.total > 0 {
		perDay = float64(e.total) / math.Max(1, now.Sub(start).Hours()/24)
	}
	near("deploys per day", got.DeploysPerDay, perDay, 1e-9)
}

func (s *suite) testStats(t *testing.T) {
	db, clk := s.fresh(t)
	// Anchored to the real clock, so that v_deployment_stats, which can
	// only use the database's own clock, agrees with Stats.
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(-5*24*time.Hour + time.Hour)
	ds := handMade(t, db, clk, base)
	now := statsHandChecked(t, db, clk)
	all := statsAgreeWithReference(t, db, ds, now)
	statsViewAgrees(t, db, all)
}

// statsHandChecked: the figures for api/production, 12 finished
// deployments, checked by hand. It returns the time they are read at.
func statsHandChecked(t *testing.T, db *store.DB, clk *clock) time.Time {
	ctx := context.Background()
	// Hand-checked figures for api/production: 12 finished deployments.
	now := time.Now().UTC().Truncate(time.Millisecond) // what the store keeps
	clk.Set(now)
	st := must(db.Stats(ctx, store.StatsFilter{Fraise: "api"}))(t)
	if len(st) != 1 || st[0].Target != api {
		t.Fatalf("stats for fraise api: %+v", st)
	}
	a := st[0]
	wantBy := map[store.Status]int64{
		store.StatusSucceeded: 4, store.StatusFailed: 2, store.StatusRolledBack: 1, store.StatusRollbackFailed: 2,
		store.StatusInterrupted: 1, store.StatusSkipped: 1, store.StatusSuperseded: 1,
	}
	if diff := cmp.Diff(wantBy, a.ByStatus); diff != "" || a.Total != 12 {
		t.Errorf("api by status, total %d (-want +got):\n%s", a.Total, diff)
	}
	// Measured: 60 120 30 90 100 200 10 20 50 40 seconds.
	if a.SuccessRate != 4.0/10 || a.ChangeFailureRate != 3.0/7 || a.MeanDurationMS != 72000 {
		t.Errorf("api success rate %v, change failure rate %v, mean %v; want 0.4, 3/7, 72000",
			a.SuccessRate, a.ChangeFailureRate, a.MeanDurationMS)
	}
	if a.MedianDurationMS < 50000 || a.MedianDurationMS > 51000 || a.P95DurationMS < 200000 || a.P95DurationMS > 204000 {
		t.Errorf("api median %v, p95 %v; want 50000 and 200000 within 2%%", a.MedianDurationMS, a.P95DurationMS)
	}
	// Incidents: the rollback (90 s), and the broken stretch from the start
	// of deployment 8 to the end of deployment 12: 4×6 h + 50 s.
	wantMTTR := (90000.0 + float64((24*time.Hour + 50*time.Second).Milliseconds())) / 2
	if a.Incidents != 2 || a.MeanTimeToRestore != wantMTTR {
		t.Errorf("api incidents %d, MTTR %v; want 2, %v", a.Incidents, a.MeanTimeToRestore, wantMTTR)
	}
	return now
}

// statsAgreeWithReference: every row, and a row filtered by environment,
// as computed from the deployments themselves.
func statsAgreeWithReference(t *testing.T, db *store.DB, ds []store.Deployment, now time.Time) []store.Stats {
	ctx := context.Background()
	all := must(db.Stats(ctx, store.StatsFilter{}))(t)
	ref := reference(ds, time.Time{})
	if len(all) != 3 || all[0].Target != (store.Target{}) || all[1].Target != api || all[2].Target != web {
		t.Fatalf("stats rows: %+v", all)
	}
	for _, row := range all {
		compareStats(t, "all time "+row.Target.String(), row, ref[row.Target], nil, now)
	}
	if row := must(db.Stats(ctx, store.StatsFilter{Environment: "staging"}))(t); len(row) != 2 || row[1].Target != web {
		t.Errorf("stats for staging: %+v", row)
	} else {
		compareStats(t, "staging", row[0], ref[web], nil, now)
	}
	if rows := must(db.Stats(ctx, store.StatsFilter{Fraise: "nope"}))(t); len(rows) != 0 {
		t.Errorf("stats for an unknown fraise: %+v", rows)
	}
	return all
}

// statsViewAgrees: v_deployment_stats gives what Stats gives.
func statsViewAgrees(t *testing.T, db *store.DB, all []store.Stats) {
	ctx := context.Background()
	// The view agrees with Stats.
	rows, err := db.SQL().QueryContext(ctx, `SELECT fraise, environment, finished, succeeded, failed, rolled_back,
		rollback_failed, interrupted, skipped, superseded, success_rate, mean_duration_ms, median_duration_ms,
		p95_duration_ms, deploys_per_day, change_failure_rate, incidents, mean_time_to_restore_ms
		FROM v_deployment_stats`)
	check(t, err)
	n := 0
	for rows.Next() {
		n++
		var (
			v      store.Stats
			counts [8]int64
		)
		v.ByStatus = map[store.Status]int64{}
		check(t, rows.Scan(&v.Fraise, &v.Environment, &counts[0], &counts[1], &counts[2], &counts[3], &counts[4],
			&counts[5], &counts[6], &counts[7], &v.SuccessRate, &v.MeanDurationMS, &v.MedianDurationMS,
			&v.P95DurationMS, &v.DeploysPerDay, &v.ChangeFailureRate, &v.Incidents, &v.MeanTimeToRestore))
		v.Total = counts[0]
		for i, st := range []store.Status{store.StatusSucceeded, store.StatusFailed, store.StatusRolledBack,
			store.StatusRollbackFailed, store.StatusInterrupted, store.StatusSkipped, store.StatusSuperseded} {
			v.ByStatus[st] = counts[i+1]
		}
		var want store.Stats
		for _, row := range all {
			if row.Target == v.Target {
				want = row
			}
		}
		// The view's clock is the database's; ours was read a moment ago.
		if math.Abs(v.DeploysPerDay-want.DeploysPerDay) > 1e-3*want.DeploysPerDay {
			t.Errorf("view %s: deploys per day %v, Stats says %v", v.Target, v.DeploysPerDay, want.DeploysPerDay)
		}
		v.DeploysPerDay, v.PercentileRelError, want.Since = want.DeploysPerDay, want.PercentileRelError, nil
		if diff := cmp.Diff(want, v, cmp.Comparer(func(a, b float64) bool {
			return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(a))
		})); diff != "" {
			t.Errorf("view disagrees with Stats for %s (-Stats +view):\n%s", v.Target, diff)
		}
	}
	check(t, rows.Err())
	if n != 2 {
		t.Errorf("view has %d rows, want 2", n)
	}
}

func (s *suite) testStatsSinceSplitsDay(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	base := epoch.Truncate(24 * time.Hour)
	ds := handMade(t, db, clk, base)
	now := base.Add(10 * 24 * time.Hour)
	clk.Set(now)
	for _, since := range []time.Time{
		base.Add(24*time.Hour + 3*time.Hour), // mid-day: a partial first day
		base.Add(24*time.Hour + 6*time.Hour + 30*time.Second),
		base.Add(48 * time.Hour), // on a day boundary
		base.Add(-time.Hour),     // before everything
		base.Add(9 * 24 * time.Hour),
	} {
		ref := reference(ds, since)
		for _, f := range []store.StatsFilter{{Since: since}, {Since: since, Fraise: "api"}, {Since: since, Environment: "staging"}} {
			rows := must(db.Stats(ctx, f))(t)
			for _, row := range rows {
				if row.Since == nil || !row.Since.Equal(since) {
					t.Errorf("since %s: row says since %v", since, row.Since)
				}
				want := ref[row.Target]
				if row.Target == (store.Target{}) && f.Environment == "staging" {
					want = ref[web]
				}
				compareStats(t, fmt.Sprintf("since %s %+v %s", since.Format(time.RFC3339), f, row.Target), row, want, &since, now)
			}
		}
	}
}

func (s *suite) testRebuildStats(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	handMade(t, db, clk, epoch.Truncate(24*time.Hour))
	must(db.StartDeployment(ctx, store.Deployment{Target: apiS}))(t) // left running
	clk.Advance(time.Hour)
	for i := range 40 {
		deploy(t, db, clk, []store.Target{api, web, apiS}[i%3], 100+i, time.Duration(i*7919)*time.Millisecond,
			store.TerminalStatuses()[i*5%7])
		clk.Advance(97 * time.Minute)
	}
	tables := append([]string{"tb_deployment"}, derivedTables...)
	incremental := snapshot(t, db, tables...)
	check(t, db.RebuildStats(ctx))
	if diff := cmp.Diff(incremental, snapshot(t, db, tables...)); diff != "" {
		t.Errorf("rebuilt rollups differ from incremental ones (-incremental +rebuilt):\n%s", diff)
	}
	// Repair: damaged rollups come back.
	for _, q := range []string{
		"DELETE FROM tb_stats_cumulative WHERE day % 2 = 0",
		"UPDATE tb_stats_cumulative SET succeeded = succeeded + 5, hist = '[]'",
		"DELETE FROM tb_fraise_state",
		"UPDATE tb_deployment SET incident = 0",
	} {
		_, err := db.SQL().ExecContext(ctx, q)
		check(t, err)
	}
	check(t, db.RebuildStats(ctx))
	if diff := cmp.Diff(incremental, snapshot(t, db, tables...)); diff != "" {
		t.Errorf("repaired rollups differ (-incremental +rebuilt):\n%s", diff)
	}

	// A clock set back two days: the finish lands before days already
	// rolled up, which must count it too.
	before := must(db.Stats(ctx, store.StatsFilter{Fraise: "web"}))(t)[0]
	clk.Advance(-48 * time.Hour)
	deploy(t, db, clk, web, 999, 3*time.Second, store.StatusFailed)
	after := must(db.Stats(ctx, store.StatsFilter{Fraise: "web"}))(t)[0]
	if after.Total != before.Total+1 || after.ByStatus[store.StatusFailed] != before.ByStatus[store.StatusFailed]+1 {
		t.Errorf("a finish on an earlier day: total %d -> %d", before.Total, after.Total)
	}
	since := must(db.Stats(ctx, store.StatsFilter{Fraise: "web", Since: clk.Now().Add(-time.Minute)}))(t)[0]
	if since.ByStatus[store.StatusFailed] < 1 {
		t.Errorf("a finish on an earlier day is missing from its window: %v", since.ByStatus)
	}
	rollups := snapshot(t, db, "tb_stats_cumulative")
	check(t, db.RebuildStats(ctx))
	if diff := cmp.Diff(rollups, snapshot(t, db, "tb_stats_cumulative")); diff != "" {
		t.Errorf("rollups after a finish on an earlier day differ from a rebuild (-incremental +rebuilt):\n%s", diff)
	}
}
