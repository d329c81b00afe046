package cli

import (
	"context"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// jobTimers is what the dashboard's jobs page asks of systemd: for every
// job of the configuration's scheduled environments, its timer's state as
// `fraisier jobs` reads it, through c's managers. A job whose manager or
// timer cannot be asked says why in its entry.
func jobTimers(c deploy.Collaborators) server.AskTimers {
	return func(ctx context.Context, cfg *config.Config) map[server.JobKey]server.TimerState {
		envs, err := scheduledEnvironments(cfg, "", "")
		out := map[server.JobKey]server.TimerState{}
		if err != nil {
			return out
		}
		for _, j := range jobStatuses(ctx, c, envs) {
			st := server.TimerState{Installed: j.Installed, Active: j.Active, Running: j.Running, Result: j.Result, Err: j.Error}
			if j.Next != nil {
				st.Next = *j.Next
			}
			if j.Last != nil {
				st.Last = *j.Last
			}
			out[server.JobKey{Target: store.Target{Fraise: j.Fraise, Environment: j.Environment}, Job: j.Job}] = st
		}
		return out
	}
}
