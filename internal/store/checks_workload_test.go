package store_test

import (
	"fmt"

	"github.com/fraiseql/fraisier/internal/store"
)

var checksProd = store.Target{Fraise: "checks", Environment: "production"}

// checks holds pushes for their checks (trigger: checks): one held, a
// newer one superseding it, a result for a commit nothing waits on, the
// result that releases the newer push, one recorded before its push, and
// the list of held pushes.
func (w *workload) checks() {
	held := func() store.Intake {
		it := w.push(checksProd)
		it.Requests[0].Hold, it.Requests[0].Checks = true, []string{"CI"}
		return it
	}
	report := func(sha string, passed bool) store.Intake {
		w.n++
		return store.Intake{
			Event: store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprintf("workload-check-%d", w.n), EventType: "check_suite",
				Repository: "acme/" + checksProd.Fraise, SHA: sha, Outcome: store.OutcomeIgnored, RemoteAddr: "192.0.2.7"},
			Check: &store.CheckReport{SHA: sha, Name: "CI", Conclusion: "success", Passed: passed, Targets: []store.Target{checksProd}},
		}
	}
	w.record(held())
	newer := held()
	w.record(newer)
	w.record(report(fmt.Sprintf("%040x", 0xdead0000+w.n), true))
	w.record(report(newer.Event.SHA, true))
	early := held()
	w.record(report(early.Event.SHA, false))
	w.record(early)
	w.do("HeldPushes", func() error { _, err := w.db.HeldPushes(w.ctx, true, 20); return err })
}
