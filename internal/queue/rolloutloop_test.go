package queue

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// faultOutage is the real store with a database outage injected: while
// down, the heartbeat and AdvanceRollouts fail as an unreachable
// PostgreSQL would. It records the liveSince of every pass.
type faultOutage struct {
	*store.DB
	down atomic.Bool
	// passFails fails AdvanceRollouts alone, as one rollout's error would.
	passFails atomic.Bool
	mu        sync.Mutex
	live      []time.Time
}

var errFaultOutage = errors.New("fault: connection refused")

func (s *faultOutage) Heartbeat(ctx context.Context, n store.Node) error {
	if s.down.Load() {
		return errFaultOutage
	}
	return s.DB.Heartbeat(ctx, n)
}

func (s *faultOutage) AdvanceRollouts(ctx context.Context, now, liveSince time.Time) (store.AdvanceResult, error) {
	if s.down.Load() {
		return store.AdvanceResult{}, errFaultOutage
	}
	s.mu.Lock()
	if s.passFails.Load() {
		s.live = append(s.live, liveSince)
		s.mu.Unlock()
		return store.AdvanceResult{}, errors.New("fault: advance rollout 7: deadlock detected")
	}
	s.live = append(s.live, liveSince)
	s.mu.Unlock()
	return s.DB.AdvanceRollouts(ctx, now, liveSince)
}

func (s *faultOutage) passes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.live...)
}

// TestRolloutLoopLiveness: the loop heartbeats at its period, advances
// once at start and then when woken, or once per 6 heartbeat periods as
// a backstop (no pass per heartbeat: nothing is due), and after a database outage passes liveSince = when the
// database answered again, so that no node is judged dead for heartbeats
// this node could not see.
func TestRolloutLoopLiveness(t *testing.T) {
	db, err := store.Open(context.Background(), store.Options{URL: pgServer.Database(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &faultOutage{DB: db}
	loop := &RolloutLoop{Store: s, Node: store.Node{Name: "web-1", StartedAt: time.Now()},
		Config: func() *config.Config { return &config.Config{} }, Log: testLogger(t), Listen: true, Beat: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); loop.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the first pass", 10*time.Second, func() bool { return len(s.passes()) >= 1 })
	time.Sleep(1200 * time.Millisecond) // twelve heartbeats, two backstop periods
	if n := len(s.passes()); n > 4 {
		t.Errorf("%d passes in 1.2s with nothing due: the loop polls (want the first, and one backstop pass per 6 heartbeats)", n)
	}
	if p := s.passes()[0]; p.Before(start) || p.After(time.Now()) {
		t.Errorf("first pass liveSince %s, want the start", p)
	}
	loop.Wake()
	before := len(s.passes())
	waitFor(t, "a pass after a wake", 10*time.Second, func() bool { return len(s.passes()) > before })

	s.down.Store(true)
	time.Sleep(400 * time.Millisecond)
	loop.Wake()
	time.Sleep(200 * time.Millisecond)
	back := time.Now()
	s.down.Store(false)
	before = len(s.passes())
	waitFor(t, "a pass once the database answers again", 10*time.Second, func() bool { return len(s.passes()) > before })
	ps := s.passes()
	if last := ps[len(ps)-1]; last.Before(back) {
		t.Errorf("after the outage: liveSince %s, before the database answered again (%s)", last, back)
	}
	nodes, err := db.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Name != "web-1" || time.Since(nodes[0].HeartbeatAt) > 5*time.Second {
		t.Errorf("nodes %+v, want web-1 with a fresh heartbeat", nodes)
	}
}

// A pass that fails while the heartbeat reaches the database (one
// rollout's error) leaves liveSince alone: it must not keep every node
// from judging a dead one for another node_timeout.
func TestRolloutLoopPassErrorKeepsLiveness(t *testing.T) {
	db, err := store.Open(context.Background(), store.Options{URL: pgServer.Database(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &faultOutage{DB: db}
	s.passFails.Store(true)
	loop := &RolloutLoop{Store: s, Node: store.Node{Name: "web-1", StartedAt: time.Now()},
		Config: func() *config.Config { return &config.Config{} }, Log: testLogger(t), Beat: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); loop.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "four failing passes", 10*time.Second, func() bool { return len(s.passes()) >= 4 })
	ps := s.passes()
	for _, p := range ps[1:] {
		if !p.Equal(ps[0]) {
			t.Fatalf("liveSince moved from %s to %s after a failing pass: %v", ps[0], p, ps)
		}
	}
}
