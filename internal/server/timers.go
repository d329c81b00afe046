package server

import "github.com/fraiseql/fraisier/internal/web"

// The dashboard's view of the scheduled jobs' timers, named here so that
// fraisier serve, which asks systemd, need not import the dashboard.
type (
	// AskTimers asks systemd about the timers of the configuration's
	// scheduled jobs.
	AskTimers = web.AskTimers
	// JobKey names one scheduled job of a target.
	JobKey = web.JobKey
	// TimerState is what systemd says of one job's timer.
	TimerState = web.TimerState
)
