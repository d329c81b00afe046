package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

// dailyReference counts the deployments matching f finished on each of n
// days from first, per target and all together (the zero Target), from
// the deployments themselves.
func dailyReference(ds []store.Deployment, f store.StatsFilter, first time.Time, n int) map[store.Target][]*expected {
	out := map[store.Target][]*expected{}
	slot := func(t store.Target, i int) *expected {
		if out[t] == nil {
			out[t] = make([]*expected, n)
		}
		if out[t][i] == nil {
			out[t][i] = &expected{byStatus: map[store.Status]int64{}}
		}
		return out[t][i]
	}
	for _, d := range ds {
		if d.FinishedAt == nil || (f.Fraise != "" && d.Fraise != f.Fraise) || (f.Environment != "" && d.Environment != f.Environment) {
			continue
		}
		i := int(d.FinishedAt.Sub(first) / (24 * time.Hour))
		if d.FinishedAt.Before(first) || i >= n {
			continue
		}
		for _, k := range []store.Target{{}, d.Target} {
			e := slot(k, i)
			e.total++
			e.byStatus[d.Status]++
			if d.Status != store.StatusSkipped && d.Status != store.StatusSuperseded {
				e.durations = append(e.durations, float64(d.DurationMS))
			}
		}
	}
	return out
}

// compareDays checks the rows of one target against the reference.
func compareDays(t *testing.T, label string, got []store.DayStats, want []*expected, first time.Time) {
	t.Helper()
	if want == nil {
		want = make([]*expected, len(got)) // no finish at all
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d days, want %d", label, len(got), len(want))
		return
	}
	for i, g := range got {
		e := want[i]
		if e == nil {
			e = &expected{byStatus: map[store.Status]int64{}}
		}
		day := first.AddDate(0, 0, i)
		l := label + " " + day.Format("2006-01-02")
		if !g.Day.Equal(day) {
			t.Errorf("%s: day %s", l, g.Day)
		}
		if g.Total != e.total {
			t.Errorf("%s: total %d, want %d", l, g.Total, e.total)
		}
		for _, st := range store.TerminalStatuses() {
			if n, ok := g.ByStatus[st]; !ok || n != e.byStatus[st] {
				t.Errorf("%s: %s %d (present %v), want %d", l, st, n, ok, e.byStatus[st])
			}
		}
		for _, p := range []struct {
			name string
			pct  int
			got  float64
		}{{"median", 50, g.MedianDurationMS}, {"p95", 95, g.P95DurationMS}} {
			want := nearestRank(e.durations, p.pct)
			if p.got < want || p.got > want*(1+store.PercentileRelError)+1e-9 {
				t.Errorf("%s: %s %v, want %v to +2%%", l, p.name, p.got, want)
			}
		}
	}
}

// testDailyStats: each day's figures, told from the rollups, agree with a
// count of the deployments finished that day, whole days, days without a
// finish as zeros; filters select as Stats' do; retention leaves the
// figures as they were.
func (s *suite) testDailyStats(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	base := epoch.Truncate(24 * time.Hour)
	ds := handMade(t, db, clk, base)
	clk.Set(base.Add(6*24*time.Hour + 5*time.Hour))

	// By hand: the first day holds api's 60 s and 120 s successes and its
	// 30 s failure, and web's 30 s success.
	day0 := must(db.DailyStats(ctx, store.DailyFilter{StatsFilter: store.StatsFilter{Fraise: "api", Since: base.Add(time.Hour)}, Durations: true}))(t)
	if len(day0) != 7 || day0[0].Target != api || day0[0].Total != 3 || day0[0].ByStatus[store.StatusFailed] != 1 ||
		day0[0].MedianDurationMS < 60000 || day0[0].MedianDurationMS > 61200 {
		t.Errorf("api's first day: %+v", day0)
	}

	for _, since := range []time.Time{base.Add(-48 * time.Hour), base.Add(24*time.Hour + 3*time.Hour), base.Add(6 * 24 * time.Hour)} {
		first := since.Truncate(24 * time.Hour)
		n := int(clk.Now().Truncate(24*time.Hour).Sub(first)/(24*time.Hour)) + 1
		for _, f := range []store.StatsFilter{{}, {Fraise: "api"}, {Environment: "staging"}, {Fraise: "nope"}} {
			f.Since = since
			label := fmt.Sprintf("since %s %+v", since.Format(time.RFC3339), f)
			ref := dailyReference(ds, f, first, n)
			var targets []store.Target
			if f.Fraise == "" {
				targets = append(targets, store.Target{})
			}
			for _, tg := range []store.Target{api, web} {
				if (f.Fraise == "" || f.Fraise == tg.Fraise) && (f.Environment == "" || f.Environment == tg.Environment) {
					targets = append(targets, tg)
				}
			}
			if len(targets) == 1 && targets[0] == (store.Target{}) {
				targets = nil // nothing matches: no rows at all
			}
			rows := must(db.DailyStats(ctx, store.DailyFilter{StatsFilter: f, Durations: true}))(t)
			if len(rows) != n*len(targets) {
				t.Fatalf("%s: %d rows, want %d days × %d targets", label, len(rows), n, len(targets))
			}
			// Without durations: the same counts, no median or p95.
			counts := must(db.DailyStats(ctx, store.DailyFilter{StatsFilter: f}))(t)
			for i := range counts {
				want := rows[i]
				want.MedianDurationMS, want.P95DurationMS = 0, 0
				if diff := cmp.Diff(want, counts[i]); diff != "" {
					t.Errorf("%s without durations (-want +got):\n%s", label, diff)
				}
			}
			for i, tg := range targets {
				part := rows[i*n : (i+1)*n]
				for _, r := range part {
					if r.Target != tg {
						t.Fatalf("%s: row of %s among %s's", label, r.Target, tg)
					}
				}
				compareDays(t, label+" "+tg.String(), part, ref[tg], first)
			}
		}
	}

	// Retention removes the deployments, not the rollups.
	clk.Set(base.Add(50 * 24 * time.Hour))
	f := store.DailyFilter{StatsFilter: store.StatsFilter{Since: base.Add(-24 * time.Hour)}, Durations: true}
	before := must(db.DailyStats(ctx, f))(t)
	must(store.Prune(ctx, db, testRetention, store.PruneOptions{}))(t)
	if left := must(db.Deployments(ctx, store.DeploymentFilter{Limit: 100}))(t); len(left) >= len(ds) {
		t.Fatalf("retention left all %d deployments", len(left))
	}
	if diff := cmp.Diff(before, must(db.DailyStats(ctx, f))(t)); diff != "" {
		t.Errorf("daily stats after pruning (-before +after):\n%s", diff)
	}
	if _, err := db.DailyStats(ctx, store.DailyFilter{}); err == nil {
		t.Error("DailyStats without a start: no error")
	}
}
