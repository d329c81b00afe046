package cli

import (
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// deployOptions are the flags of deploy.
type deployOptions struct {
	ref    string
	force  bool
	wait   time.Duration
	plan   bool
	asJSON bool
	// noWait: an environment with hosts queues its rollout and returns.
	noWait bool
}

// deployResultJSON is the stable --json shape of deploy.
type deployResultJSON struct {
	DeploymentID    int64        `json:"deployment_id"`
	Fraise          string       `json:"fraise"`
	Environment     string       `json:"environment"`
	Status          store.Status `json:"status"`
	OldSHA          string       `json:"old_sha"`
	NewSHA          string       `json:"new_sha"`
	Release         string       `json:"release"`
	PreviousRelease string       `json:"previous_release"`
	Error           string       `json:"error"`
	Interrupted     []int64      `json:"interrupted_deployments"`
}

func (a *app) deployCommand() *cobra.Command {
	var opts deployOptions
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "deploy <fraise> <environment>",
		Short: "Deploy a fraise environment to the head of its branch (or --ref), rolling back on failure",
		Long: `Deploy takes the environment from the release it runs to the requested commit:
fetch, release, install, migrate, switch, restart, health check. When a step
fails it undoes what was done and ends in exactly one state, printed and
recorded: succeeded, skipped (already current and healthy), failed (nothing
changed), rolled_back (the previous release serves again, healthy) or
rollback_failed (operator needed). Exit codes: 0 succeeded or skipped,
10 failed, 11 rolled_back, 12 rollback_failed, 13 another deployment holds
the target.

An environment with hosts: is deployed by a rollout across them, queued
in the shared PostgreSQL state for every host's node to run its step in
turn; deploy prints its id and follows it to its end (--no-wait returns at
once), exiting as above for the rollout's state. <environment>@<host>
deploys that one host, here, only on the node of that name.`,
		Args: rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if here, err := remote.local(); err != nil || !here {
				return remoteOr(err, func() error { return a.remoteDeploy(cmd.Context(), remote, args, opts) })
			}
			env, db, err := a.targetStore(cmd, args)
			if err != nil {
				return err
			}
			defer db.Close()
			if handled, err := a.deployHosts(cmd.Context(), env, db, opts); handled {
				return err
			}
			if opts.plan {
				return a.printPlan(cmd, db, env, opts)
			}
			return a.runEngine(env, opts.asJSON, func(e *deploy.Engine) (deploy.Result, error) {
				return e.Deploy(cmd.Context(), deploy.RealCollaborators(nil), deploy.Request{
					Env: env, Ref: opts.ref, Force: opts.force, Wait: opts.wait,
					Trigger: store.TriggerCLI, Actor: actor(a.env),
				})
			}, db)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ref, "ref", "", "branch, tag or commit to deploy (default: the head of the environment's branch)")
	f.BoolVar(&opts.force, "force", false, "deploy even when the target commit is already current and healthy")
	f.BoolVar(&opts.plan, "plan", false, "print what the deployment would do (target, commits, pending migrations, units, health check) and change nothing")
	f.BoolVar(&opts.plan, "dry-run", false, "the same as --plan")
	f.DurationVar(&opts.wait, "wait", 0, "wait this long for another deployment of the same target to finish (default: refuse at once)")
	f.BoolVar(&opts.noWait, "no-wait", false, "an environment with hosts: queue its rollout, print its id and return instead of following it")
	addJSONFlag(cmd, &opts.asJSON)
	addRemoteFlags(cmd, &remote)
	return cmd
}

// deployExit maps a deployment's terminal state to its exit code. The
// reason was printed with the steps, so the error carries no new text.
func deployExit(res deploy.Result) error {
	var code int
	switch res.Status {
	case store.StatusSucceeded, store.StatusSkipped:
		return nil
	case store.StatusFailed:
		code = ExitDeployFailed
	case store.StatusRolledBack:
		code = ExitRolledBack
	case store.StatusRollbackFailed:
		code = ExitRollbackFailed
	default:
		// A status this command does not know is no success.
		code = ExitError
	}
	return &silentError{withCode(code, fmt.Errorf("deployment %d %s: %v", res.DeploymentID, res.Status, res.Err))}
}

// actor names who ran the command, for the record.
func actor(env Env) string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return env.get("USER")
}

