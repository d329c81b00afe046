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
}

// Rollback switches current back to an earlier release that is still on
// disk: no fetch, no build, just switch, restart and health check. If the
// earlier release does not come up healthy, the release that was current
// is restored, and the result says so. The database is not migrated down:
// a rollback across migrations needs fraisier deploy --ref, which knows the
// down steps.
func (e *Engine) Rollback(ctx context.Context, c Collaborators, req RollbackRequest) (Result, error) {
	if req.Env.Layout == "inplace" {
		return Result{}, fmt.Errorf("rollback %s: the inplace layout keeps no releases: use fraisier deploy --ref <sha>", req.Env.ID())
	}
	requested := req.To
	if requested == "" {
		requested = "previous good release"
	}
	return e.execute(ctx, c, Request{Env: req.Env, Trigger: store.TriggerRollback, Actor: req.Actor, Wait: req.Wait, Force: true}, requested,
		func(d *deployment, ctx context.Context) (string, error) { return d.runRollback(ctx, req.To) })
}

func (d *deployment) runRollback(ctx context.Context, to string) (string, error) {
	var target store.Release
	if err := d.rec.step(ctx, "choose release", 0, func(ctx context.Context, _ io.Writer) (string, error) {
		var err error
		target, err = d.rollbackTarget(ctx, to)
		return target.Name, err
	}); err != nil {
		return store.StatusFailed, err
	}
	d.release, d.sha = target.Name, target.SHA
	d.releasePath = filepath.Join(d.appPath, releasesDir, target.Name)
	fmt.Fprintf(d.e.progress(), "  rolling back %s → %s (%s)\n", orDash(d.prevRelease), d.release, short(d.sha))
	env := d.env
	return d.apply(ctx, []plannedStep{
		{"switch", 0, d.switchRelease, ""},
		{"restart", orDefault(env.Timeouts.Restart, defaultRestartTimeout), d.restart, skipUnless(len(env.Services()) > 0, "no systemd_service")},
		{"health", 0, d.checkHealth, skipUnless(env.HealthCheck != nil, "no health_check")},
	})
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
