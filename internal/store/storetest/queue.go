package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fraiseql/fraisier/internal/store"
)

func push(forge, delivery, sha string, outcome string, reqs ...store.QueueRequest) store.Intake {
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
	ctx := context.Background()
	db, _ := s.fresh(t)
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

	// A later batch: d4 replaces d2's waiting request in place; d5 is
	// folded into d6, which replaces d1's waiting web request in place.
	e1, e2 := res[0].Event.ID, res[1].Event.ID
	res, err = db.RecordIntake(ctx, []store.Intake{
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
	evs, err := db.Webhooks(ctx, store.WebhookFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Outcome string
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

	// A request no webhook queued (a requeue after a crash) has no event
	// to keep its record: a push supersedes it as a deployment.
	worker := store.Target{Fraise: "worker", Environment: "production"}
	rq, err := db.Enqueue(ctx, store.QueueRequest{Target: worker, SHA: sha(7), Ref: "refs/heads/main", Trigger: store.TriggerRequeue, Actor: "recovery"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = db.RecordIntake(ctx, []store.Intake{push("github", "d8", sha(8), store.OutcomeAccepted, queueReq(worker, sha(8)))})
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

// testQueueDuplicateDelivery: a redelivery gets the original deployments
// and queues nothing.
func (s *suite) testQueueDuplicateDelivery(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	res, err := db.RecordIntake(ctx, []store.Intake{push("gitlab", "uuid-1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1)))})
	if err != nil {
		t.Fatal(err)
	}
	again, err := db.RecordIntake(ctx, []store.Intake{push("gitlab", "uuid-1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1)))})
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Duplicate {
		t.Fatal("redelivery not recognised")
	}
	if diff := cmp.Diff(res[0].Queued, again[0].Queued); diff != "" {
		t.Errorf("redelivery answer (-first +again):\n%s", diff)
	}
	if again[0].Event.ID != res[0].Event.ID {
		t.Errorf("redelivery event %d, want the first, %d", again[0].Event.ID, res[0].Event.ID)
	}
	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].ID != res[0].Queued[0].DeploymentID {
		t.Errorf("queue after a redelivery: %v", queued)
	}
	// The same id from another forge is another delivery.
	other, err := db.RecordIntake(ctx, []store.Intake{push("github", "uuid-1", sha(2), store.OutcomeIgnored)})
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Duplicate {
		t.Error("a GitHub delivery was taken for a GitLab one")
	}

	// A delivery twice in one batch: the second copy is answered with what
	// the first queued.
	twice, err := db.RecordIntake(ctx, []store.Intake{
		push("gitlab", "uuid-2", sha(2), store.OutcomeAccepted, queueReq(api, sha(2))),
		push("gitlab", "uuid-2", sha(2), store.OutcomeAccepted, queueReq(api, sha(2))),
	})
	if err != nil {
		t.Fatal(err)
	}
	if twice[0].Duplicate || !twice[1].Duplicate || twice[1].Event.ID != twice[0].Event.ID ||
		len(twice[1].Queued) != 1 || twice[1].Queued[0].DeploymentID != twice[0].Queued[0].DeploymentID || twice[1].Queued[0].Folded {
		t.Errorf("a delivery twice in a batch: %+v then %+v; want the second a duplicate of the first", twice[0], twice[1])
	}

	// A redelivery newer in its batch than a new push for the same target
	// queues nothing, so the new push is not folded into it: it stands.
	mixed, err := db.RecordIntake(ctx, []store.Intake{
		push("gitlab", "uuid-3", sha(3), store.OutcomeAccepted, queueReq(api, sha(3))),
		push("gitlab", "uuid-1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1))),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !mixed[1].Duplicate || mixed[0].Duplicate || mixed[0].Event.Outcome != store.OutcomeAccepted || len(mixed[0].Queued) != 1 ||
		mixed[0].Queued[0].Folded || mixed[0].Queued[0].Replaced != twice[0].Event.ID || mixed[0].Queued[0].DeploymentID != twice[0].Queued[0].DeploymentID {
		t.Fatalf("a new push before a redelivery in one batch: %+v / %+v; want it queued, replacing uuid-2's request", mixed[0], mixed[1])
	}
	evs, err := db.Webhooks(ctx, store.WebhookFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.DeliveryID == "uuid-3" && (e.Outcome != store.OutcomeAccepted || e.Reason != "" ||
			!cmp.Equal(e.DeploymentIDs, []int64{mixed[0].Queued[0].DeploymentID})) {
			t.Errorf("uuid-3 recorded %+v; want accepted, linked to its own deployment", e)
		}
	}
	queued, err = db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].NewSHA != sha(3) {
		t.Errorf("queue after a redelivery newer than a push: %+v; want uuid-3's", queued)
	}

	// A redelivery of a delivery that was folded: the same answer, the
	// deployment it was folded into.
	folded, err := db.RecordIntake(ctx, []store.Intake{
		push("gitlab", "uuid-4", sha(4), store.OutcomeAccepted, queueReq(api, sha(4))),
		push("gitlab", "uuid-5", sha(5), store.OutcomeAccepted, queueReq(api, sha(5))),
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err = db.RecordIntake(ctx, []store.Intake{push("gitlab", "uuid-4", sha(4), store.OutcomeAccepted, queueReq(api, sha(4)))})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Queued{{Target: api, DeploymentID: folded[1].Queued[0].DeploymentID, Folded: true}}
	if diff := cmp.Diff(want, folded[0].Queued); diff != "" {
		t.Errorf("folded delivery (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, again[0].Queued); diff != "" || !again[0].Duplicate || again[0].Event.Outcome != store.OutcomeSuperseded {
		t.Errorf("redelivery of a folded delivery: %+v (-want +got queued):\n%s", again[0], diff)
	}
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

// testQueueConcurrentIntake: many deliveries for one target from several
// goroutines leave exactly one request waiting, carrying the commit of the
// delivery recorded last, and every delivery recorded. Alone in its batch,
// each push replaces the waiting request in place; in batches of several,
// each batch's newest does, and the others are folded into it. Either
// way the target has one deployment, and no superseded one.
func (s *suite) testQueueConcurrentIntake(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	const (
		n       = 40
		batches = 10 // of each (n / batches deliveries)
	)
	intake := func(prefix string, first, size int) []store.Intake {
		items := make([]store.Intake, size)
		for k := range items {
			i := first + k
			items[k] = push("github", fmt.Sprint(prefix, i), sha(i+1), store.OutcomeAccepted, queueReq(api, sha(i+1)))
		}
		return items
	}
	run := func(calls int, items func(int) []store.Intake) [][]store.IntakeResult {
		var wg sync.WaitGroup
		out := make([][]store.IntakeResult, calls)
		errs := make([]error, calls)
		for c := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[c], errs[c] = db.RecordIntake(ctx, items(c))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	check := func(events int) store.Deployment {
		t.Helper()
		all, err := db.Deployments(ctx, store.DeploymentFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].Status != store.StatusQueued {
			t.Fatalf("deployments %+v; want one, queued", all)
		}
		d := all[0]
		evs, err := db.Webhooks(ctx, store.WebhookFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != events {
			t.Errorf("%d webhook events recorded, want %d", len(evs), events)
		}
		var accepted []store.WebhookEvent
		for _, e := range evs {
			if !cmp.Equal(e.DeploymentIDs, []int64{d.ID}) {
				t.Errorf("webhook event %s linked to %v, want deployment %d", e.DeliveryID, e.DeploymentIDs, d.ID)
			}
			switch e.Outcome {
			case store.OutcomeAccepted:
				accepted = append(accepted, e)
			case store.OutcomeSuperseded:
			default:
				t.Errorf("webhook event %s recorded %s", e.DeliveryID, e.Outcome)
			}
		}
		if len(accepted) != 1 || d.WebhookID == nil || *d.WebhookID != accepted[0].ID || d.NewSHA != accepted[0].SHA {
			t.Errorf("deployment %+v, accepted %+v; want one accepted delivery, whose commit the deployment carries", d, accepted)
		}
		stats, err := db.Stats(ctx, store.StatsFilter{Fraise: api.Fraise, Environment: api.Environment})
		if err != nil {
			t.Fatal(err)
		}
		if len(stats) > 1 || len(stats) == 1 && stats[0].ByStatus[store.StatusSuperseded] != 0 {
			t.Errorf("statistics %+v; want no superseded deployment", stats)
		}
		// The rollup the intake kept is the one derived from the history.
		if err := db.RebuildStats(ctx); err != nil {
			t.Fatal(err)
		}
		rebuilt, err := db.Stats(ctx, store.StatsFilter{Fraise: api.Fraise, Environment: api.Environment})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stats, rebuilt, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("statistics kept by the intake (-) and rebuilt from the history (+):\n%s", diff)
		}
		return d
	}

	// One delivery a transaction.
	run(n, func(c int) []store.Intake { return intake("c", c, 1) })
	check(n)

	// Batches of n/batches: each batch's older deliveries are folded into
	// its newest, which replaced the waiting request or was replaced.
	results := run(batches, func(c int) []store.Intake { return intake("b", n+c*(n/batches), n/batches) })
	d := check(2 * n)
	for _, res := range results {
		newest := res[len(res)-1]
		if len(newest.Queued) != 1 || newest.Queued[0].Folded || newest.Queued[0].DeploymentID != d.ID || newest.Queued[0].Replaced == 0 {
			t.Errorf("newest of a batch: %+v; want queued as deployment %d, replacing the request waiting", newest, d.ID)
		}
		for _, r := range res[:len(res)-1] {
			if r.Event.Outcome != store.OutcomeSuperseded || len(r.Queued) != 1 || !r.Queued[0].Folded ||
				r.Queued[0].DeploymentID != d.ID || !cmp.Equal(r.Event.DeploymentIDs, []int64{d.ID}) {
				t.Errorf("older delivery of a batch: %+v; want superseded, folded into deployment %d", r, d.ID)
			}
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

// testQueueConcurrentTakeover: a push queued for two targets; two newer
// pushes, one per target, recorded at once (two transactions, as two
// fraisier nodes on one PostgreSQL do) each take one of its requests
// over. Neither transaction sees the other's takeover until it commits,
// yet the first push must end superseded, not accepted with nothing of
// it left standing; and neither transaction may fail. In odd rounds the
// first of the two pushes goes to both targets: holding one target and
// the first push's event, it waits for the other target, which the
// second holds (and deadlocks if the second then waits for the event).
func (s *suite) testQueueConcurrentTakeover(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	const rounds = 30
	for i := range rounds {
		x := store.Target{Fraise: "x", Environment: fmt.Sprint("e", i)}
		y := store.Target{Fraise: "y", Environment: fmt.Sprint("e", i)}
		first, err := db.RecordIntake(ctx, []store.Intake{push("github", fmt.Sprint("both-", i), sha(3*i+1), store.OutcomeAccepted,
			queueReq(x, sha(3*i+1)), queueReq(y, sha(3*i+1)))})
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		pushes := [][]store.Target{{x}, {y}}
		if i%2 == 1 {
			pushes[0] = []store.Target{x, y}
		}
		for k, targets := range pushes {
			wg.Go(func() {
				<-start
				var reqs []store.QueueRequest
				for _, target := range targets {
					reqs = append(reqs, queueReq(target, sha(3*i+2+k)))
				}
				_, errs[k] = db.RecordIntake(ctx, []store.Intake{push("github", fmt.Sprint("newer-", i, "-", k), sha(3*i+2+k), store.OutcomeAccepted, reqs...)})
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
		evs, err := db.Webhooks(ctx, store.WebhookFilter{BeforeID: first[0].Event.ID + 1, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].ID != first[0].Event.ID {
			t.Fatalf("round %d: webhook events %+v", i, evs)
		}
		if evs[0].Outcome != store.OutcomeSuperseded {
			t.Errorf("round %d: the push both of whose requests were taken over is %s (%s), want superseded", i, evs[0].Outcome, evs[0].Reason)
		}
	}
}

// testQueueIntakeVsClaim: a push recorded while a worker claims (or
// finishes) the request it supersedes never fails: both lock the target
// before its deployments, so PostgreSQL finds no deadlock between them.
func (s *suite) testQueueIntakeVsClaim(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	intake := func(i int) store.Intake {
		return push("github", fmt.Sprint("race-", i), sha(i+1), store.OutcomeAccepted, queueReq(api, sha(i+1)))
	}
	res, err := db.RecordIntake(ctx, []store.Intake{intake(0)})
	if err != nil {
		t.Fatal(err)
	}
	waiting := res[0].Queued[0].DeploymentID
	for i := 1; i <= 60; i++ {
		var (
			wg         sync.WaitGroup
			ierr, cerr error
			next       []store.IntakeResult
		)
		wg.Add(2)
		go func() { defer wg.Done(); next, ierr = db.RecordIntake(ctx, []store.Intake{intake(i)}) }()
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, cerr = db.ClaimQueued(ctx, waiting, store.Claim{Host: "h", PID: 1})
			} else {
				cerr = db.FinishDeployment(ctx, waiting, store.Finish{Status: store.StatusFailed, Error: "test"})
			}
		}()
		wg.Wait()
		if ierr != nil {
			t.Fatalf("round %d: intake failed beside a claim or finish: %v", i, ierr)
		}
		if cerr != nil && !errors.Is(cerr, store.ErrNotQueued) && !errors.Is(cerr, store.ErrFinished) {
			t.Fatalf("round %d: claim or finish failed beside an intake: %v", i, cerr)
		}
		waiting = next[0].Queued[0].DeploymentID
	}
}
