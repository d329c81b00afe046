package git

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		unlockX, err := lockDir(ctx, dir, true)
		if err != nil {
			t.Fatal(err)
		}
		// Held exclusively: others wait, and give up with their context.
		for _, exclusive := range []bool{true, false} {
			tctx, cancel := context.WithTimeout(ctx, time.Second)
			if _, err := lockDir(tctx, dir, exclusive); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("lockDir(exclusive=%v) while held = %v, want DeadlineExceeded", exclusive, err)
			}
			cancel()
		}
		// A waiter gets the lock once it is released.
		got := make(chan error, 1)
		go func() {
			unlock, err := lockDir(ctx, dir, true)
			if err == nil {
				unlock()
			}
			got <- err
		}()
		time.Sleep(time.Second)
		select {
		case err := <-got:
			t.Fatalf("waiter returned %v while the lock was held", err)
		default:
		}
		unlockX()
		if err := <-got; err != nil {
			t.Errorf("waiter after release: %v", err)
		}

		// Shared locks coexist, and keep writers out.
		unlock1, err := lockDir(ctx, dir, false)
		if err != nil {
			t.Fatal(err)
		}
		unlock2, err := lockDir(ctx, dir, false)
		if err != nil {
			t.Fatal(err)
		}
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		if _, err := lockDir(tctx, dir, true); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("exclusive lock under readers = %v, want DeadlineExceeded", err)
		}
		cancel()
		unlock1()
		unlock2()
	})
}
