package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/notify"
	"github.com/fraiseql/fraisier/internal/store"
)

const routed = `  targets:
    hook: {url: "webhook+http://127.0.0.1:9/h", secret: ` + signingKey + `}
    chat: {url: "ntfy://127.0.0.1:9/deploys?scheme=http"}
  routes:
    - {fraise: api, environment: production, events: [rolled_back, failed, lock_held, queue_stuck], targets: [hook, chat]}
  default: {events: [all], targets: [hook]}
  lock_held_limit: 10m
  queue_stuck_after: 5m
`

func notifier(db *store.DB, cfg *config.Config) *notify.Notifier {
	return &notify.Notifier{Store: db, Config: func() *config.Config { return cfg }, Metrics: notify.NewMetrics(),
		Subjects: func(_ context.Context, _, _ string, shas ...string) map[string]string {
			out := map[string]string{}
			for _, s := range shas {
				out[s] = "subject of " + s[:7]
			}
			return out
		}}
}

// TestDeploymentRolledBack: a rolled-back deployment queues one message
// per routed target with commits, subjects, actor, the failing step and
// its last lines, scrubbed of the configuration's secrets.
func TestDeploymentRolledBack(t *testing.T) {
	db, cfg := setup(t, routed)
	ctx := context.Background()
	old, new := strings.Repeat("a", 40), strings.Repeat("b", 40)
	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "api", Environment: "production"},
		Trigger: store.TriggerWebhook, Actor: "ada via github", RequestedRef: "refs/heads/main", OldSHA: old, NewSHA: new, Host: "h", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	step, _ := db.StartStep(ctx, id, "health")
	var out strings.Builder
	for i := range 40 {
		fmt.Fprintf(&out, "line %d\n", i)
	}
	out.WriteString("key was " + signingKey + "\n")
	if err := db.AppendStepOutput(ctx, step, []byte(out.String())); err != nil {
		t.Fatal(err)
	}
	code := 1
	if err := db.FinishStep(ctx, step, store.StepFailed, &code, "exit 1"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusRolledBack, Error: "health check failed"}); err != nil {
		t.Fatal(err)
	}
	notifier(db, cfg).Deployment(ctx, id, 3*time.Second)
	msgs, err := db.Outbox(ctx, store.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Target == msgs[1].Target || *msgs[0].DeploymentID != id {
		t.Fatalf("queued %+v, want one for hook and one for chat", msgs)
	}
	var m notify.Message
	if err := json.Unmarshal([]byte(msgs[0].Payload), &m); err != nil {
		t.Fatal(err)
	}
	if m.Event != "rolled_back" || m.From.SHA != old || m.To.Subject != "subject of bbbbbbb" || m.Actor != "ada via github" ||
		m.FailedStep == nil || m.FailedStep.Name != "health" || m.Show != fmt.Sprintf("fraisier show %d", id) {
		t.Errorf("message %+v", m)
	}
	if strings.Contains(msgs[0].Payload, signingKey) || !strings.Contains(m.FailedStep.Output, "key was [redacted]") {
		t.Errorf("step output not scrubbed: %q", m.FailedStep.Output)
	}
	if strings.Contains(m.FailedStep.Output, "line 20\n") || !strings.Contains(m.FailedStep.Output, "line 39") {
		t.Errorf("step output is not the last lines: %q", m.FailedStep.Output)
	}
	t.Logf("text:\n%s", m.Text())
}

// TestRoutesAndQuietEvents: a succeeded deployment of api/production is
// routed nowhere (its route names other events), a skipped one never by
// "all"; refusals are reported once per window.
func TestRoutesAndQuietEvents(t *testing.T) {
	db, cfg := setup(t, routed)
	ctx := context.Background()
	n := notifier(db, cfg)
	for _, st := range []store.Status{store.StatusSucceeded, store.StatusSkipped} {
		id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "api", Environment: "production"},
			Trigger: store.TriggerCLI, NewSHA: strings.Repeat("c", 40), Host: "h", PID: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.FinishDeployment(ctx, id, store.Finish{Status: st}); err != nil {
			t.Fatal(err)
		}
		n.Deployment(ctx, id, 0)
	}
	n.Refused("github", "bad_signature")
	n.Refused("github", "bad_signature")
	deadline := time.Now().Add(5 * time.Second)
	var msgs []store.OutboxMessage
	for time.Now().Before(deadline) {
		msgs, _ = db.Outbox(ctx, store.OutboxFilter{})
		if len(msgs) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	msgs, _ = db.Outbox(ctx, store.OutboxFilter{})
	if len(msgs) != 1 || msgs[0].Event != "webhook_refused" || msgs[0].Target != "hook" {
		t.Errorf("queued %+v, want only one webhook_refused to the default route", msgs)
	}
}

// TestStuckLocksAndQueue: a lock held past lock_held_limit and a request
// queued past queue_stuck_after are each reported once.
func TestStuckLocksAndQueue(t *testing.T) {
	db, cfg := setup(t, routed)
	ctx := context.Background()
	target := store.Target{Fraise: "api", Environment: "production"}
	if _, err := db.AcquireLock(ctx, store.Lock{Target: target, Owner: "cli-1", Host: "h", PID: 42, Reason: "deploy"},
		time.Hour, func(store.Lock) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Enqueue(ctx, store.QueueRequest{Target: target, SHA: strings.Repeat("d", 40), Ref: "refs/heads/main",
		Trigger: store.TriggerCLI, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	n := notifier(db, cfg)
	n.CheckStuck(ctx)
	if msgs, _ := db.Outbox(ctx, store.OutboxFilter{}); len(msgs) != 0 {
		t.Fatalf("reported too early: %+v", msgs)
	}
	n.Now = func() time.Time { return time.Now().Add(15 * time.Minute) }
	n.CheckStuck(ctx)
	n.CheckStuck(ctx)
	msgs, _ := db.Outbox(ctx, store.OutboxFilter{})
	events := map[string]int{}
	for _, m := range msgs {
		events[m.Event]++
	}
	if len(msgs) != 4 || events["lock_held"] != 2 || events["queue_stuck"] != 2 {
		t.Errorf("queued %+v", msgs)
	}
	for _, m := range msgs {
		var msg notify.Message
		if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s to %s:\n%s", m.Event, m.Target, msg.Text())
	}
}
