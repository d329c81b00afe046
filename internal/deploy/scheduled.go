package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/systemd"
)

// JobUnits is what a scheduled deployment needs of systemd: the unit files
// of its jobs, their timers, and systemd's own reading of calendar
// expressions. *systemd.Manager is one.
type JobUnits interface {
	UnitDir() string
	ReadUnit(name string) ([]byte, error)
	WriteUnit(name string, content []byte) (changed bool, err error)
	RemoveUnit(name string) (removed bool, err error)
	DaemonReload(ctx context.Context) error
	Enable(ctx context.Context, now bool, units ...string) error
	Disable(ctx context.Context, now bool, units ...string) error
	Stop(ctx context.Context, units ...string) error
	IsActive(ctx context.Context, unit string) (bool, error)
	TimerStatus(ctx context.Context, timer string) (systemd.TimerStatus, error)
	ValidateCalendar(ctx context.Context, expr string) (normalized string, next time.Time, err error)
}

// JobStore is what a scheduled deployment records of its jobs. The
// engine's Store does not require it, so that stores without job states
// (test doubles) keep working; such a store just records none.
type JobStore interface {
	PutJobState(ctx context.Context, j store.JobState) error
	JobStates(ctx context.Context, fraise, env string) ([]store.JobState, error)
}

// scheduledRun is the state of one deployment of a scheduled fraise beyond
// what every deployment has.
type scheduledRun struct {
	d     *deployment
	units JobUnits
	jobs  []renderedJob
	// since is when this deployment enabled the timers: a run that failed
	// after it counts against the new release, one before it does not.
	since time.Time
}

// runScheduled is the flow of a scheduled fraise: the code is deployed as
// for an api (release, install, migrate, switch), and instead of a restart
// the jobs' service and timer units are rendered, installed and enabled.
// Units point at app_path/current, not at a release, so that going back is
// a switch; they are rendered and checked before the switch, and the unit
// files they replace are put back if anything after it fails.
func (d *deployment) runScheduled(ctx context.Context) (store.Status, error) {
	env := d.env
	if err := d.rec.step(ctx, "fetch", orDefault(env.Timeouts.Fetch, defaultFetchTimeout), d.fetch); err != nil {
		return store.StatusFailed, err
	}
	if stop, status, err := d.verifyPush(ctx, orDefault(env.Timeouts.Fetch, defaultFetchTimeout)); stop {
		return status, err
	}
	if d.c.JobUnits == nil {
		return store.StatusFailed, errors.New("deploy scheduled jobs: no systemd collaborator for job units")
	}
	units, err := d.c.JobUnits(env.Scope)
	if err != nil {
		return store.StatusFailed, fmt.Errorf("deploy scheduled jobs: %w", err)
	}
	s := &scheduledRun{d: d, units: units}

	if d.sha == d.oldSHA && !d.req.Force && d.prevRelease != "" {
		why := s.outOfDate(ctx)
		if why == "" {
			return store.StatusSkipped, d.rec.skip("decide", short(d.sha)+" is already current, its units installed and its timers active (--force redeploys)")
		}
		fmt.Fprintf(d.e.progress(), "  %s is current but %s: redeploying\n", short(d.sha), why)
	}

	unitTimeout := orDefault(env.Timeouts.Restart, defaultRestartTimeout)
	status, runErr := d.apply(ctx, []plannedStep{
		{"release", 0, d.makeRelease, ""},
		{"install", orDefault(installTimeout(env), defaultInstallTimeout), d.install, skipUnless(env.Install != nil, "no install command")},
		// Before migrate, like the etl's verify scripts: a job that cannot
		// run must fail the deployment before the database changes.
		{"render units", unitTimeout, s.render, ""},
		{"migrate", orDefault(env.Timeouts.Migrate, defaultMigrateTimeout), d.migrate, d.migrateSkip()},
		{"switch", 0, d.switchRelease, ""},
		{"install units", unitTimeout, s.install, ""},
		{"health", unitTimeout, s.health, ""},
	})
	if status == store.StatusSucceeded {
		s.recordJobStates()
	}
	return status, runErr
}

