package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// testOutbox: messages are enqueued pending, claimed once while leased,
// retried when due again, and end sent or given up with every attempt
// recorded; the list filters by state and pruning keeps what is unsent.
func (s *suite) testOutbox(t *testing.T) {
	db, clk := s.fresh(t)
	ctx := context.Background()
	dep := int64(7)
	ids := must(db.EnqueueOutbox(ctx,
		store.OutboxMessage{Kind: store.OutboxNotification, Target: "team", Event: "deployment.failed", DeploymentID: &dep, Payload: `{"a":1}`},
		store.OutboxMessage{Kind: store.OutboxNotification, Target: "ops", Event: "deployment.failed", Payload: `{"a":2}`},
		store.OutboxMessage{Kind: store.OutboxForgeStatus, Target: "github", Payload: `{"s":"pending"}`},
	))(t)
	if len(ids) != 3 {
		t.Fatalf("enqueue returned %d ids, want 3", len(ids))
	}
	if _, err := db.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "sms", Target: "x", Payload: "{}"}); err == nil {
		t.Error("an unknown kind was enqueued")
	}

	got := must(db.ClaimOutbox(ctx, store.OutboxNotification, 10, time.Minute))(t)
	if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] {
		t.Fatalf("claimed %+v, want the two notifications oldest first", got)
	}
	if got[0].State != store.OutboxPending || got[0].DeploymentID == nil || *got[0].DeploymentID != dep || got[0].Payload != `{"a":1}` {
		t.Errorf("claimed message %+v", got[0])
	}
	if again := must(db.ClaimOutbox(ctx, store.OutboxNotification, 10, time.Minute))(t); len(again) != 0 {
		t.Errorf("leased messages claimed again: %+v", again)
	}

	clk.Advance(time.Second)
	check(t, db.RecordOutboxAttempt(ctx, ids[0], store.OutboxAttempt{Outcome: store.OutboxSent, HTTPStatus: 200, Duration: 30 * time.Millisecond}))
	check(t, db.RecordOutboxAttempt(ctx, ids[1], store.OutboxAttempt{Outcome: store.OutboxFailed, HTTPStatus: 500,
		Error: "HTTP 500", Next: clk.Now().Add(10 * time.Second)}))
	if err := db.RecordOutboxAttempt(ctx, 999999, store.OutboxAttempt{Outcome: store.OutboxSent}); err == nil {
		t.Error("an attempt at a missing message was recorded")
	}

	// Past the lease, but not yet due: the retry waits for Next.
	clk.Advance(5 * time.Second)
	if due := must(db.ClaimOutbox(ctx, store.OutboxNotification, 10, time.Minute))(t); len(due) != 0 {
		t.Errorf("claimed before its retry was due: %+v", due)
	}
	clk.Advance(10 * time.Second)
	due := must(db.ClaimOutbox(ctx, store.OutboxNotification, 10, time.Minute))(t)
	if len(due) != 1 || due[0].ID != ids[1] || due[0].Attempts != 1 || due[0].State != store.OutboxFailed || due[0].LastError != "HTTP 500" {
		t.Fatalf("retry claimed %+v", due)
	}
	check(t, db.RecordOutboxAttempt(ctx, ids[1], store.OutboxAttempt{Outcome: store.OutboxGivenUp, Error: "timeout"}))

	failed := must(db.Outbox(ctx, store.OutboxFilter{States: []store.OutboxState{store.OutboxFailed, store.OutboxGivenUp}}))(t)
	if len(failed) != 1 || failed[0].ID != ids[1] || failed[0].Attempts != 2 || failed[0].State != store.OutboxGivenUp {
		t.Errorf("failed list %+v", failed)
	}
	all := must(db.Outbox(ctx, store.OutboxFilter{}))(t)
	if len(all) != 3 || all[0].ID != ids[2] {
		t.Errorf("list %+v, want 3 newest first", all)
	}
	if all[2].SentAt == nil || all[2].State != store.OutboxSent {
		t.Errorf("sent message %+v", all[2])
	}
	attempts := must(db.OutboxAttempts(ctx, ids[1]))(t)
	if len(attempts) != 2 || attempts[0].Outcome != store.OutboxFailed || attempts[0].HTTPStatus != 500 || attempts[1].Outcome != store.OutboxGivenUp {
		t.Errorf("attempts %+v", attempts)
	}
	counts := must(db.OutboxCounts(ctx, store.OutboxNotification))(t)
	if counts[store.OutboxGivenUp] != 1 || counts[store.OutboxPending] != 0 || len(counts) != 1 {
		t.Errorf("counts %v, want one given up (sent ones are not counted)", counts)
	}

	clk.Advance(48 * time.Hour)
	if counts := must(db.OutboxCounts(ctx, store.OutboxNotification))(t); len(counts) != 0 {
		t.Errorf("counts %v two days on, want none: a failure counts for a day", counts)
	}
	if n := must(db.PruneOutbox(ctx, 24*time.Hour))(t); n != 2 {
		t.Errorf("pruned %d, want the sent and the given-up one", n)
	}
	if left := must(db.Outbox(ctx, store.OutboxFilter{}))(t); len(left) != 1 || left[0].ID != ids[2] {
		t.Errorf("after pruning %+v, want only the pending forge status", left)
	}
}

// testOutboxConcurrentClaim: senders claiming at once never take the same
// message twice.
func (s *suite) testOutboxConcurrentClaim(t *testing.T) {
	db, _ := s.fresh(t)
	ctx := context.Background()
	const n = 40
	msgs := make([]store.OutboxMessage, n)
	for i := range msgs {
		msgs[i] = store.OutboxMessage{Kind: store.OutboxNotification, Target: "t", Payload: "{}"}
	}
	must(db.EnqueueOutbox(ctx, msgs...))(t)
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := db.ClaimOutbox(ctx, store.OutboxNotification, 3, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct messages, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("message %d claimed %d times", id, c)
		}
	}
}
