package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

func heldReq(t store.Target, sha string, checks ...string) store.QueueRequest {
	r := queueReq(t, sha)
	r.Hold, r.Checks = true, checks
	return r
}

func checkEvent(delivery, sha, name string, passed bool, targets ...store.Target) store.Intake {
	conclusion := "failure"
	if passed {
		conclusion = "success"
	}
	return store.Intake{
		Event: store.WebhookEvent{Forge: "github", DeliveryID: delivery, EventType: "check_suite",
			Repository: "acme/api", SHA: sha, Outcome: store.OutcomeIgnored, Reason: "no push waits for it"},
		Check: &store.CheckReport{SHA: sha, Name: name, Conclusion: conclusion, Passed: passed, Targets: targets},
	}
}

// testChecksHold: a push to an environment with trigger: checks is held,
// not queued, and its event says it waits. A result for another commit, or
// for a target the result may not decide, does nothing; a success for the
// pushed commit queues it as if it had just arrived, linked to the push
// and to the result; a failure ends it with the reason, nothing queued.
func (s *suite) testChecksHold(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	rec := func(items ...store.Intake) []store.IntakeResult {
		t.Helper()
		return must(db.RecordIntake(ctx, items))(t)
	}
	event := func(id int64) store.WebhookEvent {
		t.Helper()
		for _, e := range must(db.Webhooks(ctx, store.WebhookFilter{Limit: 100}))(t) {
			if e.ID == id {
				return e
			}
		}
		t.Fatalf("webhook event %d not found", id)
		return store.WebhookEvent{}
	}
	p := rec(push("github", "p1", sha(1), store.OutcomeAccepted, heldReq(api, sha(1))))[0]
	if q := p.Queued; len(q) != 1 || q[0].DeploymentID != 0 || q[0].Held == 0 {
		t.Fatalf("held push queued %+v; want a hold and no deployment", q)
	}
	if n := len(must(db.QueuedDeployments(ctx))(t)); n != 0 {
		t.Fatalf("%d deployments queued for a held push", n)
	}
	if e := event(p.Event.ID); e.Outcome != store.OutcomeAccepted || !strings.Contains(e.Reason, "waiting for checks") {
		t.Errorf("held push recorded %s %q; want accepted, waiting for checks", e.Outcome, e.Reason)
	}

	other := rec(checkEvent("c1", sha(9), "CI", true, api))[0]
	notMine := rec(checkEvent("c2", sha(1), "CI", true, web))[0]
	for _, r := range []store.IntakeResult{other, notMine} {
		if r.Event.Outcome != store.OutcomeIgnored || len(r.Queued) != 0 {
			t.Errorf("check %s: %s %+v; want ignored, nothing queued", r.Event.DeliveryID, r.Event.Outcome, r.Queued)
		}
	}
	if n := len(must(db.QueuedDeployments(ctx))(t)); n != 0 {
		t.Fatalf("%d deployments queued by checks of another commit or target", n)
	}

	ok := rec(checkEvent("c3", sha(1), "CI", true, api))[0]
	if ok.Event.Outcome != store.OutcomeAccepted || len(ok.Queued) != 1 || ok.Queued[0].DeploymentID == 0 {
		t.Fatalf("check that passed: %s %+v; want accepted, one deployment", ok.Event.Outcome, ok.Queued)
	}
	dep := ok.Queued[0].DeploymentID
	q := must(db.QueuedDeployments(ctx))(t)
	if len(q) != 1 || q[0].ID != dep || q[0].NewSHA != sha(1) || q[0].Trigger != store.TriggerWebhook {
		t.Fatalf("queued %+v; want deployment %d of %s by the webhook", q, dep, sha(1))
	}
	if e := event(p.Event.ID); !strings.Contains(e.Reason, "checks passed") || strings.Contains(e.Reason, "waiting") || len(e.DeploymentIDs) != 1 || e.DeploymentIDs[0] != dep {
		t.Errorf("released push recorded %q, deployments %v; want checks passed, linked to %d", e.Reason, e.DeploymentIDs, dep)
	}
	if e := event(ok.Event.ID); len(e.DeploymentIDs) != 1 || e.DeploymentIDs[0] != dep {
		t.Errorf("the check that released it is linked to %v, want %d", e.DeploymentIDs, dep)
	}

	// A failure ends the next held push.
	p2 := rec(push("github", "p2", sha(2), store.OutcomeAccepted, heldReq(apiS, sha(2))))[0]
	bad := rec(checkEvent("c4", sha(2), "CI", false, apiS))[0]
	if bad.Event.Outcome != store.OutcomeAccepted || len(bad.Queued) != 0 || !strings.Contains(bad.Event.Reason, "checks failed: CI failure") {
		t.Errorf("check that failed: %s %q %+v; want accepted, the reason, nothing queued", bad.Event.Outcome, bad.Event.Reason, bad.Queued)
	}
	if e := event(p2.Event.ID); !strings.Contains(e.Reason, "checks failed: CI failure") || len(e.DeploymentIDs) != 0 {
		t.Errorf("failed push recorded %q %v", e.Reason, e.DeploymentIDs)
	}
	if n := len(must(db.QueuedDeployments(ctx))(t)); n != 1 {
		t.Errorf("%d deployments queued after a failed check, want the one released before", n)
	}
	held := must(db.HeldPushes(ctx, false, 10))(t)
	if len(held) != 2 || held[0].Status != "failed" || held[1].Status != "released" || held[1].DeploymentID != dep {
		t.Errorf("held pushes %+v; want one failed, one released", held)
	}
}

