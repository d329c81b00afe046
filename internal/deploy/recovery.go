package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/fraiseql/fraisier/internal/store"
)

// adoptUnrecorded applies the rule for a current link the record does not
// name (see doc.go): a deployment that died, or whose rollback failed,
// after its switch left current on a release that never passed its health
// check and was never recorded. That release is not trusted: the
// deployment starting now goes from the recorded release, as if the
// unfinished switch were its own, so it never skips, and if it fails its
// compensation switches back to the recorded release (restart, health
// check) instead of leaving the unverified one serving. d.prevRelease is
// what current points at when this is called.
func (d *deployment) adoptUnrecorded(ctx context.Context) error {
	states, err := d.e.Store.FraiseStates(ctx, d.t.Fraise, d.t.Environment)
	if err != nil {
		return fmt.Errorf("read the recorded state of %s: %w", d.t, err)
	}
	var rec store.FraiseState
	if len(states) == 1 {
		rec = states[0]
	}
	d.afterInterrupt = rec.Status == store.StatusInterrupted
	if d.inplace() || d.env.SharesCodeWith != "" || d.env.Fraise.Type == "scheduled" {
		// An inplace checkout has no link to compare; a shared etl
		// switches nothing; a scheduled set restores its units through
		// its own compensation, which this rule has not been proven with.
		return nil
	}
	disk := d.prevRelease
	if disk == "" || disk == rec.CurrentRelease {
		return nil
	}
	switch {
	case rec.CurrentRelease != "":
		if !isDir(filepath.Join(d.appPath, releasesDir, rec.CurrentRelease)) {
			fmt.Fprintf(d.e.progress(), "! current is %s, the record says %s, which is no longer on disk: deploying from %s\n", disk, rec.CurrentRelease, disk)
			return nil
		}
	case rec.CurrentSHA != "":
		// Recorded before fraisier named releases: nothing to compare.
		return nil
	default:
		// Never deployed successfully. Only a release fraisier made itself
		// is taken back out; a tree that was there before fraisier is
		// adopted as it is.
		_, err := d.e.Store.Release(ctx, d.t, disk)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("read release %s of %s: %w", disk, d.t, err)
		}
	}
	back := orDash(rec.CurrentRelease)
	if rec.CurrentRelease == "" {
		back = "no release (it would be taken out)"
	}
	fmt.Fprintf(d.e.progress(), "! current is %s but the record says %s: a deployment that did not finish switched it and its release was never verified; deploying from the recorded release, and back to %s if this deployment fails\n",
		disk, orDash(rec.CurrentRelease), back)
	d.unrecorded = disk
	d.prevRelease = rec.CurrentRelease
	// The unfinished switch is now this deployment's to undo.
	d.done.current = true
	return nil
}

// revisionToKeep is the migration revision a failure of this deployment
// must return the database to. Normally that is where the database is
// before migrating. After an interrupted deployment it is the revision the
// recorded release ran at: the dead deployment may have migrated without
// ever serving, and its migrations are not the recorded release's to keep.
// (Only after an interruption: fraisier rollback --no-migrate leaves the
// database ahead of the release on purpose.)
func (d *deployment) revisionToKeep(ctx context.Context, before string, out io.Writer) string {
	if !d.afterInterrupt || d.prevRelease == "" || d.inplace() {
		return before
	}
	r, err := d.e.Store.Release(ctx, d.t, d.prevRelease)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return before
	case err != nil:
		fmt.Fprintf(out, "warning: cannot read the revision release %s ran at (%v): keeping %s\n", d.prevRelease, err, orDash(before))
		return before
	}
	if r.MigrationRevision != "" && r.MigrationRevision != before {
		fmt.Fprintf(out, "database at %s, but release %s ran at %s: an interrupted deployment moved it; a failure returns it to %s\n",
			orDash(before), r.Name, r.MigrationRevision, r.MigrationRevision)
		return r.MigrationRevision
	}
	return before
}
