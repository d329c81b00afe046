package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// These benchmarks drive fraisier's intake in-process, for a CPU profile
// of where a delivery's time goes; the program measures the whole process.
// 32 goroutines post concurrently, as the program's connections do.

const parallel = 32

func benchBodies(tb testing.TB) *bodies {
	b, err := makeBodies(256, []byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// request is delivery n as an *http.Request, with the headers the program
// sends; its body is valid until s's next request.
func request(b *bodies, s *signer, n uint64) *http.Request {
	head, body := b.request(s, n, b.commit(n))
	r := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
	r.RemoteAddr = "127.0.0.1:40000"
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(": "))
		if ok {
			r.Header.Set(string(k), string(v))
		}
	}
	return r
}

// commitOf is the n-th commit the store benchmarks push.
func commitOf(n int) string { return fmt.Sprintf("%040x", uint64(n)*0x9e3779b97f4a7c15) }

func benchConfig(tb testing.TB) *config.Config {
	dir := tb.TempDir()
	w := &work{root: dir, origin: filepath.Join(dir, "origin.git")}
	path, err := w.writeConfig(dir, "127.0.0.1:9")
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func newServer(tb testing.TB, log *slog.Logger) (*server.Server, *store.DB) {
	cfg := benchConfig(tb)
	db, err := store.Open(context.Background(), store.Options{Path: cfg.State.Path, CheckpointEvery: store.ServerCheckpointEvery})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	srv, err := server.New(server.Options{Config: cfg, Store: db, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	return srv, db
}

func driveHandler(b *testing.B, h http.Handler, want int) {
	driveHandlerRedelivering(b, h, want, 0)
}

// driveHandlerRedelivering is driveHandler with a fraction redeliver of
// the requests sending again a delivery its goroutine sent before.
func driveHandlerRedelivering(b *testing.B, h http.Handler, want int, redeliver float64) {
	bs := benchBodies(b)
	var seq atomic.Uint64
	var goroutines atomic.Uint64
	// Build the requests outside the timer's hot loop is not possible per
	// request; httptest.NewRequest's cost is in both sides alike.
	b.SetParallelism(parallel / max(1, runtimeProcs()))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sign := bs.signer()
		rng := mrand.New(mrand.NewPCG(goroutines.Add(1), 1))
		var sent []uint64
		for pb.Next() {
			n := seq.Add(1)
			if len(sent) > 0 && rng.Float64() < redeliver {
				n = sent[rng.IntN(len(sent))]
			} else if redeliver > 0 {
				sent = append(sent, n)
			}
			r := request(bs, sign, n)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != want {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}

func runtimeProcs() int { return numCPU() }

// BenchmarkIntake is fraisier's intake as serve runs it: JSON log lines
// (written to io.Discard, so their formatting counts but no write does).
// It reports the writer's batches: their mean size, and the share of the
// run the writer spent in RecordIntake (near 1: the writer is the limit).
func BenchmarkIntake(b *testing.B) {
	cfg := benchConfig(b)
	db, err := store.Open(context.Background(), store.Options{Path: cfg.State.Path, CheckpointEvery: store.ServerCheckpointEvery})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cs := &countingStore{DB: db}
	srv, err := server.New(server.Options{Config: cfg, Store: cs, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	driveHandler(b, srv.Handler(), http.StatusAccepted)
	b.StopTimer()
	if n := cs.batches.Load(); n > 0 {
		b.ReportMetric(float64(cs.items.Load())/float64(n), "deliveries/batch")
		b.ReportMetric(time.Duration(cs.busy.Load()).Seconds()/b.Elapsed().Seconds(), "writer-busy")
	}
}

// BenchmarkIntakeRedelivered is BenchmarkIntake with one delivery in ten
// sent again under its id, as a forge's Redeliver button does.
func BenchmarkIntakeRedelivered(b *testing.B) {
	srv, _ := newServer(b, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	driveHandlerRedelivering(b, srv.Handler(), http.StatusAccepted, 0.1)
}

// countingStore counts the batches the intake writer hands the store.
type countingStore struct {
	*store.DB
	batches, items, busy atomic.Int64
}

func (c *countingStore) RecordIntake(ctx context.Context, items []store.Intake) ([]store.IntakeResult, error) {
	start := time.Now()
	defer func() { c.busy.Add(int64(time.Since(start))) }()
	c.batches.Add(1)
	c.items.Add(int64(len(items)))
	return c.DB.RecordIntake(ctx, items)
}

// BenchmarkIntakeNoLog is the intake without logging.
func BenchmarkIntakeNoLog(b *testing.B) {
	srv, _ := newServer(b, nil)
	driveHandler(b, srv.Handler(), http.StatusAccepted)
}

// BenchmarkIntakeNullStore is the intake with JSON logs over a store that
// records nothing and answers at once: fraisier's HTTP side alone, the
// ceiling of any store work.
func BenchmarkIntakeNullStore(b *testing.B) {
	null, err := server.New(server.Options{Config: benchConfig(b), Store: &nullStore{}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(null.Close)
	driveHandler(b, null.Handler(), http.StatusAccepted)
}

// nullStore records nothing: every delivery gets the next id and queues
// one deployment.
type nullStore struct{ id atomic.Int64 }

func (n *nullStore) Ping(context.Context) error { return nil }
func (n *nullStore) RecordIntake(_ context.Context, items []store.Intake) ([]store.IntakeResult, error) {
	out := make([]store.IntakeResult, len(items))
	for i, it := range items {
		e := it.Event
		e.ID = n.id.Add(1)
		out[i].Event = e
		for _, r := range it.Requests {
			out[i].Queued = append(out[i].Queued, store.Queued{Target: r.Target, DeploymentID: e.ID})
		}
	}
	return out, nil
}
func (n *nullStore) QueuedDeployments(context.Context) ([]store.Deployment, error) { return nil, nil }
func (n *nullStore) FraiseStates(context.Context, string, string) ([]store.FraiseState, error) {
	return nil, nil
}
func (n *nullStore) Deployments(context.Context, store.DeploymentFilter) ([]store.Deployment, error) {
	return nil, nil
}
func (n *nullStore) Deployment(context.Context, int64) (store.Deployment, error) {
	return store.Deployment{}, store.ErrNotFound
}
func (n *nullStore) Steps(context.Context, int64) ([]store.Step, error) { return nil, nil }

// BenchmarkBaselineHandler is the program's baseline, in-process.
func BenchmarkBaselineHandler(b *testing.B) {
	driveHandler(b, baselineHandler([]byte(secret)), http.StatusAccepted)
}

// BenchmarkRecordIntake is the store alone: batches of accepted pushes to
// one target, each taking over the request waiting before it, as the
// intake writer commits them under load; with redelivered=10%, one
// delivery in ten is one of the benchmark's earlier deliveries again.
func BenchmarkRecordIntake(b *testing.B) {
	for _, bc := range []struct {
		size      int
		redeliver float64
	}{{1, 0}, {8, 0}, {32, 0}, {32, 0.1}} {
		name := "batch=" + strconv.Itoa(bc.size)
		if bc.redeliver > 0 {
			name += fmt.Sprintf("/redelivered=%.0f%%", 100*bc.redeliver)
		}
		b.Run(name, func(b *testing.B) {
			_, db := newServer(b, nil)
			ctx := context.Background()
			rng := mrand.New(mrand.NewPCG(1, 2))
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				items := make([]store.Intake, bc.size)
				for i := range items {
					n++
					d := n
					if n > 100 && rng.Float64() < bc.redeliver {
						d = 1 + rng.IntN(n-100)
					}
					sha := commitOf(d)
					t := store.Target{Fraise: "bench", Environment: "staging"}
					items[i] = store.Intake{
						Event: store.WebhookEvent{Forge: "github", DeliveryID: "d-" + strconv.Itoa(d), EventType: "push",
							Repository: "acme/bench", Ref: "refs/heads/main", SHA: sha, Sender: "ada", Outcome: store.OutcomeAccepted,
							RemoteAddr: "127.0.0.1", ReceivedAt: time.Now()},
						Requests: []store.QueueRequest{{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "ada via github"}},
					}
				}
				if _, err := db.RecordIntake(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bc.size)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// BenchmarkSQLiteFloor is what SQLite itself allows on this machine, for
// scale: the state database's own tb_webhook_event, one prepared INSERT
// per delivery, batches of 32 per transaction, none of the queueing. The
// store's RecordIntake does far more per delivery; this is the floor of
// any design that records each delivery as a row.
func BenchmarkSQLiteFloor(b *testing.B) {
	_, db := newServer(b, nil)
	ctx := context.Background()
	stmt, err := db.SQL().PrepareContext(ctx, `INSERT INTO tb_webhook_event
		(forge, delivery_id, event_type, repository, ref, sha, sender, outcome, reason, remote_addr, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (forge, delivery_id) WHERE delivery_id <> '' DO NOTHING
		RETURNING id`)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	const size = 32
	n := 0
	for b.Loop() {
		tx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		st := tx.StmtContext(ctx, stmt)
		for range size {
			n++
			var id int64
			if err := st.QueryRowContext(ctx, "github", "d-"+strconv.Itoa(n), "push", "acme/bench", "refs/heads/main",
				commitOf(n), "ada", store.OutcomeAccepted, "", "127.0.0.1", time.Now().UnixMilli()).Scan(&id); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "deliveries/s")
}
