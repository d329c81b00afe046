package server

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

// batchLog is the real store, noting the size of each batch the writer
// hands it.
type batchLog struct {
	Store
	mu    sync.Mutex
	sizes []int
}

func (b *batchLog) RecordIntake(ctx context.Context, items []store.Intake) ([]store.IntakeResult, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(items))
	b.mu.Unlock()
	return b.Store.RecordIntake(ctx, items)
}

func (b *batchLog) batches() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.sizes)
}

// writerFixture is an intake writer over a real SQLite store, not yet
// running, and deliveries to hand it as the handlers do.
type writerFixture struct {
	t    *testing.T
	w    *intakeWriter
	log  *batchLog
	next atomic.Int64
	done chan struct{}
}

// newWriterFixture's writer counts as busy after any commit of several
// deliveries, whatever the arrival rate, unless rate says otherwise.
func newWriterFixture(t *testing.T, gather time.Duration, batch int) *writerFixture {
	return newWriterFixtureRate(t, gather, batch, 0)
}

func newWriterFixtureRate(t *testing.T, gather time.Duration, batch int, rate float64) *writerFixture {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := &batchLog{Store: db}
	f := &writerFixture{t: t, log: log, done: make(chan struct{}),
		w: &intakeWriter{store: log, in: make(chan *pendingIntake, 64), maxBatch: 512, gather: gather, gatherBatch: batch, gatherRate: rate}}
	t.Cleanup(func() {
		f.w.close()
		select {
		case <-f.done:
		case <-time.After(30 * time.Second):
			t.Error("the writer did not stop")
		}
	})
	return f
}

func (f *writerFixture) start() { go func() { defer close(f.done); f.w.run() }() }

// deliver hands n deliveries to the writer, as n handlers do, and
// returns when all are answered.
func (f *writerFixture) deliver(n int) {
	f.t.Helper()
	f.send(n, 0)()
}

// send hands n deliveries to the writer, every apart, as handlers do once
// they have received each, and returns a wait for their answers.
func (f *writerFixture) send(n int, every time.Duration) (wait func()) {
	errs := make(chan error, n)
	for k := range n {
		go func() {
			time.Sleep(time.Duration(k) * every)
			f.w.coming.Add(1)
			_, err := f.w.submit(context.Background(), ping(fmt.Sprintf("d-%d", f.next.Add(1))))
			errs <- err
		}()
	}
	return func() {
		f.t.Helper()
		for range n {
			select {
			case err := <-errs:
				if err != nil {
					f.t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				f.t.Fatalf("deliveries not answered; batches so far %v", f.log.batches())
			}
		}
	}
}

// busy makes the writer's first commit carry two deliveries: both wait
// in its channel before it starts.
func (f *writerFixture) busy() {
	f.t.Helper()
	wait := f.send(2, 0)
	for len(f.w.in) < 2 {
		time.Sleep(time.Millisecond)
	}
	f.start()
	wait()
}

// ping is an ignored delivery, recorded as any other.
func ping(id string) store.Intake {
	return store.Intake{Event: store.WebhookEvent{Forge: "github", DeliveryID: id, EventType: "ping",
		Outcome: store.OutcomeIgnored, Reason: "ping", ReceivedAt: time.Now()}}
}

// TestIntakeWriterGroupCommit: a delivery alone is written at once; once
// a commit carried several, and deliveries arrive fast enough, the next
// waits for a batch worth a commit, for a bounded time, and a shutdown
// ends the wait.
func TestIntakeWriterGroupCommit(t *testing.T) {
	t.Run("a delivery alone is not held", func(t *testing.T) {
		f := newWriterFixture(t, time.Hour, 4)
		f.start()
		f.deliver(1)
		f.deliver(1)
		if diff := cmp.Diff([]int{1, 1}, f.log.batches()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
	t.Run("busy: the next commit waits for a batch", func(t *testing.T) {
		f := newWriterFixture(t, time.Hour, 4)
		f.busy()
		// Apart, so that none is being received when the writer looks:
		// only the gathering waits for them.
		f.send(4, 5*time.Millisecond)()
		if diff := cmp.Diff([]int{2, 4}, f.log.batches()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
	t.Run("below the arrival rate nothing waits", func(t *testing.T) {
		f := newWriterFixtureRate(t, time.Hour, 4, 1e9)
		f.busy()
		f.send(4, 5*time.Millisecond)()
		if got := f.log.batches(); cmp.Equal(got, []int{2, 4}) {
			t.Errorf("batches %v: the writer gathered below the arrival rate", got)
		}
	})
	t.Run("busy: the wait is bounded", func(t *testing.T) {
		f := newWriterFixture(t, 20*time.Millisecond, 4)
		f.busy()
		f.deliver(1)
		// The commit of one delivery leaves the writer idle again.
		f.deliver(1)
		if diff := cmp.Diff([]int{2, 1, 1}, f.log.batches()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
	t.Run("busy: shutting down ends the wait", func(t *testing.T) {
		f := newWriterFixture(t, time.Hour, 4)
		f.busy()
		// Handed over as submit does, so as to see the writer take it.
		p := &pendingIntake{reply: make(chan intakeReply, 1), item: ping("last")}
		f.w.in <- p
		for len(f.w.in) > 0 {
			time.Sleep(time.Millisecond)
		}
		// Taken, and gathered for: only the shutdown ends the wait.
		f.w.close()
		select {
		case r := <-p.reply:
			if r.err != nil {
				t.Fatal(r.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the delivery gathered at shutdown was not answered")
		}
		if diff := cmp.Diff([]int{2, 1}, f.log.batches()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
}

// TestIntakeWriterArrivalRate: the rate that makes the writer gather is
// deliveries a second, counted over the last window, an idle pause
// included. After busy's batch of two, 150 ms pass before the next
// delivery: 2 / 0.15 s, about 13 a second.
func TestIntakeWriterArrivalRate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rate   float64
		gather bool
	}{
		{"above the rate the writer gathers", 5, true},
		{"below it nothing waits", 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newWriterFixtureRate(t, time.Hour, 4, tc.rate)
			f.busy()
			time.Sleep(150 * time.Millisecond)
			f.send(4, 5*time.Millisecond)()
			if got := f.log.batches(); cmp.Equal(got, []int{2, 4}) != tc.gather {
				t.Errorf("batches %v: gathered %v, want %v", got, !tc.gather, tc.gather)
			}
		})
	}
	t.Run("after a pause nothing waits", func(t *testing.T) {
		f := newWriterFixtureRate(t, time.Hour, 4, 5)
		f.busy()
		time.Sleep(150 * time.Millisecond)
		f.send(4, 5*time.Millisecond)()
		// 4 deliveries in the second that follows: under 5 a second. A
		// writer still busy would hold this one for the hour.
		time.Sleep(time.Second)
		f.deliver(1)
		if diff := cmp.Diff([]int{2, 4, 1}, f.log.batches()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
}