// outOfDate says why the current release's units need a deployment even
// though its commit is the one asked for, or "" when they need none: every
// rendered unit file is installed as rendered, no unit of a removed job is
// left, and every timer is active. Job results do not count: redeploying
// the same commit would not fix a job.
func (s *scheduledRun) outOfDate(ctx context.Context) string {
	current := filepath.Join(s.d.appPath, releasesDir, s.d.prevRelease)
	if _, err := s.renderFor(ctx, io.Discard, current); err != nil {
		return fmt.Sprintf("its units cannot be rendered (%v)", err)
	}
	for _, j := range s.jobs {
		for _, f := range []struct {
			name string
			text []byte
		}{{j.service, j.serviceText}, {j.timer, j.timerText}} {
			installed, err := s.units.ReadUnit(f.name)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return f.name + " is not installed"
			case err != nil:
				return err.Error()
			case !bytes.Equal(installed, f.text):
				return f.name + " differs from the configuration"
			}
		}
	}
	removed, err := s.removedUnits()
	if err != nil {
		return err.Error()
	}
	if len(removed) > 0 {
		return "units of removed jobs are installed (" + strings.Join(removed, ", ") + ")"
	}
	for _, j := range s.jobs {
		st, err := s.units.TimerStatus(ctx, j.timer)
		if p := timerProblem(st, err, time.Time{}); p != "" {
			return p
		}
	}
	return ""
}

// health checks that every timer is armed for a next run (or its job is
// running now) and that no job run started since the timers were enabled
// has failed. A timer that has not fired yet is healthy: most jobs run
// hours after a deployment.
func (s *scheduledRun) health(ctx context.Context, out io.Writer) (string, error) {
	var problems []string
	for i := range s.jobs {
		j := &s.jobs[i]
		st, err := s.units.TimerStatus(ctx, j.timer)
		j.status = st
		if p := timerProblem(st, err, s.since); p != "" {
			problems = append(problems, p)
			continue
		}
		next := "running now"
		if !st.NextElapse.IsZero() {
			next = "next " + st.NextElapse.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(out, "%s: %s\n", j.timer, next)
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	return fmt.Sprintf("%d %s scheduled", len(s.jobs), plural(len(s.jobs), "timer", "timers")), nil
}

// timerProblem says what is wrong with a timer, or "". A failed run counts
// only if it was triggered at or after failuresSince; the zero time
// ignores runs altogether.
func timerProblem(st systemd.TimerStatus, err error, failuresSince time.Time) string {
	switch {
	case err != nil:
		return err.Error()
	case !st.Active:
		return "timer " + st.Timer + " is not active"
	case st.NextElapse.IsZero() && !st.Running:
		return "timer " + st.Timer + " has no next elapse"
	case !failuresSince.IsZero() && st.LastResult != "" && st.LastResult != "success" && !st.LastTrigger.Before(failuresSince):
		return fmt.Sprintf("job %s failed (result %s, exit status %d)", st.Unit, st.LastResult, st.LastExitStatus)
	}
	return ""
}

// recordJobStates records the units each job now has, and that the jobs
// removed from the configuration have none (UnitHash ""): the store keeps
// their rows, with their last results, as history. Bookkeeping only: a
// failure is a warning, the deployment stands.
func (s *scheduledRun) recordJobStates() {
	d := s.d
	js, ok := d.e.Store.(JobStore)
	if !ok {
		return
	}
	configured := map[string]bool{}
	for _, j := range s.jobs {
		configured[j.job.Name] = true
		st := store.JobState{Target: d.t, Job: j.job.Name, UnitHash: j.hash(), LastResult: j.status.LastResult}
		if !j.status.LastTrigger.IsZero() {
			last := j.status.LastTrigger
			st.LastRunAt = &last
		}
		if err := js.PutJobState(d.rec.record, st); err != nil {
			fmt.Fprintf(d.e.progress(), "  warning: %v\n", err)
		}
	}
	prev, err := js.JobStates(d.rec.record, d.t.Fraise, d.t.Environment)
	if err != nil {
		fmt.Fprintf(d.e.progress(), "  warning: %v\n", err)
		return
	}
	for _, p := range prev {
		if p.Target == d.t && !configured[p.Job] && p.UnitHash != "" {
			p.UnitHash = ""
			if err := js.PutJobState(d.rec.record, p); err != nil {
				fmt.Fprintf(d.e.progress(), "  warning: %v\n", err)
			}
		}
	}
}
