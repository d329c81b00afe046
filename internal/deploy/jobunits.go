package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/systemd"
)

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
