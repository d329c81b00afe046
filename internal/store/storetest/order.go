package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fraiseql/fraisier/internal/store"
)

// The example's shape: an etl that runs hello/production's code. Its name
// sorts before the api's, as in examples/fraises.yaml, so the intake
// queues it first.
var (
	code = store.Target{Fraise: "hello", Environment: "production"}
	etl  = store.Target{Fraise: "hello-etl", Environment: "production"}
)

// orderedPush is a push of sha routed to targets; etl's request runs
// after code's.
func orderedPush(delivery, sha string, targets ...store.Target) store.Intake {
	var reqs []store.QueueRequest
	for _, t := range targets {
		r := queueReq(t, sha)
		if t == etl {
			r.After = []store.Target{code}
		}
		reqs = append(reqs, r)
	}
	return push("github", delivery, sha, store.OutcomeAccepted, reqs...)
}

// queuedFor returns the deployment res queued for target.
func queuedFor(t *testing.T, res store.IntakeResult, target store.Target) int64 {
	t.Helper()
	for _, q := range res.Queued {
		if q.Target == target {
			return q.DeploymentID
		}
	}
	t.Fatalf("nothing queued for %s: %+v", target, res.Queued)
	return 0
}

func settle(t *testing.T, db *store.DB) store.QueueOrder {
	t.Helper()
	o, err := db.SettleQueue(context.Background())
	if err != nil {
		t.Fatalf("SettleQueue: %v", err)
	}
	return o
}

func claim(db *store.DB, id int64) error {
	_, err := db.ClaimQueued(context.Background(), id, store.Claim{Host: "h", PID: 1})
	return err
}

// testOrderWaits: a request ordered after another of its push is claimed
// only once that one has deployed (succeeded, or skipped as already
// current); when it finished otherwise, SettleQueue ends the request
// skipped, saying why, on the deployment and on the push's event, once.
func (s *suite) testOrderWaits(t *testing.T) {
	tests := []struct {
		name string
		fin  store.Finish
		runs bool
	}{
		{"succeeded", store.Finish{Status: store.StatusSucceeded, NewSHA: sha(1), Release: "r1"}, true},
		{"already current", store.Finish{Status: store.StatusSkipped}, true},
		{"refused", store.Finish{Status: store.StatusSkipped, Error: "refused: not the tip of refs/heads/main"}, false},
		{"failed", store.Finish{Status: store.StatusFailed, Error: "install: exit 1"}, false},
		{"rolled back", store.Finish{Status: store.StatusRolledBack, Error: "health: 500"}, false},
		{"rollback failed", store.Finish{Status: store.StatusRollbackFailed, Error: "health: 500"}, false},
		{"interrupted", store.Finish{Status: store.StatusInterrupted, Error: "interrupted"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := s.fresh(t)
			res, err := db.RecordIntake(ctx, []store.Intake{orderedPush("d1", sha(1), code, etl)})
			if err != nil {
				t.Fatal(err)
			}
			a, e := queuedFor(t, res[0], code), queuedFor(t, res[0], etl)
			want := map[int64][]store.Wait{e: {{Target: code, ID: a, Status: store.StatusQueued}}}
			if diff := cmp.Diff(want, settle(t, db).Waiting); diff != "" {
				t.Errorf("waiting after the push (-want +got):\n%s", diff)
			}
			if err := claim(db, e); !errors.Is(err, store.ErrNotReady) || !strings.Contains(err.Error(), fmt.Sprint("deployment ", a, " of hello/production")) {
				t.Fatalf("claim of the etl before the api ran: %v; want ErrNotReady naming deployment %d", err, a)
			}
			if err := claim(db, a); err != nil {
				t.Fatal(err)
			}
			if err := claim(db, e); !errors.Is(err, store.ErrNotReady) {
				t.Fatalf("claim of the etl while the api runs: %v; want ErrNotReady", err)
			}
			if err := db.FinishDeployment(ctx, a, tc.fin); err != nil {
				t.Fatal(err)
			}
			o := settle(t, db)
			if len(o.Waiting) != 0 {
				t.Errorf("still waiting once the api finished: %+v", o.Waiting)
			}
			if tc.runs {
				if len(o.Skipped) != 0 {
					t.Errorf("skipped %+v; want none", o.Skipped)
				}
				if err := claim(db, e); err != nil {
					t.Errorf("claim of the etl once the api %s: %v", tc.name, err)
				}
				return
			}
			if len(o.Skipped) != 1 || o.Skipped[0].ID != e || o.Skipped[0].Status != store.StatusSkipped ||
				!strings.Contains(o.Skipped[0].Error, fmt.Sprint("deployment ", a, " of hello/production")) {
				t.Fatalf("skipped %+v; want deployment %d skipped, naming deployment %d", o.Skipped, e, a)
			}
			if d, err := db.Deployment(ctx, e); err != nil || d.Status != store.StatusSkipped || d.FinishedAt == nil || d.Error != o.Skipped[0].Error {
				t.Errorf("etl deployment %+v %v; want skipped with its reason", d, err)
			}
			ev := webhookEvent(t, db, "d1")
			if ev.Outcome != store.OutcomeAccepted || !strings.Contains(ev.Reason, "for hello-etl/production: not run") {
				t.Errorf("the push's event: %s %q; want accepted, saying the etl did not run", ev.Outcome, ev.Reason)
			}
			if again := settle(t, db); len(again.Skipped) != 0 {
				t.Errorf("skipped twice: %+v", again.Skipped)
			}
			if err := claim(db, e); !errors.Is(err, store.ErrNotQueued) {
				t.Errorf("claim of the skipped etl: %v; want ErrNotQueued", err)
			}
		})
	}
}

