package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
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

// Every service fraisier renders for a job carries these variables. The
// job may read them; fraisier reads targetVar back to find the units it
// installed for a target (ownedUnits), whatever they are named.
const (
	targetVar = "FRAISIER_TARGET"
	jobVar    = "FRAISIER_JOB"
)

// jobAccuracy is the timers' AccuracySec. systemd's default of a minute
// lets it start a job up to a minute late to batch wake-ups, which saves
// laptop batteries and surprises anyone who wrote "0 3 * * *".
const jobAccuracy = time.Second

// renderedJob is one job's units as this deployment installs them.
type renderedJob struct {
	job            *config.Job
	service, timer string // unit file names
	serviceText    []byte
	timerText      []byte
	// status is what the health step saw of the timer.
	status systemd.TimerStatus
}

// hash identifies the installed units in the job's recorded state.
func (j renderedJob) hash() string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(j.service), j.serviceText, []byte(j.timer), j.timerText} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
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
func (d *deployment) runScheduled(ctx context.Context) (string, error) {
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
		{"migrate", orDefault(env.Timeouts.Migrate, defaultMigrateTimeout), d.migrate, skipUnless(env.Database != nil, "no database")},
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

// render renders the units of every job for the new release and checks
// what can be checked before the switch: calendar expressions (by
// systemd-analyze), and that every program exists and is executable.
func (s *scheduledRun) render(ctx context.Context, out io.Writer) (string, error) {
	return s.renderFor(ctx, out, s.d.releasePath)
}

func (s *scheduledRun) renderFor(ctx context.Context, out io.Writer, releaseDir string) (string, error) {
	env, t := s.d.env, s.d.t
	current := filepath.Join(s.d.appPath, currentLink)
	s.jobs = nil
	var problems []error
	for i := range env.Jobs {
		j := &env.Jobs[i]
		rj, err := renderJob(ctx, s.units, t, j, current, releaseDir, env)
		if err != nil {
			problems = append(problems, fmt.Errorf("job %s: %w", j.Name, err))
			continue
		}
		fmt.Fprintf(out, "%s: %s\n", rj.timer, strings.Join(rj.job.Command, " "))
		s.jobs = append(s.jobs, rj)
	}
	if err := errors.Join(problems...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", len(s.jobs), plural(len(s.jobs), "job", "jobs")), nil
}

// renderJob renders one job's service and timer. The service runs in the
// current symlink, so that the unit files stay valid across releases and
// a switch back is all a rollback of the code needs, and as the
// environment's user: and group:.
func renderJob(ctx context.Context, u JobUnits, t store.Target, j *config.Job, current, releaseDir string, env *config.Environment) (renderedJob, error) {
	argv, err := jobArgv(j.Command, current, releaseDir)
	if err != nil {
		return renderedJob{}, err
	}
	cal, err := j.Calendar()
	if err != nil {
		return renderedJob{}, err
	}
	if _, next, err := u.ValidateCalendar(ctx, cal); err != nil {
		return renderedJob{}, err
	} else if next.IsZero() {
		return renderedJob{}, fmt.Errorf("schedule %q never elapses again", cal)
	}
	desc := j.Description
	if desc == "" {
		desc = fmt.Sprintf("fraisier: job %s of %s", j.Name, t)
	}
	ju := systemd.JobUnit{
		Name:             strings.TrimSuffix(j.SystemdService, ".service"),
		Description:      desc,
		WorkingDirectory: current,
		ExecStart:        argv,
		Environment:      map[string]string{targetVar: t.String(), jobVar: j.Name},
		OnCalendar:       cal,
		Persistent:       true,
		AccuracySec:      jobAccuracy,
		TimeoutSec:       j.Timeout.D(),
		User:             env.User,
		Group:            env.Group,
	}
	rj := renderedJob{job: j, service: j.SystemdService, timer: j.SystemdTimer}
	if rj.serviceText, err = systemd.RenderService(ju); err != nil {
		return rj, err
	}
	if rj.timerText, err = systemd.RenderTimer(ju); err != nil {
		return rj, err
	}
	return rj, nil
}

// jobArgv makes a job's command absolute, because systemd runs ExecStart
// with its own search path: a program with a "/" is relative to the
// release (and runs from current), a bare name is looked up in fraisier's
// PATH now, at deploy time. The program must exist and be executable in
// the new release, so that a job that cannot start fails the deployment
// rather than its first run.
func jobArgv(cmd []string, current, releaseDir string) ([]string, error) {
	if len(cmd) == 0 {
		return nil, errors.New("no command")
	}
	argv := slices.Clone(cmd)
	prog := cmd[0]
	switch {
	case filepath.IsAbs(prog):
		if err := checkExecutable(prog); err != nil {
			return nil, err
		}
	case strings.Contains(prog, "/"):
		rel := filepath.Clean(prog)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("program %s: leaves the release (write an absolute path)", prog)
		}
		if err := checkExecutable(filepath.Join(releaseDir, rel)); err != nil {
			return nil, fmt.Errorf("program %s in %s: %w", prog, filepath.Base(releaseDir), err)
		}
		argv[0] = filepath.Join(current, rel)
	default:
		p, err := exec.LookPath(prog)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", prog, err)
		}
		if argv[0], err = filepath.Abs(p); err != nil {
			return nil, fmt.Errorf("program %s: %w", prog, err)
		}
	}
	return argv, nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s: not executable", path)
	}
	return nil
}

