package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// notificationsJSON is the stable --json shape of notifications.
type notificationsJSON struct {
	Notifications []notificationJSON `json:"notifications"`
}

type notificationJSON struct {
	ID            int64             `json:"id"`
	Event         string            `json:"event"`
	Target        string            `json:"target"`
	DeploymentID  *int64            `json:"deployment_id"`
	State         store.OutboxState `json:"state"`
	Attempts      int               `json:"attempts"`
	CreatedAt     time.Time         `json:"created_at"`
	NextAttemptAt *time.Time        `json:"next_attempt_at"`
	SentAt        *time.Time        `json:"sent_at"`
	LastError     string            `json:"last_error"`
	History       []attemptJSON     `json:"attempts_log,omitempty"`
}

type attemptJSON struct {
	At         time.Time         `json:"at"`
	Outcome    store.OutboxState `json:"outcome"`
	HTTPStatus int               `json:"http_status"`
	Error      string            `json:"error"`
	DurationMS int64             `json:"duration_ms"`
}

func (a *app) notificationsCommand() *cobra.Command {
	var (
		failed, asJSON, attempts, forgeStatus bool
		limit                                 int
	)
	cmd := &cobra.Command{
		Use:   "notifications",
		Short: "List the notifications fraisier serve sent, retries and gave up on",
		Long: `Notifications lists the messages the notify: section routed to its targets,
newest first: when each was queued, its state (pending, failed: to be retried,
sent, given_up), its attempts and its last error. --failed lists only those
not sent yet after an attempt, or given up. Target URLs are never shown: the
state database holds only target names. See docs/notifications.md.

--forge lists the deployment states serve reported to the forges instead
(git.<forge>.status: docs/forge-status.md), the forge as target.`,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return &usageError{fmt.Errorf("--limit %d: want at least 1", limit)}
			}
			db, err := a.openState(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			f := store.OutboxFilter{Kind: store.OutboxNotification, Limit: limit}
			if forgeStatus {
				f.Kind = store.OutboxForgeStatus
			}
			if failed {
				f.States = []store.OutboxState{store.OutboxFailed, store.OutboxGivenUp}
			}
			msgs, err := db.Outbox(cmd.Context(), f)
			if err != nil {
				return withCode(ExitState, err)
			}
			out, err := a.notificationsOf(cmd.Context(), db, msgs, attempts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			empty := "no notifications yet: add a notify: section (docs/notifications.md) and fraisier serve sends them"
			if forgeStatus {
				empty = "no forge status reports yet: give the forge's section under git: a status: block (docs/forge-status.md) and fraisier serve reports each deployment"
			}
			return a.notificationsTable(out, failed, empty)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&failed, "failed", false, "only messages whose last attempt failed (to be retried) or that were given up")
	f.BoolVar(&attempts, "attempts", false, "show every attempt of each message")
	f.BoolVar(&forgeStatus, "forge", false, "the reports to the forges (git.<forge>.status) instead of the notifications")
	f.IntVar(&limit, "limit", 50, "at most this many messages")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// notificationsOf turns outbox messages into what the command shows, with
// each message's attempts when asked. Errors are scrubbed when recorded;
// scrubbed again with the configuration in use, when there is one, in case
// a secret changed since.
func (a *app) notificationsOf(ctx context.Context, db *store.DB, msgs []store.OutboxMessage, attempts bool) (notificationsJSON, error) {
	var secrets []string
	if cfg, err := a.loadConfig(); err == nil {
		secrets = cfg.SecretValues()
	}
	scrub := deploy.NewScrubber(secrets)
	out := notificationsJSON{Notifications: make([]notificationJSON, 0, len(msgs))}
	for _, m := range msgs {
		n := notificationJSON{ID: m.ID, Event: m.Event, Target: m.Target, DeploymentID: m.DeploymentID, State: m.State,
			Attempts: m.Attempts, CreatedAt: m.CreatedAt, SentAt: m.SentAt, LastError: scrub.String(m.LastError)}
		if m.State == store.OutboxPending || m.State == store.OutboxFailed {
			next := m.NextAttemptAt
			n.NextAttemptAt = &next
		}
		if attempts {
			hist, err := db.OutboxAttempts(ctx, m.ID)
			if err != nil {
				return out, withCode(ExitState, err)
			}
			for _, h := range hist {
				n.History = append(n.History, attemptJSON{At: h.At, Outcome: h.Outcome, HTTPStatus: h.HTTPStatus,
					Error: scrub.String(h.Error), DurationMS: h.Duration.Milliseconds()})
			}
		}
		out.Notifications = append(out.Notifications, n)
	}
	return out, nil
}

func (a *app) notificationsTable(out notificationsJSON, filtered bool, empty string) error {
	if len(out.Notifications) == 0 {
		return nothingYet(a.streams.Out, filtered, empty)
	}
	t := newTable(a.streams.Out, "ID", "QUEUED", "EVENT", "TARGET", "DEPLOYMENT", a.paintHeader("STATE"), "ATTEMPTS", "SENT/NEXT", "LAST ERROR")
	for _, n := range out.Notifications {
		dep := "-"
		if n.DeploymentID != nil {
			dep = strconv.FormatInt(*n.DeploymentID, 10)
		}
		when := fmtTimePtr(n.SentAt)
		if n.NextAttemptAt != nil {
			when = "next " + fmtTime(*n.NextAttemptAt)
		}
		t.row(strconv.FormatInt(n.ID, 10), fmtTime(n.CreatedAt), n.Event, n.Target, dep, a.paintStatus(string(n.State)),
			strconv.Itoa(n.Attempts), when, orDash(oneLine(a.shown(n.LastError), 80)))
		for _, h := range n.History {
			status := ""
			if h.HTTPStatus != 0 {
				status = " HTTP " + strconv.Itoa(h.HTTPStatus)
			}
			t.row("", "  "+fmtTime(h.At), "", "", "", string(h.Outcome), "", fmtDurationMS(h.DurationMS)+status,
				orDash(oneLine(a.shown(h.Error), 80)))
		}
	}
	return t.flush()
}
