package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/store"
)

// deploymentJSON is the stable --json shape of one deployment.
type deploymentJSON struct {
	ID             int64         `json:"id"`
	Fraise         string        `json:"fraise"`
	Environment    string        `json:"environment"`
	Status         store.Status  `json:"status"`
	Trigger        store.Trigger `json:"trigger"`
	Actor          string        `json:"actor"`
	RequestedRef   string        `json:"requested_ref"`
	OldSHA         string        `json:"old_sha"`
	NewSHA         string        `json:"new_sha"`
	Release        string        `json:"release"`
	StartedAt      time.Time     `json:"started_at"`
	FinishedAt     *time.Time    `json:"finished_at"`
	DurationMS     int64         `json:"duration_ms"`
	Error          string        `json:"error"`
	WebhookEventID *int64        `json:"webhook_event_id"`
	Host           string        `json:"host"`
	PID            int           `json:"pid"`
}

func deploymentView(d store.Deployment) deploymentJSON {
	return deploymentJSON{
		ID: d.ID, Fraise: d.Fraise, Environment: d.Environment, Status: d.Status, Trigger: d.Trigger,
		Actor: d.Actor, RequestedRef: d.RequestedRef, OldSHA: d.OldSHA, NewSHA: d.NewSHA, Release: d.Release,
		StartedAt: d.StartedAt.UTC(), FinishedAt: utcPtr(d.FinishedAt), DurationMS: d.DurationMS, Error: d.Error,
		WebhookEventID: d.WebhookID, Host: d.Host, PID: d.PID,
	}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

type historyJSON struct {
	Deployments []deploymentJSON `json:"deployments"`
}

// historyOptions are the flags of history.
type historyOptions struct {
	fraise, env, status, since string
	host                       string
	limit                      int
	asJSON                     bool
}

func (a *app) historyCommand() *cobra.Command {
	var opts historyOptions
	cmd := &cobra.Command{
		Use:   "history [fraise [environment]]",
		Short: "List deployments, newest first",
		Args:  rangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positionalTarget(args, &opts.fraise, &opts.env); err != nil {
				return err
			}
			if opts.status != "" && !slices.Contains(deploymentStatuses, store.Status(opts.status)) {
				return &usageError{fmt.Errorf("--status %q: want one of %s", opts.status, joinNames(deploymentStatuses))}
			}
			if opts.limit < 1 {
				return &usageError{fmt.Errorf("--limit %d: want at least 1", opts.limit)}
			}
			since, err := parseSince(opts.since, time.Now())
			if err != nil {
				return &usageError{err}
			}
			db, err := a.openState(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			filter := store.DeploymentFilter{
				Fraise: opts.fraise, Environment: opts.env, Status: store.Status(opts.status), Since: since, Limit: opts.limit,
			}
			ds, err := hostDeployments(cmd.Context(), db, filter, opts.host)
			if err != nil {
				return withCode(ExitState, err)
			}
			if opts.asJSON {
				out := historyJSON{Deployments: make([]deploymentJSON, 0, len(ds))}
				for _, d := range ds {
					out.Deployments = append(out.Deployments, deploymentView(d))
				}
				return writeJSON(a.streams.Out, out)
			}
			if len(ds) == 0 {
				return nothingYet(a.streams.Out, opts.fraise != "" || opts.env != "" || opts.status != "" || opts.since != "" || opts.host != "",
					"no deployments yet: fraisier deploy makes one, and so does a push that fraisier serve routes here")
			}
			t := newTable(a.streams.Out, "ID", "FRAISE", "ENVIRONMENT", a.paintHeader("STATUS"), "TRIGGER", "FROM", "TO", "STARTED", "DURATION", "ERROR")
			for _, d := range ds {
				// The error ends with a tool's last line of output.
				t.row(strconv.FormatInt(d.ID, 10), a.shown(d.Fraise), a.shown(d.Environment), a.paintStatus(a.shown(string(d.Status))), a.shown(string(d.Trigger)),
					a.shown(shortSHA(d.OldSHA)), a.shown(shortSHA(d.NewSHA)), fmtTime(d.StartedAt), fmtDurationMS(d.DurationMS), orDash(oneLine(a.shown(d.Error), 60)))
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.fraise, "fraise", "", "only this fraise")
	f.StringVar(&opts.env, "env", "", "only this environment")
	f.StringVar(&opts.host, "host", "", "only deployments of this host (the env@host targets of environments with hosts:)")
	f.StringVar(&opts.status, "status", "", "only deployments in this status ("+joinNames(deploymentStatuses)+")")
	f.StringVar(&opts.since, "since", "", "only deployments started since: a duration (90m, 36h, 7d) or a date (2026-11-01, RFC 3339)")
	f.IntVar(&opts.limit, "limit", 20, "at most this many deployments")
	addJSONFlag(cmd, &opts.asJSON)
	return cmd
}

var deploymentStatuses = []store.Status{
	store.StatusQueued, store.StatusRunning, store.StatusSucceeded, store.StatusFailed, store.StatusRolledBack,
	store.StatusRollbackFailed, store.StatusInterrupted, store.StatusSkipped, store.StatusSuperseded,
}

// positionalTarget lets "history api prod" mean "--fraise api --env prod",
// refusing a contradiction between the two forms.
func positionalTarget(args []string, fraise, env *string) error {
	for i, dst := range []*string{fraise, env} {
		v := argAt(args, i)
		if v == "" {
			continue
		}
		if *dst != "" && *dst != v {
			return &usageError{fmt.Errorf("argument %q contradicts flag value %q", v, *dst)}
		}
		*dst = v
	}
	return nil
}

// parseSince reads --since: empty (no bound), a duration back from now
// (Go syntax, plus "d" for days), a date, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (90m, 36h, 7d), a date (2026-11-01) or an RFC 3339 time", s)
}
