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

// webhooksJSON is the stable --json shape of webhooks.
type webhooksJSON struct {
	Webhooks []webhookJSON `json:"webhooks"`
}

type webhookJSON struct {
	ID            int64         `json:"id"`
	Forge         string        `json:"forge"`
	DeliveryID    string        `json:"delivery_id"`
	Event         string        `json:"event"`
	Repository    string        `json:"repository"`
	Ref           string        `json:"ref"`
	SHA           string        `json:"sha"`
	Sender        string        `json:"sender"`
	Outcome       store.Outcome `json:"outcome"`
	Reason        string        `json:"reason"`
	RemoteAddr    string        `json:"remote_addr"`
	ReceivedAt    time.Time     `json:"received_at"`
	DeploymentIDs []int64       `json:"deployment_ids"`
}

var webhookOutcomes = []store.Outcome{store.OutcomeAccepted, store.OutcomeIgnored, store.OutcomeRejected, store.OutcomeDuplicate, store.OutcomeSuperseded}

var forges = []string{"github", "gitlab", "gitea", "bitbucket", "bitbucket_server"}

func (a *app) webhooksCommand() *cobra.Command {
	var (
		filter store.WebhookFilter
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "List received webhooks and what became of each (why didn't it deploy?)",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if filter.Outcome != "" && !slices.Contains(webhookOutcomes, filter.Outcome) {
				return &usageError{fmt.Errorf("--outcome %q: want one of %s", filter.Outcome, joinNames(webhookOutcomes))}
			}
			if filter.Forge != "" && !contains(forges, filter.Forge) {
				return &usageError{fmt.Errorf("--forge %q: want one of %s", filter.Forge, strings.Join(forges, ", "))}
			}
			if filter.Limit < 1 {
				return &usageError{fmt.Errorf("--limit %d: want at least 1", filter.Limit)}
			}
			db, err := a.openState(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			events, err := db.Webhooks(cmd.Context(), filter)
			if err != nil {
				return withCode(ExitState, err)
			}
			out := webhooksJSON{Webhooks: make([]webhookJSON, 0, len(events))}
			for _, e := range events {
				ids := e.DeploymentIDs
				if ids == nil {
					ids = []int64{}
				}
				out.Webhooks = append(out.Webhooks, webhookJSON{
					ID: e.ID, Forge: e.Forge, DeliveryID: e.DeliveryID, Event: e.EventType, Repository: e.Repository,
					Ref: e.Ref, SHA: e.SHA, Sender: e.Sender, Outcome: e.Outcome, Reason: e.Reason,
					RemoteAddr: e.RemoteAddr, ReceivedAt: e.ReceivedAt.UTC(), DeploymentIDs: ids,
				})
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			if len(events) == 0 {
				return nothingYet(a.streams.Out, filter.Forge != "" || filter.Outcome != "" || filter.Fraise != "",
					"no webhooks received yet: fraisier serve records every delivery a forge sends it")
			}
			t := newTable(a.streams.Out, "ID", "RECEIVED", "FORGE", "EVENT", "REPOSITORY", "REF", "SHA", a.paintHeader("OUTCOME"), "DEPLOYMENTS", "REASON")
			for _, e := range out.Webhooks {
				deps := make([]string, len(e.DeploymentIDs))
				for i, id := range e.DeploymentIDs {
					deps[i] = strconv.FormatInt(id, 10)
				}
				// What a delivery carried is its sender's, the reason may quote it.
				t.row(strconv.FormatInt(e.ID, 10), fmtTime(e.ReceivedAt), a.shown(e.Forge), orDash(a.shown(e.Event)), orDash(a.shown(e.Repository)),
					orDash(a.shown(e.Ref)), a.shown(shortSHA(e.SHA)), a.paintStatus(a.shown(string(e.Outcome))), orDash(strings.Join(deps, ",")), orDash(oneLine(a.shown(e.Reason), 60)))
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&filter.Forge, "forge", "", "only this forge ("+strings.Join(forges, ", ")+")")
	f.StringVar((*string)(&filter.Outcome), "outcome", "", "only this outcome ("+joinNames(webhookOutcomes)+")")
	f.StringVar(&filter.Fraise, "fraise", "", "only events that led to a deployment of this fraise")
	f.IntVar(&filter.Limit, "limit", 20, "at most this many events")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
