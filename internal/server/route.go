package server

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
)

// route decides what a parsed, authenticated delivery deploys, given who
// sent it, by the configuration that authenticated it.
func (t *routingTable) route(ev forge.Event, who sender) store.Intake {
	rec := store.WebhookEvent{Forge: string(ev.Forge), DeliveryID: ev.DeliveryID, EventType: ev.EventType,
		Repository: ev.Repository.FullName, Sender: ev.Sender}
	ignore := func(reason string) store.Intake {
		rec.Outcome, rec.Reason = store.OutcomeIgnored, reason
		return store.Intake{Event: rec}
	}
	switch ev.Type {
	case forge.Ping:
		return ignore("ping: " + string(ev.Forge) + " reaches fraisier")
	case forge.PullRequest:
		return t.routePullRequest(ev, who, rec)
	case forge.Check:
		return t.routeCheck(ev, who, rec)
	case forge.Push:
	default:
		return ignore(fmt.Sprintf("%q events are not deployed", ev.EventType))
	}
	if len(ev.Changes) == 0 {
		return ignore("a push that moved no ref")
	}
	first := ev.Changes[0]
	rec.Ref, rec.SHA = first.Ref, first.After

	names := append([]string{ev.Repository.FullName}, ev.Repository.CloneURLs...)
	byTarget := map[store.Target]store.QueueRequest{}
	var reasons []string
	for _, c := range ev.Changes {
		if c.Deleted {
			reasons = append(reasons, "deletion of "+c.Ref+" never deploys")
			continue
		}
		envs := t.router.Match(string(ev.Forge), names, c.Ref)
		if len(envs) == 0 {
			switch {
			case c.IsTag:
				reasons = append(reasons, fmt.Sprintf("no environment deploys tag %s of %s delivered by %s (tags deploy only where an environment sets tags:)", c.Name, ev.Repository.FullName, ev.Forge))
			default:
				reasons = append(reasons, fmt.Sprintf("no environment deploys branch %s of %s delivered by %s", c.Name, ev.Repository.FullName, ev.Forge))
			}
			continue
		}
		for _, e := range envs {
			if why := who.notCovered(e); why != "" {
				reasons = append(reasons, why)
				continue
			}
			// Several refs of one push routed to one target: the last wins,
			// as it would had they been pushed one after the other.
			q := request(ev, e, c.After, c.Ref)
			byTarget[q.Target] = q
			rec.Ref, rec.SHA = c.Ref, c.After
		}
	}
	if len(byTarget) == 0 {
		return ignore(strings.Join(dedupe(reasons), "; "))
	}
	reqs := make([]store.QueueRequest, 0, len(byTarget))
	for _, q := range byTarget {
		reqs = append(reqs, q)
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].Target.String() < reqs[j].Target.String() })
	rec.Outcome = store.OutcomeAccepted
	if len(reasons) > 0 {
		rec.Reason = strings.Join(dedupe(reasons), "; ")
	}
	return store.Intake{Event: rec, Requests: reqs}
}

// routePullRequest queues the head of a pull request opened, reopened or
// updated against a branch that an environment's pull_requests matches;
// every other pull request event is recorded and ignored, with the reason.
func (t *routingTable) routePullRequest(ev forge.Event, who sender, rec store.WebhookEvent) store.Intake {
	ignore := func(reason string) store.Intake {
		rec.Outcome, rec.Reason = store.OutcomeIgnored, reason
		return store.Intake{Event: rec}
	}
	pr := ev.PullRequest
	if pr == nil {
		return ignore("a pull request event without a pull request")
	}
	rec.Ref, rec.SHA = "refs/heads/"+pr.SourceBranch, pr.HeadSHA
	what := fmt.Sprintf("pull request #%d %s", pr.Number, pr.Action)
	names := append([]string{ev.Repository.FullName}, ev.Repository.CloneURLs...)
	envs := t.router.MatchPullRequest(string(ev.Forge), names, pr.TargetBranch)
	if len(envs) == 0 {
		return ignore(fmt.Sprintf("%s: no environment deploys pull requests against %s of %s delivered by %s (pull requests deploy only where an environment sets pull_requests:)",
			what, pr.TargetBranch, ev.Repository.FullName, ev.Forge))
	}
	ref := forge.PullRequestRef(ev.Forge, pr.Number)
	switch {
	case !forge.HeadUpdated(ev.Forge, pr.Action):
		return ignore(what + ": only a pull request opened, reopened or updated deploys its head")
	case pr.HeadSHA == "":
		return ignore(what + ": the forge sent no full commit for its head")
	case !pr.SameRepository:
		// On a public repository anyone can open one: deploying it would
		// run anyone's code, with the environment's secrets.
		return ignore(what + ": its head is in a fork, or the forge did not say where; pull requests from forks never deploy")
	case ref == "":
		return ignore(what + ": " + string(ev.Forge) + " keeps no ref of the head in the repository to fetch it from")
	}
	var reqs []store.QueueRequest
	var reasons []string
	for _, e := range envs {
		if why := who.notCovered(e); why != "" {
			reasons = append(reasons, why)
			continue
		}
		reqs = append(reqs, request(ev, e, pr.HeadSHA, ref))
	}
	if len(reqs) == 0 {
		return ignore(strings.Join(dedupe(reasons), "; "))
	}
	rec.Outcome, rec.Reason = store.OutcomeAccepted, strings.Join(dedupe(reasons), "; ")
	return store.Intake{Event: rec, Requests: reqs}
}

// request is what a delivery queues for e: a deployment of sha, fetched
// at ref.
// An environment with hosts queues one rollout across them instead.
func request(ev forge.Event, e *config.Environment, sha, ref string) store.QueueRequest {
	fraise, env := e.Target()
	q := store.QueueRequest{Target: store.Target{Fraise: fraise, Environment: env}, SHA: sha, Ref: ref,
		Trigger: store.TriggerWebhook, Actor: actorOf(ev), After: runsAfter(e), Hold: e.WaitsForChecks(), Checks: e.Checks}
	if p, ok := queue.RolloutPolicy(e); ok {
		q.Rollout = &p
	}
	return q
}

// runsAfter is what a request for e waits for among the requests of the
// same delivery: the environments its after: list names and the one whose
// code it runs. The queue waits only for those the delivery queues.
func runsAfter(e *config.Environment) []store.Target {
	envs := e.RunsAfter()
	if len(envs) == 0 {
		return nil
	}
	out := make([]store.Target, len(envs))
	for i, a := range envs {
		f, env := a.Target()
		out[i] = store.Target{Fraise: f, Environment: env}
	}
	return out
}

func actorOf(ev forge.Event) string {
	if ev.Sender == "" {
		return string(ev.Forge)
	}
	return ev.Sender + " via " + string(ev.Forge)
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