// runEngine runs one deployment or rollback as the CLI does both: progress
// lines to stdout (stderr with --json), the result as JSON when asked, and
// the terminal state as the exit code.
func (a *app) runEngine(env *config.Environment, asJSON bool, run func(*deploy.Engine) (deploy.Result, error), db *store.DB) error {
	var cfg *config.Config
	if env != nil && env.Fraise != nil {
		cfg = env.Fraise.Config
	}
	// As this node: a deployment the command line runs is recovered by
	// this node's serve after a crash, like its own.
	node, err := a.nodeName(cfg, "")
	if err != nil {
		return err
	}
	owner, err := nodeOwner(node)
	if err != nil {
		return err
	}
	// FRAISIER_FAULT is read here and only here, once: the crash tests set
	// it; a malformed value must not be taken for no fault. A binary built
	// without fault injection makes no fault of any value.
	fault, err := deploy.ParseFault(a.env.get(deploy.FaultEnv))
	if err != nil {
		return withCode(ExitUsage, err)
	}
	progress, closeProgress := a.progress(env, asJSON)
	res, err := run(&deploy.Engine{Store: db, Progress: progress, Owner: owner, Fault: fault})
	closeProgress()
	if errors.Is(err, deploy.ErrLocked) {
		return withCode(ExitLocked, fmt.Errorf("%w (use --wait to queue behind it)", err))
	}
	if err != nil {
		return err
	}
	if asJSON {
		fraise, envName := env.Target()
		out := deployResultJSON{DeploymentID: res.DeploymentID, Fraise: fraise, Environment: envName, Status: res.Status,
			OldSHA: res.OldSHA, NewSHA: res.NewSHA, Release: res.Release, PreviousRelease: res.PreviousRelease,
			Interrupted: append([]int64{}, res.Interrupted...)}
		if res.Err != nil {
			out.Error = res.Err.Error()
		}
		if err := writeJSON(a.streams.Out, out); err != nil {
			return err
		}
	}
	return deployExit(res)
}

// progress is where a deployment's progress lines go: stdout, or stderr
// when stdout carries JSON. They hold step details and errors, which can
// quote what deployed code printed, so the configuration's secrets are
// scrubbed from them and, on a terminal, control characters filtered. The
// returned function writes what the filters held back.
func (a *app) progress(env *config.Environment, asJSON bool) (io.Writer, func()) {
	w, terminal := a.streams.Out, a.streams.OutIsTerminal
	if asJSON {
		w, terminal = a.streams.Err, a.streams.ErrIsTerminal
	}
	var tw *terminalWriter
	if terminal {
		tw = newTerminalWriter(w)
		w = tw
	}
	var secrets []string
	if env != nil && env.Fraise != nil && env.Fraise.Config != nil {
		secrets = env.Fraise.Config.SecretValues()
	}
	sw := deploy.NewScrubber(secrets).Writer(w)
	return sw, func() {
		sw.Close()
		if tw != nil {
			tw.Close()
		}
	}
}

func (a *app) printPlan(cmd *cobra.Command, db *store.DB, env *config.Environment, opts deployOptions) error {
	e := &deploy.Engine{Store: db}
	p, err := e.Plan(cmd.Context(), deploy.RealCollaborators(nil), deploy.Request{Env: env, Ref: opts.ref, Force: opts.force})
	if err != nil {
		return err
	}
	if opts.asJSON {
		return writeJSON(a.streams.Out, p)
	}
	// Commits come from the repository, migration names and notes from the
	// tool's output: a.shown keeps them from acting on a terminal.
	w, sh := a.streams.Out, a.shown
	fmt.Fprintf(w, "plan for %s (nothing will be changed)\n", env.ID())
	t := newTable(w, "", "")
	t.row("target", fmt.Sprintf("%s → %s", sh(p.Ref), sh(p.TargetSHA)))
	t.row("current", fmt.Sprintf("%s (release %s)", orDash(sh(p.CurrentSHA)), orDash(sh(p.CurrentRelease))))
	if p.UpToDate {
		t.row("decision", "already current: skipped if healthy (--force redeploys)")
	}
	t.row("install", orDash(sh(strings.Join(p.Install, " "))))
	switch {
	case env.Database == nil:
		t.row("migrations", "no database")
	case p.PendingMigrations == nil:
		t.row("migrations", sh(p.MigrationsNote))
	case len(p.PendingMigrations) == 0:
		t.row("migrations", "none pending")
	default:
		t.row("migrations", sh(strings.Join(p.PendingMigrations, ", ")))
	}
	t.row("restart", orDash(sh(strings.Join(p.Units, ", "))))
	if p.SocketHandoff != "" {
		t.row("socket", sh(p.SocketHandoff))
	}
	t.row("health", orDash(sh(p.HealthCheck)))
	t.row("steps", strings.Join(p.Steps, " → "))
	if err := t.flush(); err != nil {
		return err
	}
	if len(p.Commits) > 0 {
		fmt.Fprintf(w, "\n%d commit%s:\n", len(p.Commits), plural(len(p.Commits)))
		for _, c := range p.Commits {
			fmt.Fprintf(w, "  %s %s (%s)\n", sh(c.SHA[:min(8, len(c.SHA))]), oneLine(sh(c.Subject), 72), sh(c.Author))
		}
	}
	return nil
}