// unitFile is a unit file as it was before the deployment: content nil
// when there was none, and for a timer whether it was armed.
type unitFile struct {
	name    string
	content []byte
	active  bool
}

func isTimer(name string) bool { return strings.HasSuffix(name, ".timer") }

// timersFirst orders units to be stopped: a timer stopped after its
// service could start it again in between.
func timersFirst(names []string) []string {
	out := slices.Clone(names)
	slices.SortStableFunc(out, func(a, b string) int {
		switch {
		case isTimer(a) == isTimer(b):
			return 0
		case isTimer(a):
			return -1
		}
		return 1
	})
	return out
}

// install installs the rendered units, and removes those of jobs no longer
// configured, after remembering every file it is about to change so that
// the compensation can put them all back (restoreUnitFiles).
func (s *scheduledRun) install(ctx context.Context, out io.Writer) (string, error) {
	removed, err := s.removedUnits()
	if err != nil {
		return "", err
	}
	var names, timers []string
	for _, j := range s.jobs {
		names = append(names, j.service, j.timer)
		timers = append(timers, j.timer)
	}
	names = append(names, removed...)

	prev := make([]unitFile, 0, len(names))
	for _, n := range names {
		f := unitFile{name: n}
		f.content, err = s.units.ReadUnit(n)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f.content = nil
		case err != nil:
			return "", fmt.Errorf("remember %s: %w", n, err)
		case isTimer(n):
			if f.active, err = s.units.IsActive(ctx, n); err != nil {
				return "", fmt.Errorf("remember %s: %w", n, err)
			}
		}
		prev = append(prev, f)
	}
	units := s.units
	s.d.done.units = func(ctx context.Context) error { return restoreUnitFiles(ctx, units, prev) }

	changed := 0
	for _, j := range s.jobs {
		for _, f := range []struct {
			name string
			text []byte
		}{{j.service, j.serviceText}, {j.timer, j.timerText}} {
			c, err := s.units.WriteUnit(f.name, f.text)
			if err != nil {
				return "", err
			}
			if c {
				changed++
				fmt.Fprintf(out, "wrote %s\n", f.name)
			}
		}
	}
	// Stopped while their files still exist (systemd needs a unit's file
	// to disable it), timers before services so that none fires between.
	for _, n := range timersFirst(removed) {
		if err := stopUnit(ctx, s.units, n); err != nil {
			return "", fmt.Errorf("stop %s of a removed job: %w", n, err)
		}
	}
	for _, n := range removed {
		if _, err := s.units.RemoveUnit(n); err != nil {
			return "", err
		}
		fmt.Fprintf(out, "removed %s\n", n)
	}
	if err := s.units.DaemonReload(ctx); err != nil {
		return "", err
	}
	s.since = time.Now()
	if err := s.units.Enable(ctx, true, timers...); err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%d %s enabled, %d unit %s changed", len(timers), plural(len(timers), "timer", "timers"), changed, plural(changed, "file", "files"))
	if len(removed) > 0 {
		detail += ", removed " + strings.Join(removed, ", ")
	}
	return detail, nil
}

// stopUnit disables and stops a timer, or stops a service; a unit systemd
// has not loaded has nothing to stop.
func stopUnit(ctx context.Context, u JobUnits, name string) error {
	var err error
	if isTimer(name) {
		err = u.Disable(ctx, true, name)
	} else {
		err = u.Stop(ctx, name)
	}
	if errors.Is(err, systemd.ErrUnitNotFound) {
		return nil
	}
	return err
}

