package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
)

// changes is what a deployment has changed so far: exactly what its
// compensation undoes. A step notes its change before the work that could
// leave it half made: undoing what did not happen is harmless, missing
// what did happen is not.
type changes struct {
	// release is the release directory the deployment made.
	release string
	// database takes the database back to the revision the release that
	// serves after the compensation needs, and says what it could not
	// undo; nil while the database has not moved.
	database func(ctx context.Context) error
	// current says current (or the inplace checkout) moved, or that the
	// deployment took over a switch a dead one left (adoptUnrecorded).
	current bool
	// units puts back the unit files a scheduled deployment replaced, and
	// their timers as they were.
	units func(ctx context.Context) error
}

// compensate undoes what a failed deployment changed (d.done) and names
// the honest terminal state: failed when nothing had changed for the
// service (or all was undone before the switch), rolled_back when the
// previous release serves again and is healthy, rollback_failed when the
// operator is needed. The database goes back first, so that the release
// that serves again finds its revision when it starts; then current, and
// only then the unit files, so that no timer fires into the failed
// release.
func (d *deployment) compensate(cause error) (store.Status, error) {
	// The compensation must run even when the deployment was cancelled or
	// timed out: that is when it matters most.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.rec.record), rollbackTimeout)
	defer cancel()

	var problems []string
	if d.done.database != nil {
		if err := d.done.database(ctx); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if err := d.undoBlueGreen(ctx); err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case !d.done.current:
		if d.done.release != "" {
			_ = removeRelease(d.appPath, d.done.release)
			_ = d.e.Store.SetReleaseState(ctx, d.t, d.done.release, store.ReleaseBad)
		}
		if len(problems) > 0 {
			return store.StatusRollbackFailed, fmt.Errorf("%w; undoing it failed: %s; the previous release %s still serves", cause, strings.Join(problems, "; "), orDash(d.prevRelease))
		}
		return store.StatusFailed, cause
	case d.prevRelease == "":
		status, err := d.takeBackFirst(ctx, cause, problems)
		return d.removeFirstUnits(ctx, status, err)
	}
	err := d.switchBack(ctx)
	_ = d.e.Store.SetReleaseState(ctx, d.t, d.release, store.ReleaseBad)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return store.StatusRollbackFailed, fmt.Errorf("%w; rollback to %s failed: %s; operator needed: see fraisier status %s %s",
			cause, d.prevRelease, strings.Join(problems, "; "), d.t.Fraise, d.t.Environment)
	}
	return store.StatusRolledBack, fmt.Errorf("%w; rolled back to %s", cause, d.prevRelease)
}

// takeBackFirst undoes the switch of a first deployment, which has nothing
// to return to: current is taken back out (an inplace checkout stays) and
// the units stop.
func (d *deployment) takeBackFirst(ctx context.Context, cause error, problems []string) (store.Status, error) {
	units := d.c.Units(d.env.Scope)
	err := d.rec.step(ctx, "rollback switch", 0, func(ctx context.Context, out io.Writer) (string, error) {
		if d.inplace() {
			// A first checkout has no earlier commit to return to;
			// its files stay, the units stop.
			if len(d.env.Services()) > 0 {
				return "no previous commit: checkout left in place, units stopped", units.Stop(ctx, d.env.Services()...)
			}
			return "no previous commit: checkout left in place", nil
		}
		if err := removeCurrent(d.appPath); err != nil {
			return "", err
		}
		if len(d.env.Services()) > 0 {
			return "no previous release: current removed, units stopped", units.Stop(ctx, d.env.Services()...)
		}
		return "no previous release: current removed", nil
	})
	_ = d.e.Store.SetReleaseState(ctx, d.t, d.release, store.ReleaseBad)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return store.StatusRollbackFailed, fmt.Errorf("%w; first deployment could not be taken back: %s", cause, strings.Join(problems, "; "))
	}
	what := "current removed"
	if d.inplace() {
		what = "checkout left in place"
	}
	if len(d.env.Services()) > 0 {
		what += ", units stopped"
	}
	return store.StatusFailed, fmt.Errorf("%w (first deployment: nothing to roll back to; %s)", cause, what)
}

// removeFirstUnits removes the units a failed first deployment installed:
// with current taken out, their timers would go on firing into a release
// that is gone.
func (d *deployment) removeFirstUnits(ctx context.Context, status store.Status, cause error) (store.Status, error) {
	if d.done.units == nil {
		return status, cause
	}
	err := d.rec.step(ctx, "rollback units", 0, func(ctx context.Context, out io.Writer) (string, error) {
		return "units of the first deployment removed", d.done.units(ctx)
	})
	if err != nil {
		return store.StatusRollbackFailed, fmt.Errorf("%w; %w; operator needed: see fraisier jobs %s", cause, err, d.t.Fraise)
	}
	return status, cause
}

// switchBack returns to the release (or commit) that served before: the
// switch, the unit files a scheduled deployment replaced, the restart and
// the health check.
func (d *deployment) switchBack(ctx context.Context) error {
	units := d.c.Units(d.env.Scope)
	err := d.rec.step(ctx, "rollback switch", 0, func(ctx context.Context, out io.Writer) (string, error) {
		if d.inplace() {
			return short(d.sha) + " → " + short(d.oldSHA), git.CheckoutInPlace(ctx, d.gitDir, d.appPath, d.env.GitRepo, d.oldSHA, git.Options{Output: out})
		}
		from := d.release
		if d.unrecorded != "" {
			// Current may still be the unverified release taken over.
			if cur, err := currentRelease(d.appPath); err == nil && cur != "" {
				from = cur
			}
		}
		return from + " → " + d.prevRelease, switchCurrent(d.appPath, d.prevRelease)
	})
	if err == nil && d.done.units != nil {
		err = d.rec.step(ctx, "rollback units", 0, func(ctx context.Context, out io.Writer) (string, error) {
			return "previous unit files and timers restored", d.done.units(ctx)
		})
	}
	if err == nil && len(d.env.Services()) > 0 {
		err = d.rec.step(ctx, "rollback restart", orDefault(d.env.Timeouts.Restart, defaultRestartTimeout), func(ctx context.Context, out io.Writer) (string, error) {
			return "", restartUnits(ctx, d.restarter(units, out), d.env.Services(), d.settle(), out)
		})
	}
	if err == nil && d.env.HealthCheck != nil {
		err = d.rec.step(ctx, "rollback health", 0, d.checkHealth)
	}
	return err
}
