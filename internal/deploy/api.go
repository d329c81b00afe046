package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
)

// Default step timeouts, used where the configuration sets none.
const (
	defaultFetchTimeout   = 5 * time.Minute
	defaultInstallTimeout = 15 * time.Minute
	defaultMigrateTimeout = 15 * time.Minute
	defaultRestartTimeout = 2 * time.Minute
	defaultDeployTimeout  = 45 * time.Minute
	// rollbackTimeout bounds the whole compensation, which runs even after
	// the deployment's own context was cancelled.
	rollbackTimeout = 5 * time.Minute
	// settle is how long a restarted unit must stay up before it counts as
	// started: a service that crashes right after exec must not pass. With
	// a health check the probe is the stronger witness (a crashed service
	// fails it, and the crash-at-start test proves it), so the unit only
	// has to be active; a settle there would only slow every deploy and
	// rollback.
	settle           = time.Second
	settleWithHealth = 0
)

func orDefault(d config.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return d.D()
	}
	return def
}

// deployment is the state of one run of the api flow: what it found, what
// it changed, so that a failure knows exactly what to undo.
type deployment struct {
	e   *Engine
	c   Collaborators
	req Request
	env *config.Environment
	t   store.Target
	rec *recorder
	id  int64

	src Source
	// fetchRef is a pull request head to fetch besides the branches and
	// tags (git.PullRequestRefOf): a fork's commits are reachable only
	// through it.
	fetchRef string
	// queued: the deployment was taken from the queue (a push, or a push
	// queued again), so verifyPush decides whether its commit may deploy;
	// pushedRef is the ref the push moved ("" when the request names
	// only a commit).
	queued    bool
	pushedRef string
	appPath   string
	// gitDir is fraisier's git directory for the environment, under its
	// state directory (mirrorPath); as is who its commands run as.
	gitDir      string
	as          account
	oldSHA      string
	prevRelease string // current before the switch; "" on a first deployment
	sha         string
	release     string
	releasePath string

	// unitsPrepared: prepareUnits reloaded and checked the units before
	// the switch (once per deployment).
	unitsPrepared bool
	// unitFilesInApp: a unit's file or drop-in lives under app_path (or
	// the layout is inplace), so the restart must ask systemd again.
	unitFilesInApp bool
	// unrecorded is the release current pointed at, unverified, when this
	// deployment took over an unfinished switch (adoptUnrecorded).
	unrecorded string
	// afterInterrupt: the target's last deployment was interrupted.
	afterInterrupt bool

	// done is what the deployment changed so far, for compensate.
	done changes
}

// Deploy takes req.Env to the requested commit, or leaves it as it was, and
// says which. The error is for what went wrong outside the deployment's
// own story (the lock was held, the state database failed); a deployment
// that failed, rolled back or could not roll back is a Result with its
// Status and Err.
func (e *Engine) Deploy(ctx context.Context, c Collaborators, req Request) (Result, error) {
	res, err := e.execute(ctx, c, req, orBranch(req.Ref, req.Env.Branch), (*deployment).run)
	return e.followUp(ctx, c, req, res, err)
}

