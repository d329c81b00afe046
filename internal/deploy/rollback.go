package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// RollbackRequest asks to return an environment to an earlier release.
type RollbackRequest struct {
	Env *config.Environment
	// To names the release (its directory name) or commit (a SHA prefix of
	// at least 7) to return to; empty means the newest good release before
	// the current one.
	To    string
	Actor string
	Wait  time.Duration
	// NoMigrate switches the code only: the database stays at the revision
	// it is at, which the recorded step says.
	NoMigrate bool
	// Queued is the queued rollback this request runs (see Request.Queued).
	Queued int64
}

// Rollback switches current back to an earlier release that is still on
// disk: no fetch, no build. When the environment has a database, the
// release returned to recorded the migration revision it ran at, and the
// database is elsewhere now, the database is first migrated down to that
// revision ("migrate down") with the migrations of the release that is
// current now, since only it knows how to undo what it added. A database
// that cannot go down there (an irreversible migration) refuses the
// rollback before anything changes; --no-migrate
// (RollbackRequest.NoMigrate) or database.rollback_on_failure: false
// switch the code and leave the database, and a release with no recorded
// revision leaves it too; the step says which revision it stays at. Then
// switch, restart and health check. If the earlier release does not come
// up healthy, the release that was current is restored, its migrations
// are applied again first, and the result says so; if they cannot be,
// the rollback ends rollback_failed.
func (e *Engine) Rollback(ctx context.Context, c Collaborators, req RollbackRequest) (Result, error) {
	if req.Env.Layout == config.LayoutInplace {
		return Result{}, fmt.Errorf("rollback %s: the inplace layout keeps no releases: use fraisier deploy --ref <sha>", req.Env.ID())
	}
	requested := req.To
	if requested == "" {
		requested = "previous good release"
	}
	run := Request{Env: req.Env, Trigger: store.TriggerRollback, Actor: req.Actor, Wait: req.Wait, Force: true, Queued: req.Queued}
	res, err := e.execute(ctx, c, run, requested,
		func(d *deployment, ctx context.Context) (store.Status, error) { return d.runRollback(ctx, req) })
	e.drainOld(ctx, c, res)
	return e.followUp(ctx, c, run, res, err)
}

func (d *deployment) runRollback(ctx context.Context, req RollbackRequest) (store.Status, error) {
	var target store.Release
	if err := d.rec.step(ctx, "choose release", 0, func(ctx context.Context, _ io.Writer) (string, error) {
		var err error
		if target, err = d.rollbackTarget(ctx, req.To); err != nil {
			return "", err
		}
		d.sha = target.SHA
		if d.sha != "" {
			if err := d.recordTarget(); err != nil {
				return target.Name, err
			}
		}
		return target.Name, nil
	}); err != nil {
		return store.StatusFailed, err
	}
	d.release = target.Name
	d.releasePath = filepath.Join(d.appPath, releasesDir, target.Name)
	fmt.Fprintf(d.e.progress(), "  rolling back %s → %s (%s)\n", orDash(d.prevRelease), d.release, short(d.sha))
	env := d.env
	return d.apply(ctx, []plannedStep{
		{"migrate down", orDefault(env.Timeouts.Migrate, defaultMigrateTimeout), func(ctx context.Context, out io.Writer) (string, error) {
			return d.migrateDown(ctx, out, target, req.NoMigrate)
		}, skipUnless(env.Database != nil, "no database")},
		{"switch", 0, d.switchRelease, ""},
		{"restart", orDefault(env.Timeouts.Restart, defaultRestartTimeout), d.restart, skipUnless(len(env.Services()) > 0, "no systemd_service")},
		{"health", 0, d.checkHealth, skipUnless(env.HealthCheck != nil, "no health_check")},
	})
}

