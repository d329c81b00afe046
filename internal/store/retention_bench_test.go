package store_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/bench/grow"
	"github.com/fraiseql/fraisier/internal/store"
)

// BenchmarkIntakeWhilePruning measures what pruning a large backlog costs
// the webhook intake on SQLite, where both share the one writer. Two
// copies of one grown database (a year of history: grow.Populate, plus
// a step with output per deployment) take the same offered load of
// deliveries, committed in groups as serve's writer does; on the second,
// Prune runs meanwhile with serve's pacing (cli's servePacing). It
// reports each copy's delivery latency (arrival to commit) and their
// ratio, and how many records pruning removed during the load.
//
// Sizes: FRAISIER_BENCH_RETENTION_WEBHOOKS events (default 200000) and a
// tenth as many deployments; the load lasts FRAISIER_BENCH_RETENTION_SECONDS
// (default 5) at FRAISIER_BENCH_RETENTION_RATE deliveries/s (default 2000).
// Run it once: go test -run '^$' -bench IntakeWhilePruning -benchtime 1x.
func BenchmarkIntakeWhilePruning(b *testing.B) {
	events := envInt("FRAISIER_BENCH_RETENTION_WEBHOOKS", 200000)
	seconds := envInt("FRAISIER_BENCH_RETENTION_SECONDS", 5)
	rate := envInt("FRAISIER_BENCH_RETENTION_RATE", 2000)
	rounds := max(1, envInt("FRAISIER_BENCH_RETENTION_ROUNDS", 3))
	template := grownForRetention(b, events/10, events)
	for range b.N {
		// Rounds alternate which copy goes first, so that a neighbour's
		// load on the machine falls on both alike; each figure is the
		// median of its rounds.
		var idle, busy []loadResult
		for r := range rounds {
			for _, prune := range []bool{r%2 == 1, r%2 == 0} {
				res := intakeUnderLoad(b, template, rate, time.Duration(seconds)*time.Second, prune)
				if prune {
					busy = append(busy, res)
				} else {
					idle = append(idle, res)
				}
				b.Logf("round %d, pruning %-5v: %d deliveries, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; pruned %d records in %d batches holding the writer %.0f ms, the longest %.2f ms",
					r+1, prune, len(res.lat), ms(res.p(50)), ms(res.p(90)), ms(res.p(99)), ms(res.p(100)), res.removed, res.batches, ms(res.held), ms(res.maxHeld))
			}
		}
		p99, p99p := median(idle, func(r loadResult) float64 { return ms(r.p(99)) }), median(busy, func(r loadResult) float64 { return ms(r.p(99)) })
		b.ReportMetric(median(idle, func(r loadResult) float64 { return ms(r.p(50)) }), "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(median(busy, func(r loadResult) float64 { return ms(r.p(50)) }), "p50-pruning-ms")
		b.ReportMetric(p99p, "p99-pruning-ms")
		b.ReportMetric(p99p/p99, "p99-ratio")
		b.ReportMetric(median(idle, func(r loadResult) float64 { return ms(r.p(90)) }), "p90-ms")
		b.ReportMetric(median(busy, func(r loadResult) float64 { return ms(r.p(90)) }), "p90-pruning-ms")
		b.ReportMetric(median(busy, func(r loadResult) float64 { return ms(r.maxHeld) }), "longest-batch-ms")
		b.ReportMetric(median(busy, func(r loadResult) float64 { return float64(r.removed) / float64(seconds) }), "pruned/s")
	}
}

func median(rs []loadResult, f func(loadResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Serve's pacing: cli's servePacing.
var servePacing = store.PruneOptions{MaxHold: 2 * time.Millisecond, Share: 0.1}

type loadResult struct {
	lat              []time.Duration
	removed          int64
	batches          int
	held, maxHeld    time.Duration
	pruneErr, intake error
}

func (r loadResult) p(pct int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*pct+99)/100-1)]
}