// run is the api flow. It returns the terminal status and, for every status
// but succeeded and skipped, the error that decided it.
func (d *deployment) run(ctx context.Context) (string, error) {
	env := d.env
	switch {
	case env.Fraise.Type == "scheduled" && env.SharesCodeWith != "":
		// Its timers would have to follow another environment's releases;
		// until that exists, refuse rather than "succeed" installing nothing.
		return store.StatusFailed, d.rec.step(ctx, "check", 0, func(context.Context, io.Writer) (string, error) {
			return "", fmt.Errorf("scheduled environments with shares_code_with cannot be deployed yet")
		})
	case env.SharesCodeWith != "":
		return d.runShared(ctx)
	case env.Fraise.Type == "scheduled":
		return d.runScheduled(ctx)
	}
	if err := d.rec.step(ctx, "fetch", orDefault(env.Timeouts.Fetch, defaultFetchTimeout), d.fetch); err != nil {
		if d.done.current {
			// An unfinished switch taken over (adoptUnrecorded) is undone
			// even when this deployment gets no further.
			return d.compensate(err)
		}
		return store.StatusFailed, err
	}
	if stop, status, err := d.verifyPush(ctx, orDefault(env.Timeouts.Fetch, defaultFetchTimeout)); stop {
		return status, err
	}

	// An unverified current (d.unrecorded) is never "already current".
	if d.sha == d.oldSHA && !d.req.Force && d.prevRelease != "" && d.unrecorded == "" {
		if err := d.currentHealthy(ctx); err == nil {
			return store.StatusSkipped, d.rec.skip("decide", short(d.sha)+" is already current and healthy (--force redeploys)")
		}
		fmt.Fprintf(d.e.progress(), "  %s is current but not healthy: redeploying\n", short(d.sha))
	}

	if d.inplace() {
		d.releasePath = d.appPath
		return d.apply(ctx, []plannedStep{
			{"checkout", orDefault(env.Timeouts.Fetch, defaultFetchTimeout), d.checkout, ""},
			{"install", orDefault(installTimeout(env), defaultInstallTimeout), d.install, skipUnless(env.Install != nil, "no install command")},
			{"migrate", orDefault(env.Timeouts.Migrate, defaultMigrateTimeout), d.migrate, skipUnless(env.Database != nil, "no database")},
			{"restart", orDefault(env.Timeouts.Restart, defaultRestartTimeout), d.restart, skipUnless(len(env.Services()) > 0, "no systemd_service")},
			{"health", 0, d.checkHealth, skipUnless(env.HealthCheck != nil, "no health_check")},
		})
	}
	steps := []plannedStep{
		{"release", 0, d.makeRelease, ""},
		{"install", orDefault(installTimeout(env), defaultInstallTimeout), d.install, skipUnless(env.Install != nil, "no install command")},
	}
	if env.Fraise.Type == "etl" {
		steps = append(steps, plannedStep{"verify scripts", 0, d.verifyScripts, skipUnless(len(env.Scripts) > 0, "no scripts")})
	}
	steps = append(steps,
		plannedStep{"migrate", orDefault(env.Timeouts.Migrate, defaultMigrateTimeout), d.migrate, skipUnless(env.Database != nil, "no database")},
		plannedStep{"switch", 0, d.switchRelease, ""},
		plannedStep{"restart", orDefault(env.Timeouts.Restart, defaultRestartTimeout), d.restart, skipUnless(len(env.Services()) > 0, "no systemd_service")},
		plannedStep{"health", 0, d.checkHealth, skipUnless(env.HealthCheck != nil, "no health_check")},
	)
	if env.Fraise.Type == "etl" {
		steps = append(steps, plannedStep{"run after deploy", runAfterTimeout(env), d.runAfterDeploy, skipUnless(env.RunAfterDeploy != nil, "no run_after_deploy")})
	}
	return d.apply(ctx, steps)
}

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

// plannedStep is one step of a flow; a non-empty skip says why it does not
// apply to this environment.
type plannedStep struct {
	name    string
	timeout time.Duration
	fn      stepFunc
	skip    string
}

// apply runs the steps in order and compensates at the first failure.
func (d *deployment) apply(ctx context.Context, steps []plannedStep) (string, error) {
	for _, s := range steps {
		if s.skip != "" {
			if err := d.rec.skip(s.name, s.skip); err != nil {
				return d.compensate(err)
			}
			continue
		}
		if err := d.rec.step(ctx, s.name, s.timeout, s.fn); err != nil {
			return d.compensate(err)
		}
	}
	d.finishReleases(ctx)
	return store.StatusSucceeded, nil
}

func skipUnless(cond bool, why string) string {
	if cond {
		return ""
	}
	return why
}

func installTimeout(env *config.Environment) config.Duration {
	if env.Install != nil && env.Install.Timeout > 0 {
		return env.Install.Timeout
	}
	return env.Timeouts.Install
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

func envList(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// inplace says whether the environment is one checkout in app_path (the
// first fraisier's way) rather than releases and a current link.
func (d *deployment) inplace() bool { return d.env.Layout == "inplace" }

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

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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

// currentSHA is the commit the target serves: the recorded state when it
// agrees with the current symlink, else what the releases table says of
// the release current points at.
func (e *Engine) currentSHA(ctx context.Context, t store.Target, current string) string {
	if current == "" {
		return ""
	}
	states, err := e.Store.FraiseStates(ctx, t.Fraise, t.Environment)
	if err == nil && len(states) == 1 && states[0].CurrentRelease == current {
		return states[0].CurrentSHA
	}
	if r, err := e.Store.Release(ctx, t, current); err == nil {
		return r.SHA
	}
	return ""
}

func orBranch(ref, branch string) string {
	if ref != "" {
		return ref
	}
	return branch
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
