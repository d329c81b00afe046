package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/bench/grow"
	"github.com/fraiseql/fraisier/internal/store"
)

// The benchmarks read a database filled by grow.Populate. Its size comes
// from FRAISIER_BENCH_DEPLOYMENTS and FRAISIER_BENCH_WEBHOOKS (default
// 20000 each, so that go test -bench stays quick); FRAISIER_BENCH_DB names
// a file to keep it in, filled only if it is empty, so a 1M-row database
// is generated once:
//
//	FRAISIER_BENCH_DB=/tmp/bench.db FRAISIER_BENCH_DEPLOYMENTS=1000000 \
//	FRAISIER_BENCH_WEBHOOKS=1000000 go test -run '^$' -bench . ./internal/store
var bench struct {
	once    sync.Once
	path    string
	tempDir string // removed by TestMain
	err     error
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func benchDB(b *testing.B) *store.DB {
	b.Helper()
	ctx := context.Background()
	bench.once.Do(func() {
		bench.path = os.Getenv("FRAISIER_BENCH_DB")
		if bench.path == "" {
			dir, err := os.MkdirTemp("", "fraisier-bench-")
			if err != nil {
				bench.err = err
				return
			}
			bench.tempDir = dir
			bench.path = filepath.Join(dir, "bench.db")
		}
		db, err := store.Open(ctx, store.Options{Path: bench.path})
		if err != nil {
			bench.err = err
			return
		}
		defer db.Close()
		if ds, err := db.Deployments(ctx, store.DeploymentFilter{Limit: 1}); err != nil || len(ds) > 0 {
			bench.err = err
			return
		}
		n := envInt("FRAISIER_BENCH_DEPLOYMENTS", 20000)
		w := envInt("FRAISIER_BENCH_WEBHOOKS", n)
		start := time.Now()
		bench.err = grow.Populate(ctx, db, n, w, 1)
		b.Logf("populated %s with %d deployments and %d webhook events in %s", bench.path, n, w, time.Since(start))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	db, err := store.Open(ctx, store.Options{Path: bench.path, ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func BenchmarkDeployments(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		f    store.DeploymentFilter
	}{
		{"all", store.DeploymentFilter{}},
		{"fraise", store.DeploymentFilter{Fraise: "billing"}},
		{"target", store.DeploymentFilter{Fraise: "billing", Environment: "production"}},
		{"env", store.DeploymentFilter{Environment: "dev"}},
		{"status", store.DeploymentFilter{Status: store.StatusRollbackFailed}},
		{"fraise+status", store.DeploymentFilter{Fraise: "auth", Status: store.StatusRolledBack}},
		{"env+status", store.DeploymentFilter{Environment: "staging", Status: store.StatusFailed}},
		{"target+status", store.DeploymentFilter{Fraise: "api", Environment: "production", Status: store.StatusInterrupted}},
		{"unknown fraise", store.DeploymentFilter{Fraise: "nope"}},
		{"since 1h", store.DeploymentFilter{Since: time.Now().Add(-time.Hour)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := db.Deployments(ctx, bc.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFraiseStates(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := db.FraiseStates(ctx, "", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStats(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	now := time.Now()
	for _, bc := range []struct {
		name string
		f    store.StatsFilter
	}{
		{"all time", store.StatsFilter{}},
		{"fraise", store.StatsFilter{Fraise: "billing"}},
		{"since 7d", store.StatsFilter{Since: now.Add(-7 * 24 * time.Hour)}},
		{"since 30d", store.StatsFilter{Since: now.Add(-30 * 24 * time.Hour)}},
		{"fraise since 30d", store.StatsFilter{Fraise: "billing", Since: now.Add(-30 * 24 * time.Hour)}},
		{"since 365d", store.StatsFilter{Since: now.Add(-365 * 24 * time.Hour)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := db.Stats(ctx, bc.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWebhooks(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		f    store.WebhookFilter
	}{
		{"all", store.WebhookFilter{}},
		{"forge", store.WebhookFilter{Forge: "gitea"}},
		{"outcome", store.WebhookFilter{Outcome: store.OutcomeRejected}},
		{"forge+outcome", store.WebhookFilter{Forge: "gitlab", Outcome: store.OutcomeDuplicate}},
		{"fraise", store.WebhookFilter{Fraise: "billing"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := db.Webhooks(ctx, bc.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenStatus is what a CLI read command pays: open the database,
// run one query, close.
func BenchmarkOpenStatus(b *testing.B) {
	benchDB(b)
	ctx := context.Background()
	for b.Loop() {
		db, err := store.Open(ctx, store.Options{Path: bench.path, ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.FraiseStates(ctx, "", ""); err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// BenchmarkDeploymentCycle is the write path of one deployment: start, a
// step with output, finish with rollups, on a copy-free scratch database.
func BenchmarkDeploymentCycle(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(b.TempDir(), "w.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tg := store.Target{Fraise: "api", Environment: "production"}
	for b.Loop() {
		id, err := db.StartDeployment(ctx, store.Deployment{Target: tg})
		if err != nil {
			b.Fatal(err)
		}
		step, err := db.StartStep(ctx, id, "build")
		if err != nil {
			b.Fatal(err)
		}
		if err := db.AppendStepOutput(ctx, step, []byte("ok\n")); err != nil {
			b.Fatal(err)
		}
		if err := db.FinishStep(ctx, step, store.StepSucceeded, nil, ""); err != nil {
			b.Fatal(err)
		}
		if err := db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded}); err != nil {
			b.Fatal(err)
		}
	}
}