// migrateDown takes the database to the revision target recorded, before
// the switch, with the migrations of the release current now: the target
// release does not know the migrations added after it. It returns a
// skipStep when the database is to stay where it is, saying where that is.
func (d *deployment) migrateDown(ctx context.Context, out io.Writer, target store.Release, noMigrate bool) (string, error) {
	if d.prevRelease == "" {
		return "", skipStep("no current release whose migrations could be undone: database left as it is")
	}
	fromRelease := d.prevRelease
	m, err := d.c.NewMigrator(d.env, filepath.Join(d.appPath, releasesDir, fromRelease), out)
	// leftAt says why the database stays and at which revision. The
	// revision is read only to be told: a database that cannot be read
	// must not stop a rollback that was asked to leave it alone.
	leftAt := func(why string) error {
		if err != nil {
			return skipStep(fmt.Sprintf("%s: database left as it is (%v)", why, err))
		}
		rev, rerr := m.Current(ctx)
		if rerr != nil {
			return skipStep(fmt.Sprintf("%s: database left as it is (its revision could not be read: %v)", why, rerr))
		}
		return skipStep(fmt.Sprintf("%s: database left at revision %s", why, orDash(rev)))
	}
	switch {
	case noMigrate:
		return "", leftAt("--no-migrate")
	case d.env.Database.RollbackOnFailure != nil && !*d.env.Database.RollbackOnFailure:
		return "", leftAt("database.rollback_on_failure is false")
	case target.MigrationRevision == "":
		return "", leftAt(fmt.Sprintf("release %s has no recorded migration revision", target.Name))
	case err != nil:
		return "", err
	}
	want := target.MigrationRevision
	cur, err := m.Current(ctx)
	if err != nil {
		return "", fmt.Errorf("read current revision: %w", err)
	}
	if cur == want {
		return "already at " + orDash(want), nil
	}
	if err := m.CheckDown(ctx, want); err != nil {
		return "", fmt.Errorf("refused: the database cannot go down from %s to %s (release %s's revision) with release %s's migrations: %w; nothing was changed (fraisier rollback --no-migrate switches the code only and leaves the database at %s)",
			orDash(cur), orDash(want), target.Name, fromRelease, err, orDash(cur))
	}
	// From here the database may change, even if Down fails half way.
	d.done.database = d.upAgain(m, cur)
	if err := m.Down(ctx, want); err != nil {
		return "from " + orDash(cur), err
	}
	after, err := m.Current(ctx)
	if err != nil {
		return "from " + orDash(cur), fmt.Errorf("read revision after migrating down: %w", err)
	}
	if after != want {
		// Down to a revision the current release does not have below it
		// (a --to a newer release) leaves the database elsewhere.
		return orDash(cur) + " → " + orDash(after), fmt.Errorf("database at %s after migrating down, not at %s, the revision of release %s (to go forward, use fraisier deploy --ref)", orDash(after), orDash(want), target.Name)
	}
	return orDash(cur) + " → " + orDash(want) + " (down with release " + fromRelease + ")", nil
}

// upAgain is the undo of a rollback's migrate down from rev: up again, with
// the same release's migrations, since the release that was current needs
// them back before it serves again. rollback_on_failure does not apply: it
// let the migrate down run in the first place.
func (d *deployment) upAgain(m Migrator, rev string) func(context.Context) error {
	return func(ctx context.Context) error {
		err := d.rec.step(ctx, "rollback migrate", 0, func(ctx context.Context, out io.Writer) (string, error) {
			after, err := m.Up(ctx)
			if err != nil {
				return "up again to " + orDash(rev), err
			}
			if after != rev {
				return "up again: " + orDash(after), fmt.Errorf("database at %s after migrating up again, not at %s", orDash(after), orDash(rev))
			}
			return "up again to " + orDash(after), nil
		})
		if err != nil {
			return fmt.Errorf("the database is not back at %s, the revision release %s needs (%v)", orDash(rev), d.prevRelease, err)
		}
		return nil
	}
}

// rollbackTarget picks the release to return to: the one named, or the
// newest good one that is not current. It must still be on disk.
func (d *deployment) rollbackTarget(ctx context.Context, to string) (store.Release, error) {
	rels, err := d.e.Store.Releases(ctx, d.t.Fraise, d.t.Environment)
	if err != nil {
		return store.Release{}, err
	}
	onDisk := func(r store.Release) bool {
		_, err := os.Stat(filepath.Join(d.appPath, releasesDir, r.Name))
		return err == nil
	}
	// "Previous" means older than current, so that two rollbacks in a row
	// go further back instead of returning to the release just left.
	// Releases come newest first: the older ones follow current.
	olderThanCurrent := d.prevRelease == "" || !slices.ContainsFunc(rels, func(r store.Release) bool { return r.Name == d.prevRelease })
	var candidates []string
	for _, r := range rels { // newest first
		if r.Name == d.prevRelease {
			olderThanCurrent = true
			continue
		}
		if !onDisk(r) {
			continue
		}
		candidates = append(candidates, r.Name)
		switch {
		case to == "" && r.State == store.ReleaseGood && olderThanCurrent:
			return r, nil
		case to != "" && (r.Name == to || (len(to) >= 7 && strings.HasPrefix(r.SHA, strings.ToLower(to)))):
			if r.State == store.ReleaseBad {
				fmt.Fprintf(d.e.progress(), "  note: release %s failed before; rolling back to it as asked\n", r.Name)
			}
			return r, nil
		}
	}
	if to == "" {
		return store.Release{}, fmt.Errorf("no earlier good release on disk to roll back to (releases: %s)", orDash(strings.Join(candidates, ", ")))
	}
	return store.Release{}, fmt.Errorf("no release %q on disk other than the current one (releases: %s)", to, orDash(strings.Join(candidates, ", ")))
}
