package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/fraisier/internal/store"
)

func sha40(n int) string { return fmt.Sprintf("%040x", n) }

// openTwice opens one PostgreSQL database as two nodes would: two stores,
// each with its own connections.
func openTwice(t *testing.T) (*store.DB, *store.DB) {
	t.Helper()
	url := pg.Database(t)
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(context.Background(), store.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

// Nodes advance rollouts at the same time, each on its own connections,
// while steps end: every host step is queued exactly once, a step two
// nodes try to claim at once is claimed once, and no pass fails (a
// rollout another node holds is passed by, never waited for or fought
// over).
func TestRolloutsAdvancedConcurrently(t *testing.T) {
	ctx := context.Background()
	db1, db2 := openTwice(t)
	dbs := []*store.DB{db1, db2}
	const n = 12
	var hosts []string
	for i := range n {
		hosts = append(hosts, fmt.Sprintf("web-%02d", i))
	}
	for _, h := range hosts {
		if err := db1.Heartbeat(ctx, store.Node{Name: h}); err != nil {
			t.Fatal(err)
		}
	}
	targets := []store.Target{{Fraise: "api", Environment: "production"}, {Fraise: "api", Environment: "eu"}}
	var ids []int64
	for _, tg := range targets {
		q, err := db2.Enqueue(ctx, store.QueueRequest{Target: tg, SHA: sha40(7), Ref: "refs/heads/main", Trigger: store.TriggerWebhook,
			Rollout: &store.RolloutPolicy{Hosts: hosts, Batch: 3, NodeTimeout: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, q.RolloutID)
	}

	stop := make(chan struct{})
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		passes int
	)
	for _, db := range dbs {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					now := time.Now()
					_, err := db.AdvanceRollouts(ctx, now, now.Add(-time.Hour))
					mu.Lock()
					passes++
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	claims := runStepsUntilDone(t, dbs, ids, hosts)
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d passes failed, first: %v", len(errs), passes, errs[0])
	}
	for _, tg := range targets {
		for _, h := range hosts {
			ds, err := db1.Deployments(ctx, store.DeploymentFilter{Fraise: tg.Fraise, Environment: tg.Environment + "@" + h, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].Trigger != store.TriggerRollout || ds[0].Status != store.StatusSucceeded || ds[0].Node != h {
				t.Errorf("%s@%s: %d deployments (%+v), want one step, succeeded", tg, h, len(ds), ds)
			}
		}
	}
	for _, id := range ids {
		r, err := db1.Rollout(ctx, id)
		if err != nil || r.Status != store.RolloutSucceeded {
			t.Errorf("rollout %d: %s %v", id, r.Status, err)
		}
	}
	t.Logf("%d passes by 4 advancers on 2 stores; %d double claims refused", passes, claims)
}

// runStepsUntilDone runs every step queued for hosts, each claimed by both
// stores at once (one must win, the other be told ErrNotQueued), until the
// rollouts ended. It returns how many claims were refused.
func runStepsUntilDone(t *testing.T, dbs []*store.DB, ids []int64, hosts []string) (refused int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, id := range ids {
			r, err := dbs[0].Rollout(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			done = done && r.Status.Terminal()
		}
		if done {
			return refused
		}
		for _, h := range hosts {
			ds, err := dbs[1].QueuedDeploymentsFor(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				won, lost := claimBoth(t, dbs, d.ID, h)
				refused += lost
				if won == nil {
					continue
				}
				if err := won.FinishDeployment(ctx, d.ID, store.Finish{Status: store.StatusSucceeded, NewSHA: d.NewSHA, Release: "r7"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the rollouts did not end within 60 s")
	return refused
}

// claimBoth claims deployment id from both stores at once; the winner's
// store is returned, and how many were refused.
func claimBoth(t *testing.T, dbs []*store.DB, id int64, host string) (*store.DB, int) {
	t.Helper()
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = db.ClaimQueued(context.Background(), id, store.Claim{Host: host, PID: i + 1})
		}()
	}
	wg.Wait()
	var won *store.DB
	refused := 0
	for i, err := range errs {
		switch {
		case err == nil && won == nil:
			won = dbs[i]
		case err == nil:
			t.Fatalf("deployment %d claimed twice", id)
		case errors.Is(err, store.ErrNotQueued):
			refused++
		default:
			t.Fatalf("claim %d: %v", id, err)
		}
	}
	return won, refused
}

// Listen wakes on another store's Enqueue with what it is about, and
// keeps listening after its backend is terminated: it wakes once
// reconnected (TopicAll), and on the next notification.
func TestListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db1, db2 := openTwice(t)
	wakes := make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		done <- db1.Listen(ctx, func(topic string) {
			select {
			case wakes <- topic:
			default:
			}
		})
	}()
	// waitWake waits for a wake about topic, and returns every topic seen
	// until then.
	waitWake := func(what, topic string) []string {
		t.Helper()
		var seen []string
		deadline := time.After(10 * time.Second)
		for {
			select {
			case got := <-wakes:
				seen = append(seen, got)
				if got == topic {
					return seen
				}
			case <-deadline:
				t.Fatalf("no wake %s (topic %q); saw %q", what, topic, seen)
			}
		}
	}
	drain := func() {
		for {
			select {
			case <-wakes:
			default:
				return
			}
		}
	}
	waitWake("once connected", store.TopicAll)
	drain()
	enqueue := func(n int) {
		t.Helper()
		if _, err := db2.Enqueue(context.Background(), store.QueueRequest{Target: store.Target{Fraise: "api", Environment: "production"},
			SHA: sha40(n), Trigger: store.TriggerCLI}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(1)
	waitWake("on another store's Enqueue", store.TopicNode(""))

	// A rollout wakes every rollout loop, and its first step's node.
	if _, err := db2.Enqueue(context.Background(), store.QueueRequest{Target: store.Target{Fraise: "api", Environment: "eu"},
		SHA: sha40(9), Trigger: store.TriggerCLI, Rollout: &store.RolloutPolicy{Hosts: []string{"web-1", "web-2"}}}); err != nil {
		t.Fatal(err)
	}
	seen := waitWake("on a rollout", store.TopicRollout)
	if !slices.Contains(seen, store.TopicNode("web-1")) {
		seen = append(seen, waitWake("for the rollout's first host", store.TopicNode("web-1"))...)
	}
	if slices.Contains(seen, store.TopicNode("web-2")) {
		t.Errorf("web-2 woken before its batch: %q", seen)
	}

	conn, err := pgx.Connect(context.Background(), db2.Options().URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The pid first, on its own: in one statement, PostgreSQL may call
	// pg_terminate_backend before the other conditions filter the rows.
	var pid int
	if err := conn.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE application_name = 'fraisier listen' AND datname = current_database()`).Scan(&pid); err != nil {
		t.Fatalf("find the listening backend: %v", err)
	}
	var killed bool
	if err := conn.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate backend %d: %v %v", pid, killed, err)
	}
	drain()
	waitWake("once reconnected", store.TopicAll)
	drain()
	enqueue(2)
	waitWake("on an Enqueue after the reconnection", store.TopicNode(""))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return once its context ended")
	}
}

// Listen on SQLite returns at once.
func TestListenSQLite(t *testing.T) {
	db, err := store.Open(context.Background(), store.Options{Path: t.TempDir() + "/fraisier.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Listen(context.Background(), func(string) { t.Error("woken") }); err != nil {
		t.Fatal(err)
	}
}

// A pass that finds a rollout held by another node's pass comes back to
// it shortly: that pass may have read its steps before one ended, and its
// node may die before it looks again.
func TestAdvancePassedByComesBackSoon(t *testing.T) {
	ctx := context.Background()
	db1, _ := openTwice(t)
	if err := db1.Heartbeat(ctx, store.Node{Name: "web-1"}); err != nil {
		t.Fatal(err)
	}
	q, err := db1.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "api", Environment: "production"}, SHA: sha40(3),
		Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Rollout: &store.RolloutPolicy{Hosts: []string{"web-1"}, NodeTimeout: time.Hour, ClaimTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res, err := db1.AdvanceRollouts(ctx, now, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Next.Sub(now); d < 30*time.Minute {
		t.Fatalf("unheld: next pass in %s, want the claim or liveness deadline (an hour)", d)
	}

	// Another node's pass holds the rollout's row.
	hold, err := db1.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.ExecContext(ctx, "SELECT 1 FROM tb_rollout WHERE id = $1 FOR UPDATE", q.RolloutID); err != nil {
		t.Fatal(err)
	}
	res, err = db1.AdvanceRollouts(ctx, now, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Next.Sub(now); res.Next.IsZero() || d > time.Second {
		t.Fatalf("held by another pass: next pass in %s (zero: %v), want within a second", d, res.Next.IsZero())
	}
}
