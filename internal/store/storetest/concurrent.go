package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fraiseql/fraisier/internal/store"
)

// testQueueConcurrentIntake: many deliveries for one target from several
// goroutines leave exactly one request waiting, carrying the commit of the
// delivery recorded last, and every delivery recorded. Alone in its batch,
// each push replaces the waiting request in place; in batches of several,
// each batch's newest does, and the others are folded into it. Either
// way the target has one deployment, and no superseded one.
func (s *suite) testQueueConcurrentIntake(t *testing.T) {
	db, _ := s.fresh(t)
	const (
		n       = 40
		batches = 10 // of each (n / batches deliveries)
	)
	// One delivery a transaction.
	recordConcurrently(t, db, n, func(c int) []store.Intake { return concurrentPushes("c", c, 1) })
	oneRequestWaits(t, db, n)

	// Batches of n/batches: each batch's older deliveries are folded into
	// its newest, which replaced the waiting request or was replaced.
	results := recordConcurrently(t, db, batches, func(c int) []store.Intake { return concurrentPushes("b", n+c*(n/batches), n/batches) })
	d := oneRequestWaits(t, db, 2*n)
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

// concurrentPushes are size pushes for api, numbered from first.
func concurrentPushes(prefix string, first, size int) []store.Intake {
	items := make([]store.Intake, size)
	for k := range items {
		i := first + k
		items[k] = push("github", fmt.Sprint(prefix, i), sha(i+1), store.OutcomeAccepted, queueReq(api, sha(i+1)))
	}
	return items
}

// recordConcurrently records items(c) for each of calls goroutines at once.
func recordConcurrently(t *testing.T, db *store.DB, calls int, items func(int) []store.Intake) [][]store.IntakeResult {
	ctx := context.Background()
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

// oneRequestWaits checks that api has one deployment, queued, which every
// one of the events recorded is linked to, carrying the commit of the one
// accepted, and no superseded deployment in statistics that a rebuild
// agrees with.
func oneRequestWaits(t *testing.T, db *store.DB, events int) store.Deployment {
	t.Helper()
	ctx := context.Background()
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
