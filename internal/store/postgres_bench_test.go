package store_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// BenchmarkPostgres measures the store's PostgreSQL path through its
// database/sql driver: the write paths a server runs (a deployment's
// cycle, the webhook intake) and the reads of the CLI and API, on a
// database holding a few hundred deployments and deliveries. Besides the
// time, cpu-ns/op is the benchmark process's own CPU time (the driver's
// and the store's work, not the server's), steadier than the time on a
// loaded machine.
//
//	go test -run '^$' -bench Postgres ./internal/store
func BenchmarkPostgres(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: pg.Database(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	targets := []store.Target{
		{Fraise: "api", Environment: "production"}, {Fraise: "api", Environment: "staging"},
		{Fraise: "web", Environment: "production"}, {Fraise: "web", Environment: "staging"},
	}
	n := 0
	delivery := func(t store.Target) store.Intake {
		n++
		sha := fmt.Sprintf("%040x", n)
		return store.Intake{
			Event: store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprint("d", n), EventType: "push",
				Repository: "acme/" + t.Fraise, Ref: "refs/heads/main", SHA: sha, Outcome: store.OutcomeAccepted},
			Requests: []store.QueueRequest{{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice"}},
		}
	}
	cycle := func(t store.Target) error {
		id, err := db.StartDeployment(ctx, store.Deployment{Target: t, Trigger: store.TriggerCLI, Actor: "alice"})
		if err != nil {
			return err
		}
		step, err := db.StartStep(ctx, id, "build")
		if err != nil {
			return err
		}
		if err := db.AppendStepOutput(ctx, step, []byte("ok\n")); err != nil {
			return err
		}
		if err := db.FinishStep(ctx, step, store.StepSucceeded, nil, ""); err != nil {
			return err
		}
		return db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
	}
	for i := range 400 {
		if err := cycle(targets[i%len(targets)]); err != nil {
			b.Fatal(err)
		}
		if _, err := db.RecordIntake(ctx, []store.Intake{delivery(targets[i%len(targets)])}); err != nil {
			b.Fatal(err)
		}
	}

	run := func(name string, op func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			before := cpuTime()
			op(b)
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		})
	}
	run("DeploymentCycle", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if err := cycle(targets[i%len(targets)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("Intake", func(b *testing.B) {
		for b.Loop() {
			batch := make([]store.Intake, 8)
			for j := range batch {
				batch[j] = delivery(targets[j%2])
			}
			if _, err := db.RecordIntake(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("Deployments", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Deployments(ctx, store.DeploymentFilter{Fraise: "api"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("Webhooks", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Webhooks(ctx, store.WebhookFilter{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("Stats", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Stats(ctx, store.StatsFilter{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("FraiseStates", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.FraiseStates(ctx, "", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