// intakeUnderLoad copies template, opens it as serve does, and records
// deliveries arriving at rate for d, a group of all those arrived per
// transaction; with prune, Prune (the default retention) runs meanwhile.
func intakeUnderLoad(b *testing.B, template string, rate int, d time.Duration, prune bool) loadResult {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "fraisier.db")
	copyFile(b, template, path)
	db, err := store.Open(ctx, store.Options{Path: path, CheckpointEvery: store.ServerCheckpointEvery})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	var res loadResult
	var wg sync.WaitGroup
	pruneCtx, stop := context.WithCancel(ctx)
	defer stop()
	if prune {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := store.Prune(pruneCtx, db, store.Retention{Events: 90 * 24 * time.Hour, StepOutput: 90 * 24 * time.Hour, KeepReleases: 7}, servePacing)
			for _, k := range rep.Kinds {
				res.removed += k.Removed
			}
			res.batches, res.held, res.maxHeld = rep.Batches, rep.Held, rep.MaxHeld
			if err != nil && pruneCtx.Err() == nil {
				res.pruneErr = err
			}
		}()
	}
	every := time.Second / time.Duration(rate)
	start := time.Now()
	sent := 0
	target := store.Target{Fraise: "api", Environment: "production"}
	for time.Since(start) < d {
		due := int(time.Since(start)/every) + 1
		if due <= sent {
			time.Sleep(time.Until(start.Add(time.Duration(sent) * every)))
			continue
		}
		items := make([]store.Intake, 0, due-sent)
		for i := sent; i < due; i++ {
			items = append(items, benchDelivery(i, target))
		}
		if _, err := db.RecordIntake(ctx, items); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		for i := sent; i < due; i++ {
			res.lat = append(res.lat, done.Sub(start.Add(time.Duration(i)*every)))
		}
		sent = due
	}
	stop()
	wg.Wait()
	if res.pruneErr != nil {
		b.Fatal(res.pruneErr)
	}
	return res
}

// benchDelivery is the i-th delivery of the load: mostly pushes to one
// target, each replacing the request the last one queued, and every
// fourth one that routes nowhere.
func benchDelivery(i int, t store.Target) store.Intake {
	sha := fmt.Sprintf("%040x", 1<<40+i)
	ev := store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprintf("bench-%d", i), EventType: "push",
		Repository: "acme/api", Ref: "refs/heads/main", SHA: sha, Sender: "alice", RemoteAddr: "127.0.0.1"}
	if i%4 == 3 {
		ev.Outcome, ev.Reason = store.OutcomeIgnored, "no fraise routes it"
		return store.Intake{Event: ev}
	}
	ev.Outcome = store.OutcomeAccepted
	return store.Intake{Event: ev, Requests: []store.QueueRequest{{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook}}}
}

// grownForRetention is a database file holding a year of history with
// the given deployments and events, each deployment with a step that
// printed 2 KiB.
func grownForRetention(b *testing.B, deployments, events int) string {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "grown.db")
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	if err := grow.Populate(ctx, db, deployments, events, 1); err != nil {
		b.Fatal(err)
	}
	if _, err = db.SQL().ExecContext(ctx, `INSERT INTO tb_deployment_step (deployment_id, seq, name, status, started_at, finished_at, output)
		SELECT id, 1, 'install', 'succeeded', started_at, finished_at, randomblob(2048) FROM tb_deployment WHERE finished_at IS NOT NULL`); err != nil {
		b.Fatal(err)
	}
	b.Logf("grew %s: %d deployments with output, %d webhook events, in %s", path, deployments, events, time.Since(start))
	return path
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	src, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPrune times a whole Prune pass with the default retention
// over the grown database of BenchmarkIntakeWhilePruning, alone and
// unpaced: how fast a backlog goes when nothing else writes.
func BenchmarkPrune(b *testing.B) {
	events := envInt("FRAISIER_BENCH_RETENTION_WEBHOOKS", 200000)
	template := grownForRetention(b, events/10, events)
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "fraisier.db")
		copyFile(b, template, path)
		db, err := store.Open(ctx, store.Options{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		rep, err := store.Prune(ctx, db, store.Retention{Events: 90 * 24 * time.Hour, StepOutput: 90 * 24 * time.Hour, KeepReleases: 7}, store.PruneOptions{})
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		db.Close()
		var removed int64
		for _, k := range rep.Kinds {
			removed += k.Removed
			b.Logf("%s: %d removed (%d bytes)", k.Kind, k.Removed, k.Bytes)
		}
		b.ReportMetric(float64(removed)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(rep.Batches), "batches")
		b.StartTimer()
	}
}
