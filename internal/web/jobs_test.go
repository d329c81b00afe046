package web_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/web"
)

const jobsConfig = `
server:
  api_token: ` + readToken + `
fraises:
  cron:
    type: scheduled
    environments:
      production:
        branch: main
        git_repo: /nonexistent/origin.git
        app_path: /nonexistent/srv/cron
        scope: user
        jobs:
          - name: backup
            schedule: "0 3 * * *"
            command: [bin/backup]
          - name: tick
            on_calendar: "*:*:0/5"
            command: [bin/tick]
`

var cronProd = store.Target{Fraise: "cron", Environment: "production"}

// jobsStore is a fresh store where fraisier recorded a run of backup and
// of a job since removed from the configuration.
func jobsStore(t *testing.T) (*store.DB, time.Time) {
	t.Helper()
	var mu sync.Mutex
	now := time.Now().UTC()
	db := openAt(t, &now, &mu)
	ran := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	for _, j := range []store.JobState{
		{Target: cronProd, Job: "backup", UnitHash: "h1", LastResult: "exit-code", LastRunAt: &ran},
		{Target: cronProd, Job: "gone", UnitHash: "h2", LastResult: "success", LastRunAt: &ran},
	} {
		if err := db.PutJobState(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	return db, ran
}

// TestJobsPageWithoutSystemd: with no way to ask systemd, every
// configured job is listed with its schedule, fraisier's record of its
// last run, and "unknown" with why for the next run; a recorded job no
// longer configured is listed too.
func TestJobsPageWithoutSystemd(t *testing.T) {
	db, _ := jobsStore(t)
	status, body := dashboard(t, db, jobsConfig, nil)("/ui/jobs")
	if status != 200 {
		t.Fatalf("GET /ui/jobs: %d %s", status, body)
	}
	for _, w := range []string{
		`<tr id="job-cron-production-backup">`, "<code>*-*-* 03:00:00</code>", `<time datetime="2026-11-30T03:00:00Z">2026-11-30 03:00:00Z</time>`,
		`<span class="result s-failed">exit-code</span>`, "unknown: this server does not ask systemd",
		`<tr id="job-cron-production-tick">`, "<code>*:*:0/5</code>", "never",
		`<tr id="job-cron-production-gone">`, "unknown: no longer in the configuration",
	} {
		if !strings.Contains(body, w) {
			t.Errorf("the jobs page lacks %q", w)
		}
	}
	if strings.Count(body, `<td class="next" data-label="Next run">unknown</td>`) != 3 {
		t.Errorf("want the next run of all three jobs unknown:\n%s", body)
	}
}

// hangingSystemd stands for a manager that never answers, which a real
// one cannot be made to do on demand: it ignores its context and blocks
// until the test ends.
func hangingSystemd(t *testing.T, calls *atomic.Int32) web.AskTimers {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(ctx context.Context, cfg *config.Config) map[web.JobKey]web.TimerState {
		calls.Add(1)
		<-release
		return nil
	}
}

// TestJobsPageWhenSystemdHangs: the page does not wait for a manager
// that does not answer beyond the deadline, says so in each row, and
// for the cache's lifetime does not ask again.
func TestJobsPageWhenSystemdHangs(t *testing.T) {
	db, _ := jobsStore(t)
	var calls atomic.Int32
	timers := web.NewTimers(hangingSystemd(t, &calls))
	timers.Timeout, timers.TTL = 300*time.Millisecond, time.Minute
	get := dashboard(t, db, jobsConfig, timers)
	for i := range 2 {
		start := time.Now()
		status, body := get("/ui/jobs")
		took := time.Since(start)
		if status != 200 || !strings.Contains(body, "unknown: systemd did not answer within 300ms") {
			t.Errorf("read %d: %d, want the page saying systemd did not answer:\n%s", i, status, body)
		}
		if took > 3*time.Second {
			t.Errorf("read %d took %s with a deadline of 300ms", i, took)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("systemd asked %d times, want once: the failure is cached", n)
	}
}

// TestJobsPageShowsTimers: what the hook says of each timer shows in its
// row (an error for one job, escaped, leaves the others' rows whole);
// systemd's last run replaces fraisier's record.
func TestJobsPageShowsTimers(t *testing.T) {
	db, _ := jobsStore(t)
	next := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	last := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	// partlyFailingSystemd stands for a manager that answers for one
	// timer and fails for the other, which a real one does not on demand.
	partlyFailingSystemd := func(ctx context.Context, cfg *config.Config) map[web.JobKey]web.TimerState {
		return map[web.JobKey]web.TimerState{
			{Target: cronProd, Job: "backup"}: {Installed: true, Active: true, Next: next, Last: last, Result: "success"},
			{Target: cronProd, Job: "tick"}:   {Err: "show tick.timer: " + hostile},
		}
	}
	_, body := dashboard(t, db, jobsConfig, web.NewTimers(partlyFailingSystemd))("/ui/jobs")
	for _, w := range []string{
		`<td class="next" data-label="Next run"><time datetime="2026-12-08T03:00:00Z">2026-12-08 03:00:00Z</time></td>`,
		`<time datetime="2026-12-07T03:00:00Z">`, `<span class="result s-succeeded">success</span>`, `<td class="timer" data-label="Timer">active</td>`,
		"unknown: show tick.timer: " + escaped,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("the jobs page lacks %q", w)
		}
	}
	if strings.Contains(body, hostile) || strings.Contains(body, "exit-code") {
		t.Errorf("the page shows hostile text unescaped, or fraisier's older record over systemd's:\n%s", body)
	}
}

// TestTimersCache: an answer is reused for the same configuration until
// it is TTL old; a new configuration is asked about at once.
func TestTimersCache(t *testing.T) {
	var calls atomic.Int32
	timers := web.NewTimers(func(ctx context.Context, cfg *config.Config) map[web.JobKey]web.TimerState {
		calls.Add(1)
		return map[web.JobKey]web.TimerState{{Target: cronProd, Job: "backup"}: {Installed: true}}
	})
	timers.TTL = 200 * time.Millisecond
	a, b := &config.Config{}, &config.Config{}
	ctx := context.Background()
	for _, step := range []struct {
		cfg   *config.Config
		sleep time.Duration
		calls int32
	}{{a, 0, 1}, {a, 0, 1}, {b, 0, 2}, {b, 300 * time.Millisecond, 3}} {
		time.Sleep(step.sleep)
		m, err := timers.States(ctx, step.cfg)
		if err != nil || !m[web.JobKey{Target: cronProd, Job: "backup"}].Installed {
			t.Fatalf("States: %v, %v", m, err)
		}
		if n := calls.Load(); n != step.calls {
			t.Errorf("after %+v: asked %d times, want %d", step, n, step.calls)
		}
	}
	var none *web.Timers
	if _, err := none.States(ctx, a); err == nil || !strings.Contains(err.Error(), "does not ask systemd") {
		t.Errorf("no timers: %v", err)
	}
}
