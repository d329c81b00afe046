package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fraiseql/fraisier/internal/store"
)

func push(forge, delivery, sha string, outcome store.Outcome, reqs ...store.QueueRequest) store.Intake {
	return store.Intake{
		Event: store.WebhookEvent{Forge: forge, DeliveryID: delivery, EventType: "push",
			Repository: "acme/api", Ref: "refs/heads/main", SHA: sha, Outcome: outcome},
		Requests: reqs,
	}
}

func queueReq(t store.Target, sha string) store.QueueRequest {
	return store.QueueRequest{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice"}
}

// testQueueSupersedes: per target one request waits. A newer push in a
// later batch replaces it in place: the waiting deployment deploys the
// newer commit, and the replaced push's webhook is recorded superseded,
// linked to it. A newer push in the same batch folds the older one into
// its deployment the same way. A waiting request no webhook made is
// superseded as a deployment. Other targets are untouched, and only
// superseded deployments count in the statistics.
func (s *suite) testQueueSupersedes(t *testing.T) {
	db, _ := s.fresh(t)
	b := s.supersedesInOneBatch(t, db)
	res := s.supersedesInALaterBatch(t, db, b)
	s.supersededEvents(t, db, b, res)
	supersedesARequeue(t, db)
}

// firstBatch is what testQueueSupersedes's first batch queued.
type firstBatch struct {
	res      []store.IntakeResult
	d2, dWeb int64
}

// supersedesInOneBatch: a newer push in the same batch folds the older
// one into its deployment; another target's request stands.
func (s *suite) supersedesInOneBatch(t *testing.T, db *store.DB) firstBatch {
	ctx := context.Background()
	res, err := db.RecordIntake(ctx, []store.Intake{
		push("github", "d1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1)), queueReq(web, sha(1))),
		push("github", "d2", sha(2), store.OutcomeAccepted, queueReq(api, sha(2))),
		push("github", "d3", sha(3), store.OutcomeIgnored),
	})
	if err != nil {
		t.Fatalf("RecordIntake: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	first, second := res[0].Queued, res[1].Queued
	if len(first) != 2 || len(second) != 1 || len(res[2].Queued) != 0 {
		t.Fatalf("queued %v / %v / %v", first, second, res[2].Queued)
	}
	d2, dWeb := second[0].DeploymentID, first[1].DeploymentID
	// d1's api request was folded into d2's; its web request stands.
	if diff := cmp.Diff([]store.Queued{{Target: api, DeploymentID: d2, Folded: true}, {Target: web, DeploymentID: dWeb}}, first); diff != "" {
		t.Errorf("d1 queued (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.Queued{{Target: api, DeploymentID: d2}}, second); diff != "" {
		t.Errorf("d2 queued (-want +got):\n%s", diff)
	}
	if res[0].Event.Outcome != store.OutcomeAccepted || !cmp.Equal(res[0].Event.DeploymentIDs, []int64{d2, dWeb}) {
		t.Errorf("d1 recorded %s linked to %v, want accepted linked to [%d %d]", res[0].Event.Outcome, res[0].Event.DeploymentIDs, d2, dWeb)
	}
	if ds := s.deploymentsOf(t, db, api); len(ds) != 1 || ds[0].ID != d2 || ds[0].Status != store.StatusQueued {
		t.Errorf("api deployments after a batch of two pushes: %+v; want only d2's, queued", ds)
	}
	return firstBatch{res: res, d2: d2, dWeb: dWeb}
}

// supersedesInALaterBatch: a newer push in a later batch replaces the
// waiting request in place: the waiting deployment deploys the newer
// commit.
func (s *suite) supersedesInALaterBatch(t *testing.T, db *store.DB, b firstBatch) []store.IntakeResult {
	ctx := context.Background()
	d2, dWeb := b.d2, b.dWeb
	// A later batch: d4 replaces d2's waiting request in place; d5 is
	// folded into d6, which replaces d1's waiting web request in place.
	e1, e2 := b.res[0].Event.ID, b.res[1].Event.ID
	res, err := db.RecordIntake(ctx, []store.Intake{
		push("github", "d4", sha(4), store.OutcomeAccepted, queueReq(api, sha(4))),
		push("github", "d5", sha(5), store.OutcomeAccepted, queueReq(web, sha(5))),
		push("github", "d6", sha(6), store.OutcomeAccepted, queueReq(web, sha(6))),
	})
	if err != nil {
		t.Fatal(err)
	}
	e4, e6 := res[0].Event.ID, res[2].Event.ID
	if diff := cmp.Diff([][]store.Queued{
		{{Target: api, DeploymentID: d2, Replaced: e2}},
		{{Target: web, DeploymentID: dWeb, Folded: true}},
		{{Target: web, DeploymentID: dWeb, Replaced: e1}},
	}, [][]store.Queued{res[0].Queued, res[1].Queued, res[2].Queued}); diff != "" {
		t.Errorf("second batch queued (-want +got):\n%s", diff)
	}
	// The waiting deployments follow the newest pushes.
	for id, want := range map[int64]struct {
		sha   string
		event int64
	}{d2: {sha(4), e4}, dWeb: {sha(6), e6}} {
		d, err := db.Deployment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.StatusQueued || d.NewSHA != want.sha || d.WebhookID == nil || *d.WebhookID != want.event || d.FinishedAt != nil {
			t.Errorf("deployment %d after its request was replaced: %+v; want queued at %s for webhook event %d", id, d, want.sha, want.event)
		}
	}
	return res
}

// supersededEvents: the replaced and folded pushes' webhooks are recorded
// superseded, linked to the deployment that replaced them, and the
// queue holds one request per target, the newest.
func (s *suite) supersededEvents(t *testing.T, db *store.DB, b firstBatch, res []store.IntakeResult) {
	ctx := context.Background()
	d2, dWeb, e4 := b.d2, b.dWeb, res[0].Event.ID
	evs, err := db.Webhooks(ctx, store.WebhookFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Outcome store.Outcome
		Links   []int64
	}
	got := map[string]rec{}
	reason := map[string]string{}
	for _, e := range evs {
		got[e.DeliveryID] = rec{e.Outcome, e.DeploymentIDs}
		reason[e.DeliveryID] = e.Reason
	}
	sorted := func(ids ...int64) []int64 {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		return ids
	}
	for k, r := range got {
		r.Links = sorted(r.Links...)
		got[k] = r
	}
	// d1's own request (web) was replaced, so d1 is superseded, though it
	// is still linked to d2's deployment, which it was folded into.
	if diff := cmp.Diff(map[string]rec{
		"d1": {store.OutcomeSuperseded, sorted(d2, dWeb)},
		"d2": {store.OutcomeSuperseded, []int64{d2}},
		"d3": {store.OutcomeIgnored, nil},
		"d4": {store.OutcomeAccepted, []int64{d2}},
		"d5": {store.OutcomeSuperseded, []int64{dWeb}},
		"d6": {store.OutcomeAccepted, []int64{dWeb}},
	}, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("webhook events (-want +got):\n%s", diff)
	}
	if r := reason["d2"]; !strings.Contains(r, fmt.Sprint("webhook event ", e4)) || !strings.Contains(r, fmt.Sprint("deployment ", d2)) {
		t.Errorf("replaced delivery's reason %q names neither the webhook event that replaced it nor the deployment", r)
	}
	if r := reason["d5"]; !strings.Contains(r, "delivery d6") || !strings.Contains(r, sha(6)[:12]) {
		t.Errorf("folded delivery's reason %q names neither the newer delivery d6 nor its commit", r)
	}
	if r := res[1].Event; r.Outcome != store.OutcomeSuperseded || r.Reason != reason["d5"] {
		t.Errorf("d5 answered %s %q, want what was recorded: superseded %q", r.Outcome, r.Reason, reason["d5"])
	}
	if ds := s.deploymentsOf(t, db, web); len(ds) != 1 {
		t.Errorf("web deployments: %+v; want d1's only, which d6's push took over", ds)
	}

	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waiting := map[store.Target]string{}
	for _, d := range queued {
		if _, dup := waiting[d.Target]; dup {
			t.Errorf("two requests wait for %s", d.Target)
		}
		waiting[d.Target] = d.NewSHA
	}
	if diff := cmp.Diff(map[store.Target]string{api: sha(4), web: sha(6)}, waiting); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}
}

// supersedesARequeue: a waiting request no webhook made is superseded as
// a deployment, and only it counts in the statistics.
func supersedesARequeue(t *testing.T, db *store.DB) {
	ctx := context.Background()
	// A request no webhook queued (a requeue after a crash) has no event
	// to keep its record: a push supersedes it as a deployment.
	worker := store.Target{Fraise: "worker", Environment: "production"}
	rq, err := db.Enqueue(ctx, store.QueueRequest{Target: worker, SHA: sha(7), Ref: "refs/heads/main", Trigger: store.TriggerRequeue, Actor: "recovery"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.RecordIntake(ctx, []store.Intake{push("github", "d8", sha(8), store.OutcomeAccepted, queueReq(worker, sha(8)))})
	if err != nil {
		t.Fatal(err)
	}
	if q := res[0].Queued; len(q) != 1 || q[0].Superseded != rq.DeploymentID || q[0].Replaced != 0 || q[0].DeploymentID == rq.DeploymentID {
		t.Errorf("push over a requeued request: %+v; want a deployment of its own superseding %d", q, rq.DeploymentID)
	}
	if old, err := db.Deployment(ctx, rq.DeploymentID); err != nil || old.Status != store.StatusSuperseded || old.FinishedAt == nil {
		t.Errorf("requeued request after a push: %+v %v; want superseded and finished", old, err)
	}

	// Only the requeued request was a deployment superseded: the replaced
	// webhook requests and the folded ones never were deployments.
	stats, err := db.Stats(ctx, store.StatsFilter{})
	if err != nil {
		t.Fatal(err)
	}
	superseded := map[store.Target]int64{}
	for _, st := range stats {
		if st.Target != (store.Target{}) {
			superseded[st.Target] = st.ByStatus[store.StatusSuperseded]
		}
	}
	if diff := cmp.Diff(map[store.Target]int64{worker: 1}, superseded, cmpopts.IgnoreMapEntries(func(_ store.Target, n int64) bool { return n == 0 })); diff != "" {
		t.Errorf("superseded in the statistics (-want +got):\n%s", diff)
	}
}

// deploymentsOf is every deployment of target t, newest first.
func (s *suite) deploymentsOf(t *testing.T, db *store.DB, target store.Target) []store.Deployment {
	t.Helper()
	ds, err := db.Deployments(context.Background(), store.DeploymentFilter{Fraise: target.Fraise, Environment: target.Environment, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// testQueueClaim: a claim runs the request once; a superseded or claimed
// request cannot be claimed; EnqueueIfIdle never replaces a waiting one.
func (s *suite) testQueueClaim(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	q1, err := db.Enqueue(ctx, queueReq(api, sha(1)))
	if err != nil {
		t.Fatal(err)
	}
	q2, err := db.Enqueue(ctx, queueReq(api, sha(2)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimQueued(ctx, q1.DeploymentID, store.Claim{Host: "h", PID: 1}); !errors.Is(err, store.ErrNotQueued) {
		t.Fatalf("claim of a superseded request: %v, want ErrNotQueued", err)
	}
	d, err := db.ClaimQueued(ctx, q2.DeploymentID, store.Claim{Host: "h", PID: 2, OldSHA: sha(9)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusRunning || d.Host != "h" || d.PID != 2 || d.OldSHA != sha(9) || d.NewSHA != sha(2) {
		t.Errorf("claimed: %+v", d)
	}
	if _, err := db.ClaimQueued(ctx, q2.DeploymentID, store.Claim{Host: "h", PID: 3}); !errors.Is(err, store.ErrNotQueued) {
		t.Errorf("second claim: %v, want ErrNotQueued", err)
	}
	if _, err := db.ClaimQueued(ctx, 999999, store.Claim{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("claim of an unknown deployment: %v, want ErrNotFound", err)
	}
	// Running, one may wait.
	q3, ok, err := db.EnqueueIfIdle(ctx, queueReq(api, sha(3)))
	if err != nil || !ok {
		t.Fatalf("EnqueueIfIdle while one runs: %v %v", ok, err)
	}
	if _, ok, err := db.EnqueueIfIdle(ctx, queueReq(api, sha(4))); err != nil || ok {
		t.Fatalf("EnqueueIfIdle while one waits: queued=%v %v", ok, err)
	}
	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].ID != q3.DeploymentID {
		t.Errorf("queue: %v", queued)
	}
	for _, bad := range []store.QueueRequest{
		{Target: api},
		{Target: api, SHA: "not-a-sha"},
		{Target: store.Target{Fraise: "api"}, SHA: sha(1)},
	} {
		if _, err := db.Enqueue(ctx, bad); err == nil {
			t.Errorf("Enqueue(%+v) accepted", bad)
		}
	}
}

// testQueuePartTakenOver: a push queued for two targets, one of whose
// requests a newer push takes over, stays accepted (the other still
// deploys its commit), and its reason says which deployment no longer
// does; once the other is taken over too, it is superseded.
func (s *suite) testQueuePartTakenOver(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	event := func(id int64) store.WebhookEvent {
		t.Helper()
		evs, err := db.Webhooks(ctx, store.WebhookFilter{BeforeID: id + 1, Limit: 1})
		if err != nil || len(evs) != 1 || evs[0].ID != id {
			t.Fatalf("webhook event %d: %+v, %v", id, evs, err)
		}
		return evs[0]
	}
	record := func(it store.Intake) store.IntakeResult {
		t.Helper()
		res, err := db.RecordIntake(ctx, []store.Intake{it})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	both := record(push("github", "both", sha(1), store.OutcomeAccepted, queueReq(api, sha(1)), queueReq(web, sha(1))))
	onAPI := record(push("github", "api-only", sha(2), store.OutcomeAccepted, queueReq(api, sha(2))))
	e := event(both.Event.ID)
	want := fmt.Sprintf("for one of its targets: replaced while it waited by webhook event %d (commit %s); deployment %d deploys that commit instead",
		onAPI.Event.ID, sha(2)[:12], both.Queued[0].DeploymentID)
	if e.Outcome != store.OutcomeAccepted || e.Reason != want {
		t.Errorf("the push half taken over: %s %q, want accepted %q", e.Outcome, e.Reason, want)
	}
	onWeb := record(push("github", "web-only", sha(3), store.OutcomeAccepted, queueReq(web, sha(3))))
	e = event(both.Event.ID)
	want = fmt.Sprintf("replaced while it waited by webhook event %d (commit %s); deployment %d deploys that commit instead",
		onWeb.Event.ID, sha(3)[:12], both.Queued[1].DeploymentID)
	if e.Outcome != store.OutcomeSuperseded || e.Reason != want {
		t.Errorf("the push wholly taken over: %s %q, want superseded %q", e.Outcome, e.Reason, want)
	}
}
