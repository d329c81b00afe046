package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

// testQueueDuplicateDelivery: a redelivery gets the original deployments
// and queues nothing.
func (s *suite) testQueueDuplicateDelivery(t *testing.T) {
	db, _ := s.fresh(t)
	redeliveredLater(t, db)
	twice := redeliveredInOneBatch(t, db)
	redeliveryNewerThanAPush(t, db, twice)
	redeliveryOfAFolded(t, db)
}

// redeliveredLater: a delivery again in a later batch is answered with
// what it queued then; the same id from another forge is not it.
func redeliveredLater(t *testing.T, db *store.DB) {
	ctx := context.Background()
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
}

func redeliveredInOneBatch(t *testing.T, db *store.DB) []store.IntakeResult {
	ctx := context.Background()
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
	return twice
}

func redeliveryNewerThanAPush(t *testing.T, db *store.DB, twice []store.IntakeResult) {
	ctx := context.Background()
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
	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].NewSHA != sha(3) {
		t.Errorf("queue after a redelivery newer than a push: %+v; want uuid-3's", queued)
	}
}

func redeliveryOfAFolded(t *testing.T, db *store.DB) {
	ctx := context.Background()
	// A redelivery of a delivery that was folded: the same answer, the
	// deployment it was folded into.
	folded, err := db.RecordIntake(ctx, []store.Intake{
		push("gitlab", "uuid-4", sha(4), store.OutcomeAccepted, queueReq(api, sha(4))),
		push("gitlab", "uuid-5", sha(5), store.OutcomeAccepted, queueReq(api, sha(5))),
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := db.RecordIntake(ctx, []store.Intake{push("gitlab", "uuid-4", sha(4), store.OutcomeAccepted, queueReq(api, sha(4)))})
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