func webhookEvent(t *testing.T, db *store.DB, delivery string) store.WebhookEvent {
	t.Helper()
	evs, err := db.Webhooks(context.Background(), store.WebhookFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.DeliveryID == delivery {
			return e
		}
	}
	t.Fatalf("no webhook event for delivery %s", delivery)
	return store.WebhookEvent{}
}

// testOrderTakeover: a newer push that takes a waiting request over
// orders it anew: it waits for the newer push's request of the api, and
// no longer for the older one's; a push that queues nothing for the api
// leaves it nothing to wait for. Within a batch, the request waits for the
// deployment its push's api request was folded into.
func (s *suite) testOrderTakeover(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	res, err := db.RecordIntake(ctx, []store.Intake{orderedPush("d1", sha(1), code, etl)})
	if err != nil {
		t.Fatal(err)
	}
	a1, e := queuedFor(t, res[0], code), queuedFor(t, res[0], etl)
	if err := claim(db, a1); err != nil {
		t.Fatal(err)
	}
	res, err = db.RecordIntake(ctx, []store.Intake{orderedPush("d2", sha(2), code, etl)})
	if err != nil {
		t.Fatal(err)
	}
	a2 := queuedFor(t, res[0], code)
	if got := queuedFor(t, res[0], etl); got != e || a2 == a1 {
		t.Fatalf("second push queued api %d, etl %d; want a new api request and the etl's taken over (%d)", a2, got, e)
	}
	want := map[int64][]store.Wait{e: {{Target: code, ID: a2, Status: store.StatusQueued}}}
	if diff := cmp.Diff(want, settle(t, db).Waiting); diff != "" {
		t.Errorf("waiting after the takeover (-want +got):\n%s", diff)
	}
	// The first push's api deployment failing says nothing of the second's.
	if err := db.FinishDeployment(ctx, a1, store.Finish{Status: store.StatusFailed, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	o := settle(t, db)
	if len(o.Skipped) != 0 || cmp.Diff(want, o.Waiting) != "" {
		t.Errorf("after the first push's api failed: %+v; want the etl still waiting for %d", o, a2)
	}
	// A push that queues nothing for the api takes the request over with
	// nothing to wait for.
	res, err = db.RecordIntake(ctx, []store.Intake{orderedPush("d3", sha(3), etl)})
	if err != nil {
		t.Fatal(err)
	}
	if got := queuedFor(t, res[0], etl); got != e {
		t.Fatalf("third push queued etl %d, want %d taken over", got, e)
	}
	if o := settle(t, db); len(o.Waiting) != 0 || len(o.Skipped) != 0 {
		t.Errorf("after a push of the etl alone: %+v; want nothing waiting", o)
	}
	if err := claim(db, e); err != nil {
		t.Errorf("claim of the etl a push of its own took over: %v", err)
	}

	// One batch: d5's api request replaces d4's; d4's etl waits for it.
	db, _ = s.fresh(t)
	res, err = db.RecordIntake(ctx, []store.Intake{orderedPush("d4", sha(4), code, etl), orderedPush("d5", sha(5), code)})
	if err != nil {
		t.Fatal(err)
	}
	a, e := queuedFor(t, res[1], code), queuedFor(t, res[0], etl)
	want = map[int64][]store.Wait{e: {{Target: code, ID: a, Status: store.StatusQueued}}}
	if diff := cmp.Diff(want, settle(t, db).Waiting); diff != "" {
		t.Errorf("waiting after one batch (-want +got):\n%s", diff)
	}
}

// testOrderSeveralNodes: two handles on one database, as two nodes share
// PostgreSQL: the etl is claimed on one only once the api, run by the
// other, has deployed; when the api fails, both settling at once skip
// the etl once.
func (s *suite) testOrderSeveralNodes(t *testing.T) {
	ctx := context.Background()
	node1, _ := s.fresh(t)
	node2, err := store.Open(ctx, node1.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node2.Close() })

	for round, fails := range []bool{true, false} {
		delivery := fmt.Sprint("d", round)
		res, err := node1.RecordIntake(ctx, []store.Intake{orderedPush(delivery, sha(round+1), code, etl)})
		if err != nil {
			t.Fatal(err)
		}
		a, e := queuedFor(t, res[0], code), queuedFor(t, res[0], etl)
		if err := claim(node2, a); err != nil {
			t.Fatal(err)
		}
		if err := claim(node1, e); !errors.Is(err, store.ErrNotReady) {
			t.Fatalf("claim on node 1 while node 2 runs the api: %v; want ErrNotReady", err)
		}
		if !fails {
			if err := node2.FinishDeployment(ctx, a, store.Finish{Status: store.StatusSucceeded, NewSHA: sha(round + 1), Release: "r"}); err != nil {
				t.Fatal(err)
			}
			if err := claim(node1, e); err != nil {
				t.Errorf("claim on node 1 once node 2's api deployed: %v", err)
			}
			continue
		}
		if err := node2.FinishDeployment(ctx, a, store.Finish{Status: store.StatusFailed, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			orders  [2]store.QueueOrder
			errs    [2]error
			handles = [2]*store.DB{node1, node2}
		)
		for i := range handles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				orders[i], errs[i] = handles[i].SettleQueue(ctx)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("SettleQueue on both nodes: %v, %v", errs[0], errs[1])
		}
		if n := len(orders[0].Skipped) + len(orders[1].Skipped); n != 1 {
			t.Errorf("the two nodes skipped %d deployments, want 1: %+v / %+v", n, orders[0].Skipped, orders[1].Skipped)
		}
		if r := webhookEvent(t, node1, delivery).Reason; strings.Count(r, "not run") != 1 {
			t.Errorf("the push's reason %q; want the etl's fate said once", r)
		}
	}
}

// testFinishFollowed: a deployment whose code another environment runs
// queues, when it succeeds and in the same transaction, that
// environment's follow-up; not when it fails, and not when a request
// already waits there. It finishes the deployment as FinishDeployment does.
func (s *suite) testFinishFollowed(t *testing.T) {
	follow := store.QueueRequest{Target: etl, SHA: sha(7), Ref: "hello/production", Trigger: store.TriggerFollow, Actor: "hello/production deployment"}
	tests := []struct {
		name    string
		fin     store.Finish
		waiting bool
		queues  bool
	}{
		{"succeeded", store.Finish{Status: store.StatusSucceeded, NewSHA: sha(7), Release: "r7"}, false, true},
		{"failed", store.Finish{Status: store.StatusFailed, Error: "boom"}, false, false},
		{"a request waits", store.Finish{Status: store.StatusSucceeded, NewSHA: sha(7), Release: "r7"}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := s.fresh(t)
			var waiting int64
			if tc.waiting {
				q, err := db.Enqueue(ctx, queueReq(etl, sha(6)))
				if err != nil {
					t.Fatal(err)
				}
				waiting = q.DeploymentID
			}
			id, err := db.StartDeployment(ctx, store.Deployment{Target: code, Trigger: store.TriggerCLI, Actor: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			q, err := db.FinishFollowed(ctx, id, tc.fin, []store.QueueRequest{follow})
			if err != nil {
				t.Fatal(err)
			}
			d, err := db.Deployment(ctx, id)
			if err != nil || d.Status != tc.fin.Status {
				t.Errorf("deployment %+v %v; want %s", d, err, tc.fin.Status)
			}
			queued, err := db.QueuedDeployments(ctx)
			if err != nil {
				t.Fatal(err)
			}
			type req struct {
				ID      int64
				Trigger store.Trigger
				SHA     string
			}
			var got []req
			for _, d := range queued {
				got = append(got, req{d.ID, d.Trigger, d.NewSHA})
			}
			var want []req
			switch {
			case tc.waiting:
				want = []req{{waiting, store.TriggerWebhook, sha(6)}}
			case tc.queues:
				if len(q) != 1 || q[0].Target != etl {
					t.Fatalf("FinishFollowed queued %+v; want the etl's follow-up", q)
				}
				want = []req{{q[0].DeploymentID, store.TriggerFollow, sha(7)}}
			}
			if !tc.queues && len(q) != 0 {
				t.Errorf("FinishFollowed queued %+v; want nothing", q)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("queue (-want +got):\n%s", diff)
			}
			if _, err := db.FinishFollowed(ctx, id, tc.fin, []store.QueueRequest{follow}); !errors.Is(err, store.ErrFinished) {
				t.Errorf("finishing twice: %v; want ErrFinished", err)
			}
		})
	}
}

// testOrderNoDeadlock: pushes that queue the etl and the api (locking the
// etl's target first: its name sorts first) run at the same time as the
// api's deployments finish and queue the etl's follow-up: on PostgreSQL
// neither may wait for the other in a cycle.
func (s *suite) testOrderNoDeadlock(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	const rounds = 20
	follow := store.QueueRequest{Target: etl, SHA: sha(1), Trigger: store.TriggerFollow, Actor: "follow"}
	for i := range rounds {
		id, err := db.StartDeployment(ctx, store.Deployment{Target: code, Trigger: store.TriggerCLI})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var errs [2]error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, errs[0] = db.RecordIntake(ctx, []store.Intake{orderedPush(fmt.Sprint("d", i), sha(i+2), code, etl)})
		}()
		go func() {
			defer wg.Done()
			_, errs[1] = db.FinishFollowed(ctx, id, store.Finish{Status: store.StatusSucceeded, NewSHA: sha(1), Release: fmt.Sprint("r", i)},
				[]store.QueueRequest{follow})
		}()
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: intake %v; finish %v", i, errs[0], errs[1])
		}
	}
}
