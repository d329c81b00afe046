package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

func (a *app) rollbackCommand() *cobra.Command {
	var (
		to        string
		wait      time.Duration
		noMigrate bool
		asJSON    bool
		remote    remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "rollback <fraise> <environment>",
		Short: "Return to an earlier release still on disk: switch, restart, health check",
		Long: `Rollback switches current back to the newest good release older than the
current one (or the release or commit given with --to), restarts the units
and checks health. No fetch, no build.

With a database, each release records the migration revision it ran at.
Before the switch, rollback migrates the database down to the revision of
the release it returns to ("migrate down"), using the migrations of the
release that is current now, which alone knows how to undo them. If they
cannot go down that far (a migration without a down step), the rollback is
refused before anything changes; --no-migrate then switches the code only
and leaves the database where it is, as does database.rollback_on_failure:
false, and a release recorded without a revision. The step says at which
revision the database was left.

If the earlier release is not healthy, the release that was current is
restored, its migrations applied again first. Exit codes are those of
deploy.`,
		Args: rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if here, err := remote.local(); err != nil || !here {
				return remoteOr(err, func() error { return a.remoteRollback(cmd.Context(), remote, args, to, noMigrate, wait, asJSON) })
			}
			env, db, err := a.targetStore(cmd, args)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := a.rollbackHosts(env); err != nil {
				return err
			}
			return a.runEngine(env, asJSON, func(e *deploy.Engine) (deploy.Result, error) {
				return e.Rollback(cmd.Context(), deploy.RealCollaborators(nil), deploy.RollbackRequest{Env: env, To: to, Actor: actor(a.env), Wait: wait, NoMigrate: noMigrate})
			}, db)
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "release name or commit (7+ hex) to return to (default: the previous good release)")
	f.DurationVar(&wait, "wait", 0, "wait this long for another deployment of the same target to finish")
	f.BoolVar(&noMigrate, "no-migrate", false, "switch the code only: leave the database at its current revision")
	addJSONFlag(cmd, &asJSON)
	addRemoteFlags(cmd, &remote)
	return cmd
}

type releasesJSON struct {
	Releases []releaseJSON `json:"releases"`
}

type releaseJSON struct {
	Name         string    `json:"name"`
	SHA          string    `json:"sha"`
	State        string    `json:"state"`
	Path         string    `json:"path"`
	DeploymentID int64     `json:"deployment_id"`
	CreatedAt    time.Time `json:"created_at"`
	// MigrationRevision is "" when unknown: no database, or a release
	// recorded before fraisier kept revisions.
	MigrationRevision string `json:"migration_revision"`
}

func (a *app) releasesCommand() *cobra.Command {
	var asJSON bool
	limit := 50
	cmd := &cobra.Command{
		Use:   "releases <fraise> <environment>",
		Short: "List an environment's releases, newest first, and which is current, good or bad",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return &usageError{fmt.Errorf("--limit %d: want at least 1", limit)}
			}
			_, db, err := a.targetStore(cmd, args)
			if err != nil {
				return err
			}
			defer db.Close()
			// One more than shown, to tell whether older ones were left out.
			rels, err := db.RecentReleases(cmd.Context(), store.Target{Fraise: args[0], Environment: args[1]}, limit+1)
			if err != nil {
				return withCode(ExitState, err)
			}
			more := len(rels) > limit
			if more {
				rels = rels[:limit]
			}
			out := releasesJSON{Releases: make([]releaseJSON, 0, len(rels))}
			for _, r := range rels {
				out.Releases = append(out.Releases, releaseJSON{Name: r.Name, SHA: r.SHA, State: r.State, Path: r.Path, DeploymentID: r.DeploymentID, CreatedAt: r.CreatedAt.UTC(), MigrationRevision: r.MigrationRevision})
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			t := newTable(a.streams.Out, "RELEASE", "SHA", "STATE", "REVISION", "DEPLOYMENT", "CREATED")
			for _, r := range out.Releases {
				// A Django revision names every app: the table shows its start,
				// --json all of it.
				t.row(r.Name, shortSHA(r.SHA), r.State, oneLine(orDash(r.MigrationRevision), 40), strconv.FormatInt(r.DeploymentID, 10), fmtTime(r.CreatedAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if more {
				_, err = fmt.Fprintf(a.streams.Out, "(the newest %d; older releases with --limit)\n", limit)
			}
			return err
		},
	}
	cmd.Flags().IntVar(&limit, "limit", limit, "show at most this many releases, newest first")
	addJSONFlag(cmd, &asJSON)
	return cmd
}
