package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

func (s *suite) testLocks(t *testing.T) {
	db, clk := s.fresh(t)
	theirs := lockHeld(t, db, clk)
	lockTakenOver(t, db, clk, theirs)
	lockPerTarget(t, db)
}

// lockHeld: a lock is held by one owner, extended and refreshed by it,
// and neither refreshed nor released by another. It returns the other's.
func lockHeld(t *testing.T, db *store.DB, clk *clock) store.Lock {
	ctx := context.Background()
	alive := func(store.Lock) bool { return false }
	mine := store.Lock{Target: api, Owner: "deploy-1", Host: "h1", PID: 100, Reason: "deploy abc"}
	prev, err := db.AcquireLock(ctx, mine, time.Minute, alive)
	check(t, err)
	if prev != (store.Lock{}) {
		t.Errorf("first acquire reported a previous holder: %+v", prev)
	}
	held := mine
	held.AcquiredAt, held.ExpiresAt = epoch, epoch.Add(time.Minute)
	if diff := cmp.Diff([]store.Lock{held}, must(db.Locks(ctx))(t)); diff != "" {
		t.Errorf("locks (-want +got):\n%s", diff)
	}

	theirs := store.Lock{Target: api, Owner: "deploy-2", Host: "h2", PID: 200}
	_, err = db.AcquireLock(ctx, theirs, time.Minute, alive)
	var le *store.LockedError
	if !errors.Is(err, store.ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("contended acquire: %v, want a LockedError", err)
	}
	if diff := cmp.Diff(held, le.Holder); diff != "" {
		t.Errorf("holder (-want +got):\n%s", diff)
	}
	// Re-acquiring your own lock extends it.
	clk.Advance(30 * time.Second)
	_, err = db.AcquireLock(ctx, mine, time.Minute, alive)
	check(t, err)
	if l := must(db.Locks(ctx))(t)[0]; !l.ExpiresAt.Equal(epoch.Add(90*time.Second)) || !l.AcquiredAt.Equal(epoch) {
		t.Errorf("re-acquired lock: %+v", l)
	}
	check(t, db.RefreshLock(ctx, api, "deploy-1", 2*time.Minute))
	if l := must(db.Locks(ctx))(t)[0]; !l.ExpiresAt.Equal(epoch.Add(150 * time.Second)) {
		t.Errorf("refreshed lock expires %s", l.ExpiresAt)
	}
	if err := db.RefreshLock(ctx, api, "deploy-2", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh by a non-owner: %v, want ErrNotFound", err)
	}
	if err := db.ReleaseLock(ctx, api, "deploy-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("release by a non-owner: %v, want ErrNotFound", err)
	}
	if len(must(db.Locks(ctx))(t)) != 1 {
		t.Fatal("a non-owner's release removed the lock")
	}
	return theirs
}

// lockTakenOver: an expired lock, or one whose holder is dead, is taken
// over, the previous holder reported and the takeover recorded.
func lockTakenOver(t *testing.T, db *store.DB, clk *clock, theirs store.Lock) {
	ctx := context.Background()
	alive := func(store.Lock) bool { return false }
	// Expired: taken over, and the previous holder reported.
	clk.Set(epoch.Add(150 * time.Second))
	prev, err := db.AcquireLock(ctx, theirs, time.Minute, alive)
	check(t, err)
	if prev.Owner != "deploy-1" {
		t.Errorf("expiry takeover reported previous holder %+v", prev)
	}
	if err := db.RefreshLock(ctx, api, "deploy-1", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh after losing the lock: %v, want ErrNotFound", err)
	}

	// Dead holder: taken over before expiry, when the caller says so.
	var asked store.Lock
	third := store.Lock{Target: api, Owner: "deploy-3", Host: "h2", PID: 300}
	prev, err = db.AcquireLock(ctx, third, time.Minute, func(l store.Lock) bool { asked = l; return l.PID == 200 })
	check(t, err)
	if prev.Owner != "deploy-2" || asked.Owner != "deploy-2" {
		t.Errorf("dead-holder takeover: previous %+v, asked about %+v", prev, asked)
	}
	evs := must(db.LockEvents(ctx, api, 0))(t)
	if len(evs) != 2 || evs[0].Event != store.LockHolderDead || evs[1].Event != store.LockExpired ||
		evs[0].NewOwner != "deploy-3" || evs[1].Lock.Owner != "deploy-1" {
		t.Errorf("lock events: %+v", evs)
	}
}

// lockPerTarget: another target's lock is independent; a forced unlock
// is recorded; a lock needs an owner and a lifetime.
func lockPerTarget(t *testing.T, db *store.DB) {
	ctx := context.Background()
	// Another target is independent.
	_, err := db.AcquireLock(ctx, store.Lock{Target: web, Owner: "deploy-1"}, time.Minute, nil)
	check(t, err)
	if got := must(db.Locks(ctx))(t); len(got) != 2 || got[0].Target != api || got[1].Target != web {
		t.Errorf("locks: %+v", got)
	}
	removed := must(db.ForceUnlock(ctx, api, "stuck deploy"))(t)
	if removed.Owner != "deploy-3" {
		t.Errorf("force unlock removed %+v", removed)
	}
	if evs := must(db.LockEvents(ctx, api, 1))(t); len(evs) != 1 || evs[0].Event != store.LockForced || evs[0].Reason != "stuck deploy" {
		t.Errorf("force unlock event: %+v", evs)
	}
	check(t, db.ReleaseLock(ctx, web, "deploy-1"))
	if got := must(db.Locks(ctx))(t); len(got) != 0 {
		t.Errorf("locks left: %+v", got)
	}
	if _, err := db.AcquireLock(ctx, store.Lock{Target: api}, time.Minute, nil); err == nil {
		t.Error("lock without owner accepted")
	}
	if _, err := db.AcquireLock(ctx, store.Lock{Target: api, Owner: "x"}, 0, nil); err == nil {
		t.Error("lock without ttl accepted")
	}
}

func (s *suite) testConcurrentLockers(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	// A second handle on the same database stands for another process.
	opts := db.Options()
	other, err := store.Open(ctx, opts)
	check(t, err)
	t.Cleanup(func() { other.Close() })

	const n = 16
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []string
		lost   int
		others []error
	)
	for i := range n {
		h := db
		if i%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("owner-%d", i)
			_, err := h.AcquireLock(ctx, store.Lock{Target: api, Owner: owner, PID: i}, time.Hour, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, owner)
			case errors.Is(err, store.ErrLocked):
				lost++
			default:
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || lost != n-1 || len(others) != 0 {
		t.Fatalf("won by %v, %d lost, errors %v; want exactly one winner", won, lost, others)
	}
	if l := must(db.Locks(ctx))(t); len(l) != 1 || l[0].Owner != won[0] {
		t.Errorf("lock held by %+v, winner %s", l, won[0])
	}
}
