package cli

import (
	"context"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/server"
)

// dashboardHooks feed the dashboard's overview: commit subjects from the
// git mirrors and each environment's health now, under the configuration
// in force (a reload changes it).
func dashboardHooks(current func() *config.Config, c deploy.Collaborators, node string) server.DashboardHooks {
	return server.DashboardHooks{Subjects: commitSubjects(current), Live: liveState(current, c), Node: node}
}

// liveState asks an environment's units and health check now, as
// fraisier status does, but not the remote's branch head: the dashboard
// asks every few seconds, and that would be a request to the forge each
// time.
func liveState(current func() *config.Config, c deploy.Collaborators) func(ctx context.Context, fraise, environment string) server.LiveState {
	return func(ctx context.Context, fraise, environment string) server.LiveState {
		env, err := current().Lookup(fraise, environment)
		if err != nil {
			return server.LiveState{Reason: "not in the configuration"}
		}
		var st server.LiveState
		if services := env.Services(); len(services) > 0 {
			units := c.Units(env.Scope)
			st.Units = map[string]bool{}
			for _, u := range services {
				active, err := units.IsActive(ctx, u)
				if err != nil {
					st.UnitsError = err.Error()
					break
				}
				st.Units[u] = active
			}
		}
		if env.HealthCheck == nil {
			st.Reason = "no health check configured"
			return st
		}
		// CheckHealth's error is said without the configuration's secrets.
		err = deploy.CheckHealth(ctx, c, env)
		healthy := err == nil
		st.Healthy = &healthy
		if err != nil {
			st.Reason = err.Error()
		}
		return st
	}
}