// testChecksSupersede: a newer push held for a target supersedes the one
// waiting, whose event is then superseded; a result for the older commit
// decides nothing. Named checks must all pass; any one failing fails.
// Results recorded before the push decide it as it is held.
func (s *suite) testChecksSupersede(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	rec := func(items ...store.Intake) []store.IntakeResult {
		t.Helper()
		return must(db.RecordIntake(ctx, items))(t)
	}
	p1 := rec(push("github", "p1", sha(1), store.OutcomeAccepted, heldReq(api, sha(1), "CI", "Lint")))[0]
	p2 := rec(push("github", "p2", sha(2), store.OutcomeAccepted, heldReq(api, sha(2), "CI", "Lint")))[0]
	evs := map[int64]store.WebhookEvent{}
	for _, e := range must(db.Webhooks(ctx, store.WebhookFilter{Limit: 10}))(t) {
		evs[e.ID] = e
	}
	if e := evs[p1.Event.ID]; e.Outcome != store.OutcomeSuperseded || !strings.Contains(e.Reason, "replaced while it waited for checks") {
		t.Errorf("older held push: %s %q; want superseded", e.Outcome, e.Reason)
	}
	if e := evs[p2.Event.ID]; e.Outcome != store.OutcomeAccepted {
		t.Errorf("newer held push: %s", e.Outcome)
	}
	if r := rec(checkEvent("c1", sha(1), "CI", true, api), checkEvent("c2", sha(1), "Lint", true, api)); len(r[0].Queued)+len(r[1].Queued) != 0 {
		t.Errorf("checks of the superseded commit queued %+v %+v", r[0].Queued, r[1].Queued)
	}
	if r := rec(checkEvent("c3", sha(2), "ci", true, api))[0]; len(r.Queued) != 0 {
		t.Errorf("one of two named checks queued %+v", r.Queued)
	}
	if r := rec(checkEvent("c4", sha(2), "Lint", true, api))[0]; len(r.Queued) != 1 {
		t.Errorf("both named checks passed, queued %+v", r.Queued)
	}

	// Results first, then the push: decided as it is held.
	rec(checkEvent("c5", sha(3), "CI", false, apiS))
	late := rec(push("github", "p3", sha(3), store.OutcomeAccepted, heldReq(apiS, sha(3))))[0]
	if q := late.Queued; len(q) != 1 || q[0].DeploymentID != 0 {
		t.Errorf("push after a failed result queued %+v", q)
	}
	if h := must(db.HeldPushes(ctx, true, 10))(t); len(h) != 0 {
		t.Errorf("still waiting: %+v; the recorded failure should have ended it", h)
	}
	rec(checkEvent("c6", sha(4), "CI", true, web))
	if q := rec(push("github", "p4", sha(4), store.OutcomeAccepted, heldReq(web, sha(4))))[0].Queued; len(q) != 1 || q[0].DeploymentID == 0 {
		t.Errorf("push after a passed result queued %+v, want a deployment", q)
	}
}
