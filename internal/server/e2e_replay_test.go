package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestE2EReplayedPushQueuesNothing: the real fraisier serve on a real
// SQLite state database deploys v1 then v2 of main from signed pushes;
// then the bytes of v1's signed delivery, captured, are sent again under
// a new delivery id. The answer is 200, ignored, naming the earlier
// delivery and how to deploy v1 on purpose; nothing is queued, and v2
// keeps serving. Under its own id the delivery is a redelivery, answered
// as the first time.
func TestE2EReplayedPushQueuesNothing(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	f.serve()
	shas := f.push("main", 1)
	captured := f.delivery("main", "", shas[0])
	status, first, err := f.send(&httpClient, f.base(), captured)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("v1's push: %d %+v %v", status, first, err)
	}
	f.waitDeployed("production", shas[0], version("main", 1), 60*time.Second)
	shas = append(shas, f.push("main", 1)...)
	f.hook("main", shas[0], shas[1])
	f.waitDeployed("production", shas[1], version("main", 2), 60*time.Second)
	before := f.deployments("production")

	for i := range 2 {
		replay := captured
		replay.id = fmt.Sprintf("replayed-%d-%s", i, captured.id)
		status, a, err := f.send(&httpClient, f.base(), replay)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK || a.Outcome != store.OutcomeIgnored || len(a.Deployments) != 0 || a.Duplicate {
			t.Errorf("v1's delivery under id %s: %d %+v; want 200 ignored, nothing queued", replay.id, status, a)
		}
		for _, says := range []string{"replay", fmt.Sprintf("webhook event %d (delivery %s", first.WebhookEventID, captured.id),
			"fraisier deploy hello production --ref " + shas[0], "fraisier rollback hello production"} {
			if !strings.Contains(a.Reason, says) {
				t.Errorf("v1's delivery under id %s: reason %q does not say %q", replay.id, a.Reason, says)
			}
		}
	}
	status, again, err := f.send(&httpClient, f.base(), captured)
	if err != nil || status != http.StatusAccepted || !again.Duplicate || again.WebhookEventID != first.WebhookEventID {
		t.Errorf("v1's delivery under its own id: %d %+v %v; want the first answer, duplicate", status, again, err)
	}

	q, err := f.store().QueuedDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 0 {
		t.Errorf("queued after the replays: %+v", q)
	}
	if after := f.deployments("production"); len(after) != len(before) {
		t.Errorf("%d deployments after the replays, %d before", len(after), len(before))
	}
	if v := f.serving("production"); v != version("main", 2) {
		t.Errorf("production serves %q after the replays, want %s", v, version("main", 2))
	}
}
