package queue

import (
	"context"
	"testing"
	"time"
)

// TestWakeBeforeRun: the server's intake writer calls Wake from its own
// goroutine, possibly before or while Run starts; under -race this must be
// clean.
func TestWakeBeforeRun(t *testing.T) {
	f := newFixture(t, "0")
	r := &Runner{Store: f.db, Config: f.cfg, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	stopWake := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopWake:
				return
			default:
				r.Wake()
			}
		}
	}()
	time.Sleep(time.Millisecond)
	go func() { defer close(done); r.Run(ctx) }()
	<-r.Started()
	if !r.Ready() {
		t.Error("not ready once started")
	}
	close(stopWake)
	cancel()
	<-done
	if r.Ready() {
		t.Error("still ready after Run returned")
	}
}
