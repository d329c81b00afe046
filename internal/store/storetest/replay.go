package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// testQueueReplay: a push that an earlier delivery, accepted or since
// superseded, already pushed is a replay when it comes under a new
// delivery id: recorded ignored, nothing queued, its reason naming the
// earlier delivery and how to deploy the commit on purpose. The same
// delivery id is still a redelivery, answered as the first time. Another
// ref, repository, forge or event type is another push, and an earlier
// delivery that queued nothing does not count.
func (s *suite) testQueueReplay(t *testing.T) {
	db, _ := s.fresh(t)
	r := replays{t: t, db: db}
	first := r.record(push("github", "d1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1))))[0]
	e1 := first.Event.ID
	r.isReplay("the same push under a new id", r.record(push("github", "d2", sha(1), store.OutcomeAccepted, queueReq(api, sha(1))))[0],
		fmt.Sprintf("webhook event %d (delivery d1, accepted)", e1))
	if again := r.record(push("github", "d1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1))))[0]; !again.Duplicate || again.Replay ||
		again.Event.ID != e1 || again.Event.Outcome != store.OutcomeAccepted {
		t.Errorf("the same push under its own id: duplicate %v replay %v, event %d %s; want the first answer (event %d, accepted)",
			again.Duplicate, again.Replay, again.Event.ID, again.Event.Outcome, e1)
	}
	if q := r.queued(); len(q) != 1 || q[0] != "api/production@"+sha(1) {
		t.Errorf("queued after the replay: %v, want d1's request only", q)
	}

	// A newer push takes the waiting request over: d1 is superseded, and
	// its push replayed is still a replay, of the first delivery.
	r.isNew("a newer push", r.record(push("github", "d3", sha(2), store.OutcomeAccepted, queueReq(api, sha(2))))[0])
	r.isReplay("the superseded push under a new id", r.record(push("github", "d4", sha(1), store.OutcomeAccepted, queueReq(api, sha(1))))[0],
		fmt.Sprintf("webhook event %d (delivery d1, superseded)", e1))
	if q := r.queued(); len(q) != 1 || q[0] != "api/production@"+sha(2) {
		t.Errorf("queued after replaying the superseded push: %v, want d3's request only", q)
	}

	// In one batch: the second delivery of a push is the replay.
	batch := r.record(push("github", "d5", sha(5), store.OutcomeAccepted, queueReq(api, sha(5))),
		push("github", "d6", sha(5), store.OutcomeAccepted, queueReq(api, sha(5))))
	r.isNew("the first of a push twice in a batch", batch[0])
	r.isReplay("the second of a push twice in a batch", batch[1], "delivery d5, recorded in the same batch")

	// Other pushes of the same commit.
	other := func(mod func(*store.Intake)) store.Intake {
		it := push("github", "", sha(5), store.OutcomeAccepted, queueReq(api, sha(5)))
		mod(&it)
		return it
	}
	for i, tc := range []struct {
		name string
		it   store.Intake
	}{
		{"another ref", other(func(it *store.Intake) { it.Event.Ref = "refs/heads/release" })},
		{"another repository", other(func(it *store.Intake) { it.Event.Repository = "acme/fork" })},
		{"another forge", other(func(it *store.Intake) { it.Event.Forge = "gitea" })},
		{"another event type", other(func(it *store.Intake) { it.Event.EventType = "pull_request" })},
	} {
		tc.it.Event.DeliveryID = fmt.Sprint("o", i)
		r.isNew(tc.name, r.record(tc.it)[0])
	}

	// An earlier delivery that queued nothing is no earlier push.
	r.record(push("github", "d7", sha(7), store.OutcomeIgnored))
	r.isNew("a push first delivered while nothing took it", r.record(push("github", "d8", sha(7), store.OutcomeAccepted, queueReq(api, sha(7))))[0])
}

// replays records intakes for testQueueReplay and checks their answers.
type replays struct {
	t  *testing.T
	db *store.DB
}

func (r replays) record(items ...store.Intake) []store.IntakeResult {
	r.t.Helper()
	res, err := r.db.RecordIntake(context.Background(), items)
	if err != nil {
		r.t.Fatalf("RecordIntake: %v", err)
	}
	return res
}

// queued lists the requests waiting, as target@commit.
func (r replays) queued() []string {
	r.t.Helper()
	q, err := r.db.QueuedDeployments(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, d := range q {
		out = append(out, d.Target.String()+"@"+d.NewSHA)
	}
	return out
}

// isReplay checks that res is a replay of the delivery of, ignored, with
// nothing queued, its reason saying how to deploy the commit on purpose.
func (r replays) isReplay(what string, res store.IntakeResult, of string) {
	t := r.t
	t.Helper()
	e := res.Event
	if !res.Replay || res.Duplicate || e.Outcome != store.OutcomeIgnored || len(res.Queued) != 0 || len(e.DeploymentIDs) != 0 {
		t.Errorf("%s: replay %v duplicate %v, %s, queued %v, linked %v; want a replay, ignored, nothing queued",
			what, res.Replay, res.Duplicate, e.Outcome, res.Queued, e.DeploymentIDs)
	}
	for _, says := range []string{of, "fraisier deploy api production --ref " + e.SHA, "fraisier rollback api production"} {
		if !strings.Contains(e.Reason, says) {
			t.Errorf("%s: reason %q does not say %q", what, e.Reason, says)
		}
	}
}

// isNew checks that res is a new push, accepted and queued.
func (r replays) isNew(what string, res store.IntakeResult) {
	t := r.t
	t.Helper()
	if res.Replay || res.Duplicate || res.Event.Outcome != store.OutcomeAccepted || len(res.Queued) != 1 {
		t.Errorf("%s: replay %v duplicate %v, %s (%s), queued %v; want a new push, accepted", what, res.Replay, res.Duplicate,
			res.Event.Outcome, res.Event.Reason, res.Queued)
	}
}
