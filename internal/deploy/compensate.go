package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
)

// compensate undoes what a failed deployment changed and
// names the honest terminal state: failed when nothing had changed for the
// service (or all was undone before the switch), rolled_back when the
// previous release serves again and is healthy, rollback_failed when the
// operator is needed.
func (d *deployment) compensate(cause error) (string, error) {
	// The compensation must run even when the deployment was cancelled or
	// timed out: that is when it matters most.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.rec.record), rollbackTimeout)
	defer cancel()

	problems := d.undoMigration(ctx)
	if !d.switched {
		if d.releaseMade {
			_ = removeRelease(d.appPath, d.release)
			_ = d.e.Store.SetReleaseState(ctx, d.t, d.release, store.ReleaseBad)
		}
		if len(problems) > 0 {
			return store.StatusRollbackFailed, fmt.Errorf("%w; undoing it failed: %s; the previous release %s still serves", cause, strings.Join(problems, "; "), orDash(d.prevRelease))
		}
		return store.StatusFailed, cause
	}

	if d.prevRelease == "" {
		return d.takeBackFirst(ctx, cause, problems)
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

// undoMigration returns the database to the revision the release that
// serves after the compensation needs, and says what it could not undo.
func (d *deployment) undoMigration(ctx context.Context) []string {
	var problems []string
	if d.migrated && d.migrator != nil && d.migratedDown {
		// The release that was current needs its migrations back before
		// it serves again; rollback_on_failure does not apply, since it
		// let the migrate down run in the first place.
		if err := d.rec.step(ctx, "rollback migrate", 0, func(ctx context.Context, out io.Writer) (string, error) {
			after, err := d.migrator.Up(ctx)
			if err != nil {
				return "up again to " + orDash(d.revBefore), err
			}
			if after != d.revBefore {
				return "up again: " + orDash(after), fmt.Errorf("database at %s after migrating up again, not at %s", orDash(after), orDash(d.revBefore))
			}
			return "up again to " + orDash(after), nil
		}); err != nil {
			problems = append(problems, fmt.Sprintf("the database is not back at %s, the revision release %s needs (%v)", orDash(d.revBefore), d.prevRelease, err))
		}
	} else if d.migrated && d.migrator != nil {
		if d.env.Database.RollbackOnFailure != nil && !*d.env.Database.RollbackOnFailure {
			problems = append(problems, "database left at the new revision (rollback_on_failure is false)")
		} else if err := d.migrator.CheckDown(ctx, d.revBefore); err != nil {
			problems = append(problems, fmt.Sprintf("%s migrations cannot be undone automatically (%v): database is not back at %s", d.env.Database.Tool, err, orDash(d.revBefore)))
		} else if err := d.rec.step(ctx, "rollback migrate", 0, func(ctx context.Context, out io.Writer) (string, error) {
			return "down to " + orDash(d.revBefore), d.migrator.Down(ctx, d.revBefore)
		}); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// takeBackFirst undoes the switch of a first deployment, which has nothing
// to return to: current is taken back out (an inplace checkout stays) and
// the units stop.
func (d *deployment) takeBackFirst(ctx context.Context, cause error, problems []string) (string, error) {
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
	if err == nil && d.restoreUnits != nil {
		err = d.rec.step(ctx, "rollback units", 0, func(ctx context.Context, out io.Writer) (string, error) {
			return "previous unit files and timers restored", d.restoreUnits(ctx)
		})
	}
	if err == nil && len(d.env.Services()) > 0 {
		err = d.rec.step(ctx, "rollback restart", orDefault(d.env.Timeouts.Restart, defaultRestartTimeout), func(ctx context.Context, out io.Writer) (string, error) {
			return "", restartUnits(ctx, units, d.env.Services(), d.settle(), out)
		})
	}
	if err == nil && d.env.HealthCheck != nil {
		err = d.rec.step(ctx, "rollback health", 0, d.checkHealth)
	}
	return err
}
