package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestIntakeStateDBLocked: while another process holds the SQLite state
// database past its busy timeout, deliveries are answered 503 (retry)
// after about one busy timeout, not one per delivery: the writer does not
// retry a batch item by item when the database itself failed. Once the
// lock is gone, deliveries are recorded again.
func TestIntakeStateDBLocked(t *testing.T) {
	f := newIntake(t, "0", "1", "")
	lock := testenv.LockSQLite(t, f.db.Options().Path)

	const n = 12
	ghPush := payload(t, "github_push")
	start := time.Now()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = f.send(githubDelivery("push", fmt.Sprint("locked-", i), "gh-secret-0123456789", ghPush))
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for i, st := range statuses {
		if st != http.StatusServiceUnavailable {
			t.Errorf("delivery %d while the state database is locked: %d, want 503", i, st)
		}
	}
	// The busy timeout is 5 s; item-by-item retries would take n times it.
	if took > 3*5*time.Second {
		t.Errorf("%d deliveries took %s to be answered: the writer retried them one by one", n, took)
	}
	t.Logf("%d deliveries answered 503 in %s while the state database was locked", n, took.Round(time.Millisecond))

	lock.Release(t)
	if st, a := f.send(githubDelivery("push", "after-unlock", "gh-secret-0123456789", ghPush)); st != http.StatusAccepted {
		t.Fatalf("after the lock is gone: %d %+v", st, a)
	}
	evs, err := f.db.Webhooks(context.Background(), store.WebhookFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].DeliveryID != "after-unlock" {
		t.Errorf("recorded %+v, want only the delivery after the lock (the others were answered 503 and not recorded)", evs)
	}
}
