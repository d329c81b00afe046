package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
)

// Plan is what a deployment would do, worked out without doing it.
type Plan struct {
	Target         store.Target `json:"-"`
	Ref            string       `json:"ref"`
	CurrentSHA     string       `json:"current_sha"`
	CurrentRelease string       `json:"current_release"`
	TargetSHA      string       `json:"target_sha"`
	UpToDate       bool         `json:"up_to_date"`
	Commits        []git.Commit `json:"commits"`
	// PendingMigrations is nil when the tool cannot tell (MigrationsNote says why).
	PendingMigrations []string `json:"pending_migrations"`
	MigrationsNote    string   `json:"migrations_note"`
	Install           []string `json:"install"`
	Units             []string `json:"units"`
	HealthCheck       string   `json:"health_check"`
	Steps             []string `json:"steps"`

	// SocketHandoff is, with restart: socket, each service's socket unit
	// as systemd has it, or what is missing.
	SocketHandoff string `json:"socket_handoff,omitempty"`
}

// Plan resolves req as Deploy would and reports what it would do. It
// changes nothing the service uses: it fetches into fraisier's own mirror
// (the git layer locks the mirror, so a running deployment is not disturbed)
// and exports the target commit into a scratch directory (removed before
// it returns) so that the migration tool can list pending migrations.
func (e *Engine) Plan(ctx context.Context, c Collaborators, req Request) (Plan, error) {
	env := req.Env
	fraise, envName := env.Target()
	if env.SharesCodeWith != "" || env.Fraise.Type == config.TypeScheduled || env.Layout == config.LayoutInplace {
		return Plan{}, fmt.Errorf("plan %s: --plan covers api and etl environments with their own releases only", env.ID())
	}
	p := Plan{Target: store.Target{Fraise: fraise, Environment: envName}, Ref: orBranch(req.Ref, env.Branch),
		Install: nil, Units: env.Services()}
	// The plan reads current and writes a scratch export under app_path,
	// and fetches into fraisier's own mirror: the same checks as a
	// deployment first.
	euid := os.Geteuid()
	if err := checkAppTree(env.AppPath, euid, env.Layout); err != nil {
		return p, fmt.Errorf("plan %s: %w", p.Target, err)
	}
	// The migration tool lists what is pending as the deployment would
	// run it, so an environment it could not run for is refused alike.
	as, err := resolveAccount(env, euid, os.Getegid())
	if err == nil {
		err = as.supports(env)
	}
	if err != nil {
		return p, fmt.Errorf("plan %s: %w", p.Target, err)
	}
	mirror, err := mirrorPath(env, euid, true)
	if err != nil {
		return p, fmt.Errorf("plan %s: %w", p.Target, err)
	}
	if p.CurrentRelease, err = currentRelease(env.AppPath); err != nil {
		return p, err
	}
	p.CurrentSHA = e.currentSHA(ctx, p.Target, p.CurrentRelease)
	src, err := c.OpenSource(ctx, mirror, env.GitRepo, io.Discard)
	if err != nil {
		return p, fmt.Errorf("plan %s: %w", p.Target, err)
	}
	if err := src.Fetch(ctx); err != nil {
		return p, fmt.Errorf("plan %s: %w", p.Target, err)
	}
	if pr := git.PullRequestRefOf(p.Ref); pr != "" {
		if err := src.FetchRef(ctx, pr); err != nil {
			return p, fmt.Errorf("plan %s: %w", p.Target, err)
		}
	}
	if p.TargetSHA, _, err = src.Resolve(ctx, p.Ref); err != nil {
		return p, fmt.Errorf("plan %s: %w", p.Target, err)
	}
	p.UpToDate = p.TargetSHA == p.CurrentSHA && !req.Force
	if p.Commits, err = src.Log(ctx, p.CurrentSHA, p.TargetSHA, 50); err != nil {
		// An old SHA the mirror lacks (history rewritten) is not fatal to a plan.
		p.Commits = nil
	}
	if env.Install != nil {
		p.Install = env.Install.Argv
	}
	if hc := env.HealthCheck; hc != nil {
		check := healthCheck(hc, env.Services())
		p.HealthCheck = fmt.Sprintf("%s %s (timeout %s, %d retries every %s, deadline %s)",
			check.Kind, firstNonEmpty(hc.URL, hc.TCP, strings.Join(hc.Command, " "), "units"), hc.Timeout, hc.Retries, hc.Interval, hc.Deadline)
	}
	if env.HandsOffSocket() {
		p.SocketHandoff = socketPlan(ctx, c, env)
	}
	if env.Database != nil {
		p.PendingMigrations, p.MigrationsNote = e.pendingMigrations(ctx, c, src, req, as, p.TargetSHA)
	}
	p.Steps = []string{"fetch", "release", "install", "migrate", "switch", "restart", "health"}
	if env.Fraise.Type == config.TypeETL {
		p.Steps = []string{"fetch", "release", "install", "verify scripts", "migrate", "switch", "restart", "health", "run after deploy"}
	}
	if env.IsBlueGreen() {
		p.Steps = planBlueGreen(p.Steps)
	}
	if p.UpToDate {
		p.Steps = []string{"fetch", "decide: skip if healthy (--force redeploys)"}
	}
	return p, nil
}

// pendingMigrations asks the migration tool, run as the account a
// deployment would run it as, what the commit sha would migrate. It
// exports sha into a scratch directory under app_path, reachable by the
// account, the export itself the account's as a release is.
func (e *Engine) pendingMigrations(ctx context.Context, c Collaborators, src Source, req Request, as account, sha string) ([]string, string) {
	scratch, err := os.MkdirTemp(req.Env.AppPath, ".plan-")
	if err != nil {
		return nil, "cannot tell: " + err.Error()
	}
	defer os.RemoveAll(scratch)
	// MkdirTemp makes it 0700: the account must be able to enter it.
	if err := os.Chmod(scratch, 0o755); err != nil {
		return nil, "cannot tell: " + err.Error()
	}
	dir := filepath.Join(scratch, "release")
	if err := src.Export(ctx, sha, dir); err != nil {
		return nil, "cannot tell: " + err.Error()
	}
	if err := as.chownTree(dir); err != nil {
		return nil, "cannot tell: " + err.Error()
	}
	m, err := c.NewMigrator(req.Env, dir, io.Discard)
	if err != nil {
		return nil, "cannot tell: " + err.Error()
	}
	pending, err := m.Pending(ctx)
	if err != nil {
		return nil, fmt.Sprintf("%s cannot tell: %v", req.Env.Database.Tool, err)
	}
	if pending == nil {
		pending = []string{}
	}
	return pending, ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
