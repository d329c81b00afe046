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
	w := &pgWorkload{db: db, targets: []store.Target{
		{Fraise: "api", Environment: "production"}, {Fraise: "api", Environment: "staging"},
		{Fraise: "web", Environment: "production"}, {Fraise: "web", Environment: "staging"},
	}}
	for i := range 400 {
		if err := w.cycle(w.targets[i%len(w.targets)]); err != nil {
			b.Fatal(err)
		}
		if _, err := db.RecordIntake(ctx, []store.Intake{w.delivery(w.targets[i%len(w.targets)])}); err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string, op func() error) {
		b.Run(name, func(b *testing.B) {
			before := cpuTime()
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		})
	}
	i := 0
	run("DeploymentCycle", func() error { i++; return w.cycle(w.targets[i%len(w.targets)]) })
	run("Intake", func() error {
		batch := make([]store.Intake, 8)
		for j := range batch {
			batch[j] = w.delivery(w.targets[j%2])
		}
		_, err := db.RecordIntake(ctx, batch)
		return err
	})
	run("Deployments", func() error { return second(db.Deployments(ctx, store.DeploymentFilter{Fraise: "api"})) })
	run("Webhooks", func() error { return second(db.Webhooks(ctx, store.WebhookFilter{})) })
	run("Stats", func() error { return second(db.Stats(ctx, store.StatsFilter{})) })
	run("FraiseStates", func() error { return second(db.FraiseStates(ctx, "", "")) })
}

func second[T any](_ T, err error) error { return err }

// pgWorkload makes BenchmarkPostgres's deliveries and deployments.
type pgWorkload struct {
	db      *store.DB
	targets []store.Target
	n       int
}

// delivery is a new push for t, accepted, with its request.
func (w *pgWorkload) delivery(t store.Target) store.Intake {
	w.n++
	sha := fmt.Sprintf("%040x", w.n)
	return store.Intake{
		Event: store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprint("d", w.n), EventType: "push",
			Repository: "acme/" + t.Fraise, Ref: "refs/heads/main", SHA: sha, Outcome: store.OutcomeAccepted},
		Requests: []store.QueueRequest{{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice"}},
	}
}

// cycle is one deployment of t: started, a step with output, finished.
func (w *pgWorkload) cycle(t store.Target) error {
	ctx := context.Background()
	id, err := w.db.StartDeployment(ctx, store.Deployment{Target: t, Trigger: store.TriggerCLI, Actor: "alice"})
	if err != nil {
		return err
	}
	step, err := w.db.StartStep(ctx, id, "build")
	if err != nil {
		return err
	}
	if err := w.db.AppendStepOutput(ctx, step, []byte("ok\n")); err != nil {
		return err
	}
	if err := w.db.FinishStep(ctx, step, store.StepSucceeded, nil, ""); err != nil {
		return err
	}
	return w.db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