// restoreUnitFiles puts the unit files back as prev remembers them and the
// timers in the state they were in: those armed before are enabled and
// started again, the others (new ones included) disabled and stopped. It
// goes on after an error, so that one stubborn unit does not leave the
// others half restored, and reports them all.
func restoreUnitFiles(ctx context.Context, u JobUnits, prev []unitFile) error {
	var errs []error
	// Stopped first, while the files this deployment wrote still exist.
	var stop []string
	for _, f := range prev {
		if (isTimer(f.name) && !f.active) || f.content == nil {
			stop = append(stop, f.name)
		}
	}
	for _, n := range timersFirst(stop) {
		if err := stopUnit(ctx, u, n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range prev {
		var err error
		if f.content == nil {
			_, err = u.RemoveUnit(f.name)
		} else {
			_, err = u.WriteUnit(f.name, f.content)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := u.DaemonReload(ctx); err != nil {
		errs = append(errs, err)
	}
	var active []string
	for _, f := range prev {
		if f.active {
			active = append(active, f.name)
		}
	}
	if len(active) > 0 {
		if err := u.Enable(ctx, true, active...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removedUnits lists the installed units of this target that no
// configured job renders: those of jobs removed from the configuration.
func (s *scheduledRun) removedUnits() ([]string, error) {
	owned, err := ownedUnits(s.units, s.d.t)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, j := range s.jobs {
		keep[j.service], keep[j.timer] = true, true
	}
	var removed []string
	for _, n := range owned {
		if !keep[n] {
			removed = append(removed, n)
		}
	}
	return removed, nil
}

// ownedUnits finds the unit files fraisier installed for t in the unit
// directory: services it rendered (they start with its header) whose
// environment names t, and the rendered timers that trigger one of them.
//
// The unit files are the record, not names or the state database: the
// naming convention (fraisier-<fraise>-<env>-<job>) misses jobs given
// their own systemd_service, and a name prefix cannot tell shop/prod's
// units from shop/prod-eu's; the store's job states hold no unit names.
func ownedUnits(u JobUnits, t store.Target) ([]string, error) {
	entries, err := os.ReadDir(u.UnitDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find installed units of %s: %w", t, err)
	}
	header, err := renderedHeader()
	if err != nil {
		return nil, err
	}
	marker := targetVar + "=" + t.String()
	services := map[string]bool{}
	timers := map[string]string{} // timer → the service it triggers
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || systemd.ValidateUnitName(name) != nil {
			continue
		}
		if !strings.HasSuffix(name, ".service") && !isTimer(name) {
			continue
		}
		b, err := u.ReadUnit(name)
		if err != nil {
			return nil, fmt.Errorf("find installed units of %s: %w", t, err)
		}
		if !bytes.HasPrefix(b, header) {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if isTimer(name) {
				if svc, ok := strings.CutPrefix(line, "Unit="); ok {
					timers[name] = svc
				}
			} else if v, ok := strings.CutPrefix(line, "Environment="); ok && strings.Trim(v, `"`) == marker {
				services[name] = true
			}
		}
	}
	var owned []string
	for name := range services {
		owned = append(owned, name)
	}
	for name, svc := range timers {
		if services[svc] {
			owned = append(owned, name)
		}
	}
	slices.Sort(owned)
	return owned, nil
}

// renderedHeader is the first line of every unit fraisier renders, taken
// from the renderer rather than copied, so the two cannot drift apart.
func renderedHeader() ([]byte, error) {
	b, err := systemd.RenderService(systemd.JobUnit{Name: "fraisier-header", ExecStart: []string{"/bin/true"}})
	if err != nil {
		return nil, fmt.Errorf("render a unit header: %w", err)
	}
	return b[:bytes.IndexByte(b, '\n')+1], nil
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

// StopJobs disables and stops the timers of a scheduled environment. It
// holds the target's lock meanwhile, so that no deployment re-enables them
// halfway, and refuses (ErrLocked) while anyone holds it, even a holder
// that died: the next deployment recovers such a lock and records what
// the dead holder left. A job running now finishes its run. It returns the
// timers it stopped (those installed); the next deployment starts them
// again, and is not skipped as up to date while they are stopped.
func (e *Engine) StopJobs(ctx context.Context, c Collaborators, env *config.Environment) ([]string, error) {
	fraise, envName := env.Target()
	t := store.Target{Fraise: fraise, Environment: envName}
	if env.Fraise == nil || env.Fraise.Type != "scheduled" {
		return nil, fmt.Errorf("stop jobs of %s: not a scheduled fraise", t)
	}
	if c.JobUnits == nil {
		return nil, fmt.Errorf("stop jobs of %s: no systemd collaborator for job units", t)
	}
	u, err := c.JobUnits(env.Scope)
	if err != nil {
		return nil, fmt.Errorf("stop jobs of %s: %w", t, err)
	}
	owner := e.Owner.String()
	// A few systemctl calls: far shorter than the TTL, so no refresher.
	_, err = e.Store.AcquireLock(ctx, store.Lock{Target: t, Owner: owner, Host: e.Owner.Host, PID: e.Owner.PID, Reason: "jobs stop"},
		e.lockTTL(), func(store.Lock) bool { return false })
	if err != nil {
		return nil, fmt.Errorf("stop jobs of %s: %w", t, err)
	}
	defer func() { _ = e.Store.ReleaseLock(context.WithoutCancel(ctx), t, owner) }()
	var stopped []string
	for _, j := range env.Jobs {
		if _, err := u.ReadUnit(j.SystemdTimer); errors.Is(err, fs.ErrNotExist) {
			continue // never deployed
		} else if err != nil {
			return stopped, fmt.Errorf("stop jobs of %s: %w", t, err)
		}
		if err := stopUnit(ctx, u, j.SystemdTimer); err != nil {
			return stopped, fmt.Errorf("stop jobs of %s: %w", t, err)
		}
		stopped = append(stopped, j.SystemdTimer)
	}
	return stopped, nil
}
