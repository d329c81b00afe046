package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
)

// fetch updates fraisier's mirror of the repository and resolves the
// requested ref to the commit to deploy.
func (d *deployment) fetch(ctx context.Context, out io.Writer) (string, error) {
	var err error
	d.src, err = d.c.OpenSource(ctx, d.gitDir, d.env.GitRepo, out)
	if err != nil {
		return "", err
	}
	if err := d.src.Fetch(ctx); err != nil {
		return "", err
	}
	if d.fetchRef != "" {
		if err := d.src.FetchRef(ctx, d.fetchRef); err != nil {
			return "", err
		}
	}
	ref := orBranch(d.req.Ref, d.env.Branch)
	d.sha, _, err = d.src.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	if err := d.recordTarget(); err != nil {
		return ref + " → " + short(d.sha), err
	}
	return ref + " → " + short(d.sha), nil
}

// recordTarget writes the commit the deployment goes to as soon as it is
// known, so that history, show and logs name it while the deployment runs
// and after it dies, not only once it finishes.
func (d *deployment) recordTarget() error {
	return d.e.Store.SetDeploymentTarget(d.rec.record, d.id, d.sha)
}

func (d *deployment) makeRelease(ctx context.Context, out io.Writer) (string, error) {
	if err := checkShared(d.appPath, d.env.Shared); err != nil {
		return "", err
	}
	d.release = releaseName(d.e.now(), d.sha)
	d.releasePath = filepath.Join(d.appPath, releasesDir, d.release)
	if d.release == d.prevRelease || d.release == d.unrecorded {
		return "", fmt.Errorf("release %s already exists and is current: deployments of one commit less than a second apart", d.release)
	}
	leftover, err := prepareReleaseDir(d.appPath, d.release)
	if err != nil {
		return "", err
	}
	if leftover {
		// Not current (checked above), so a deployment that died or failed
		// left it half made: it is nobody's release.
		fmt.Fprintf(out, "removed leftover %s from an interrupted deployment\n", d.release)
	}
	if err := d.src.Export(ctx, d.sha, d.releasePath); err != nil {
		return "", err
	}
	d.done.release = d.release
	if err := linkShared(d.appPath, d.releasePath, d.env.Shared); err != nil {
		return "", err
	}
	if err := d.as.chownTree(d.releasePath); err != nil {
		return "", err
	}
	if _, err := d.e.Store.AddRelease(d.rec.record, store.Release{
		Target: d.t, Name: d.release, SHA: d.sha, Path: d.releasePath, State: store.ReleaseNew, DeploymentID: d.id,
	}); err != nil {
		return "", err
	}
	return d.release, nil
}

func (d *deployment) install(ctx context.Context, out io.Writer) (string, error) {
	return runCommandIn(ctx, d.env.Install, d.releasePath, d.as, out)
}

// checkout is the inplace switch: the exact commit, checked out in
// app_path (cloned the first time). Untracked files such as .env stay.
func (d *deployment) checkout(ctx context.Context, out io.Writer) (string, error) {
	if err := d.prepareBeforeSwitch(ctx, out); err != nil {
		return "", err
	}
	// The checkout is made beside app_path: the directories above it that
	// were missing when the deployment began are made, and checked again,
	// before git writes anything there (see prepareReleaseDir).
	if err := os.MkdirAll(filepath.Dir(d.appPath), 0o755); err != nil {
		return "", fmt.Errorf("create the directory of app_path: %w", err)
	}
	if err := checkAppTree(d.appPath, os.Geteuid(), "inplace"); err != nil {
		return "", err
	}
	d.done.current = true // see switchRelease
	return short(d.oldSHA) + " → " + short(d.sha), git.CheckoutInPlace(ctx, d.gitDir, d.appPath, d.env.GitRepo, d.sha, git.Options{Output: out})
}

func (d *deployment) switchRelease(ctx context.Context, out io.Writer) (string, error) {
	if err := d.prepareBeforeSwitch(ctx, out); err != nil {
		return "", err
	}
	// Set first: the rename may succeed and the directory sync after it
	// fail, and then current already names the new release. Switching
	// back when nothing moved is harmless; believing nothing moved when it
	// did would delete the release current points at.
	d.done.current = true
	if err := switchCurrent(d.appPath, d.release); err != nil {
		return "", err
	}
	return orDash(d.prevRelease) + " → " + d.release, nil
}

// finishReleases marks the new release current (the store demotes the
// previous one to good) and prunes old releases, sparing current and the
// last good one.
func (d *deployment) finishReleases(ctx context.Context) {
	if d.inplace() {
		return // one checkout, no releases to keep or prune
	}
	if err := d.e.Store.SetReleaseState(d.rec.record, d.t, d.release, store.ReleaseCurrent); err != nil {
		fmt.Fprintf(d.e.progress(), "  warning: record release %s as current: %v\n", d.release, err)
	}
	removed, err := pruneReleases(d.appPath, d.env.KeepReleases, d.release, d.prevRelease)
	if err != nil {
		fmt.Fprintf(d.e.progress(), "  warning: %v\n", err)
	}
	if len(removed) > 0 {
		fmt.Fprintf(d.e.progress(), "  pruned %s\n", strings.Join(removed, ", "))
	}
}
