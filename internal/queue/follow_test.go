package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestFollowUpFromTheQueue: a push that deploys hello and not the etl that
// runs its code (a delivery covering hello only, say) leaves the etl to
// follow: hello's deployment queues, with its outcome, the etl's
// follow-up, which the queue runs on hello's new release. When hello's
// deployment fails, nothing follows.
func TestFollowUpFromTheQueue(t *testing.T) {
	for _, fails := range []bool{false, true} {
		t.Run(map[bool]string{false: "succeeded", true: "failed"}[fails], func(t *testing.T) {
			f := newOrderFixture(t)
			v1 := f.commit()
			if fails {
				f.touch("fail", true)
			}
			a := idOf(t, f.pushTo("d-1", v1, hello), hello)
			f.start(&Runner{Grace: 100 * time.Millisecond})
			waitFor(t, "the queue to empty", 30*time.Second, func() bool {
				return f.idle() && f.deployment(a).Status != store.StatusQueued
			})
			ds, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Fraise: helloE.Fraise, Environment: helloE.Environment})
			if err != nil {
				t.Fatal(err)
			}
			if fails {
				if len(ds) != 0 || f.etlRuns() != "" {
					t.Errorf("after hello failed: etl deployments %+v, runs %q; want none", ds, f.etlRuns())
				}
				return
			}
			if len(ds) != 1 || ds[0].Trigger != store.TriggerFollow || ds[0].Status != store.StatusSucceeded ||
				!strings.Contains(ds[0].Actor, "hello/production deployment") {
				t.Fatalf("etl deployments %+v; want one follow-up of hello's deployment %d, succeeded", ds, a)
			}
			if got := f.etlRuns(); got != "v1\n" {
				t.Errorf("the etl ran in %q; want v1's release", got)
			}
		})
	}
}
