package deploy

import (
	"context"
	"fmt"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// runAPI is the flow of an api or etl fraise: the commit fetched, then a
// release (or the inplace checkout) installed, migrated, switched to,
// restarted and health-checked; an etl also verifies its scripts before
// the switch and runs its run_after_deploy after it.
func (d *deployment) runAPI(ctx context.Context) (store.Status, error) {
	env := d.env
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
			{"migrate", orDefault(env.Timeouts.Migrate, defaultMigrateTimeout), d.migrate, d.migrateSkip()},
			{"restart", orDefault(env.Timeouts.Restart, defaultRestartTimeout), d.restart, skipUnless(len(env.Services()) > 0, "no systemd_service")},
			{"health", 0, d.checkHealth, skipUnless(env.HealthCheck != nil, "no health_check")},
		})
	}
	steps := []plannedStep{
		{"release", 0, d.makeRelease, ""},
		{"install", orDefault(installTimeout(env), defaultInstallTimeout), d.install, skipUnless(env.Install != nil, "no install command")},
	}
	if env.Fraise.Type == config.TypeETL {
		steps = append(steps, plannedStep{"verify scripts", 0, d.verifyScripts, skipUnless(len(env.Scripts) > 0, "no scripts")})
	}
	steps = append(steps,
		plannedStep{"migrate", orDefault(env.Timeouts.Migrate, defaultMigrateTimeout), d.migrate, d.migrateSkip()},
		plannedStep{"switch", 0, d.switchRelease, ""},
		plannedStep{"restart", orDefault(env.Timeouts.Restart, defaultRestartTimeout), d.restart, skipUnless(len(env.Services()) > 0, "no systemd_service")},
		plannedStep{"health", 0, d.checkHealth, skipUnless(env.HealthCheck != nil, "no health_check")},
	)
	if env.Fraise.Type == config.TypeETL {
		steps = append(steps, plannedStep{"run after deploy", runAfterTimeout(env), d.runAfterDeploy, skipUnless(env.RunAfterDeploy != nil, "no run_after_deploy")})
	}
	return d.apply(ctx, steps)
}

func installTimeout(env *config.Environment) config.Duration {
	if env.Install != nil && env.Install.Timeout > 0 {
		return env.Install.Timeout
	}
	return env.Timeouts.Install
}
