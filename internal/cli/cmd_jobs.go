package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/systemd"
)

// jobsJSON is the stable --json shape of jobs.
type jobsJSON struct {
	Jobs []jobJSON `json:"jobs"`
}

type jobJSON struct {
	Fraise      string   `json:"fraise"`
	Environment string   `json:"environment"`
	Job         string   `json:"job"`
	Schedule    string   `json:"schedule"` // the OnCalendar expression
	Command     []string `json:"command"`
	Service     string   `json:"service"`
	Timer       string   `json:"timer"`
	// Installed is false when systemd does not know the timer: the
	// environment was never deployed, or its jobs were removed by hand.
	Installed  bool       `json:"installed"`
	Active     bool       `json:"active"`
	Running    bool       `json:"running"`
	Next       *time.Time `json:"next"`
	Last       *time.Time `json:"last"`
	Result     string     `json:"result"`
	ExitStatus int        `json:"exit_status"`
	// Error is why the timer's state could not be read; the other fields
	// are then those of the configuration only.
	Error string `json:"error"`
}

func (a *app) jobsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "jobs [fraise [environment]]",
		Short: "List scheduled jobs with their next and last runs, as systemd reports them now",
		Long: `Jobs lists the jobs of every scheduled environment in the configuration
(or of one fraise, or one environment) and asks systemd, live, when each
timer fires next and how its last run ended. A timer systemd cannot be
asked about shows why in its row; the other rows are still listed.`,
		Args: rangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			envs, err := scheduledEnvironments(cfg, argAt(args, 0), argAt(args, 1))
			if err != nil {
				return err
			}
			out := jobsJSON{Jobs: jobStatuses(cmd.Context(), deploy.RealCollaborators(nil), envs)}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			t := newTable(a.streams.Out, "FRAISE", "ENV", "JOB", "SCHEDULE", "NEXT", "LAST", a.paintHeader("RESULT"))
			for _, j := range out.Jobs {
				next, last, result := "-", "never", orDash(j.Result)
				switch {
				case j.Error != "":
					last, result = "-", "error: "+a.shown(errorTail(j.Error, 80))
				case !j.Installed:
					last, result = "-", "not installed"
				case j.Running:
					next = "running"
				case !j.Active:
					next = "stopped"
				case j.Next != nil:
					next = fmtTime(*j.Next)
				}
				if j.Last != nil {
					last = fmtTime(*j.Last)
				}
				t.row(j.Fraise, j.Environment, j.Job, j.Schedule, next, last, a.paintJobResult(result))
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	cmd.AddCommand(a.jobsStopCommand())
	return cmd
}

// scheduledEnvironments returns the scheduled environments the arguments
// name: all of them, a fraise's, or one. Naming something that is not
// there, or not scheduled, is an error.
func scheduledEnvironments(cfg *config.Config, fraise, envName string) ([]*config.Environment, error) {
	if fraise == "" {
		var out []*config.Environment
		for _, e := range cfg.Environments() {
			if e.Fraise.Type == "scheduled" {
				out = append(out, e)
			}
		}
		return out, nil
	}
	f, err := findFraise(cfg, fraise)
	if err != nil {
		return nil, err
	}
	if f.Type != "scheduled" {
		return nil, notFound("%s is %s %s fraise: only scheduled fraises have jobs", fraise, article(f.Type), f.Type)
	}
	if envName == "" {
		var out []*config.Environment
		for _, name := range f.EnvironmentNames() {
			out = append(out, f.Environments[name])
		}
		return out, nil
	}
	e, err := findEnvironment(f, envName)
	if err != nil {
		return nil, err
	}
	return []*config.Environment{e}, nil
}

// errorTail keeps the end of an error for a table cell: wrapped errors
// say what was being done first and what went wrong last.
func errorTail(s string, max int) string {
	s = oneLine(s, len(s)+1)
	if r := []rune(s); len(r) > max {
		return "…" + string(r[len(r)-max+1:])
	}
	return s
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// jobStatuses reads each job's timer from systemd. A failure is kept in
// its row: one unreachable manager must not hide the jobs of another.
func jobStatuses(ctx context.Context, c deploy.Collaborators, envs []*config.Environment) []jobJSON {
	out := []jobJSON{}
	managers := map[string]deploy.JobUnits{}
	managerErrs := map[string]error{}
	for _, e := range envs {
		fraise, envName := e.Target()
		u, err := managers[e.Scope], managerErrs[e.Scope]
		if u == nil && err == nil {
			u, err = c.JobUnits(e.Scope)
			managers[e.Scope], managerErrs[e.Scope] = u, err
		}
		for i := range e.Jobs {
			j := &e.Jobs[i]
			row := jobJSON{Fraise: fraise, Environment: envName, Job: j.Name, Command: append([]string{}, j.Command...),
				Service: j.SystemdService, Timer: j.SystemdTimer}
			cal, calErr := j.Calendar()
			row.Schedule = cal
			switch {
			case err != nil:
				row.Error = err.Error()
			case calErr != nil:
				row.Error = calErr.Error()
			default:
				fillTimer(ctx, &row, u)
			}
			out = append(out, row)
		}
	}
	return out
}

func fillTimer(ctx context.Context, row *jobJSON, u deploy.JobUnits) {
	st, err := u.TimerStatus(ctx, row.Timer)
	if errors.Is(err, systemd.ErrUnitNotFound) {
		return
	}
	if err != nil {
		row.Error = err.Error()
		return
	}
	row.Installed, row.Active, row.Running = true, st.Active, st.Running
	row.Result, row.ExitStatus = st.LastResult, st.LastExitStatus
	if !st.NextElapse.IsZero() {
		next := st.NextElapse.UTC()
		row.Next = &next
	}
	if !st.LastTrigger.IsZero() {
		last := st.LastTrigger.UTC()
		row.Last = &last
	}
}

// paintJobResult colours how a job's last run ended: green for success,
// yellow for a job that is not installed, red for a failure or an error.
func (a *app) paintJobResult(s string) string {
	if !a.colorOn() {
		return s
	}
	c := ansiRed
	switch s {
	case "success":
		c = ansiGreen
	case "not installed":
		c = ansiYellow
	case "-":
		c = ansiDefault
	}
	return c + s + ansiReset
}

func (a *app) jobsStopCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stop <fraise> <environment>",
		Short: "Disable and stop an environment's timers until the next deploy (a running job finishes its run)",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			envs, err := scheduledEnvironments(cfg, args[0], args[1])
			if err != nil {
				return err
			}
			db, err := openStore(cmd.Context(), a.stateFromConfig(cfg))
			if err != nil {
				return err
			}
			defer db.Close()
			owner, err := deploy.CurrentOwner()
			if err != nil {
				return err
			}
			e := &deploy.Engine{Store: db, Owner: owner}
			stopped, err := e.StopJobs(cmd.Context(), deploy.RealCollaborators(nil), envs[0])
			if errors.Is(err, deploy.ErrLocked) {
				return withCode(ExitLocked, err)
			}
			if err != nil {
				return err
			}
			id := envs[0].ID()
			if len(stopped) == 0 {
				_, err = fmt.Fprintf(a.streams.Out, "%s: no timers installed\n", id)
				return err
			}
			_, err = fmt.Fprintf(a.streams.Out, "%s: stopped %s (the next deploy starts them again)\n", id, strings.Join(stopped, ", "))
			return err
		},
	}
}
