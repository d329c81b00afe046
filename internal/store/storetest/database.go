package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

func (s *suite) testMigrations(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	have, known, err := db.SchemaVersion(ctx)
	check(t, err)
	if have != known || known < 1 {
		t.Fatalf("schema version %d, binary knows %d", have, known)
	}
	id := deploy(t, db, clk, api, 1, time.Second, store.StatusSucceeded)
	for range 2 {
		db, err = reopen(t, db, nil)
		check(t, err)
	}
	again, _, err := db.SchemaVersion(ctx)
	check(t, err)
	if again != have {
		t.Errorf("schema version after reopening: %d, want %d", again, have)
	}
	var applied int
	check(t, db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM tb_schema_migrations").Scan(&applied))
	if applied != known {
		t.Errorf("%d migrations recorded, want %d", applied, known)
	}
	d := must(db.Deployment(ctx, id))(t)
	if d.Status != store.StatusSucceeded {
		t.Errorf("deployment after reopening: %+v", d)
	}
	if db.Backend() != "sqlite" && db.Backend() != "postgres" {
		t.Errorf("Backend() = %q", db.Backend())
	}
	check(t, db.Ping(ctx))
}

func (s *suite) testSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	_, known, err := db.SchemaVersion(ctx)
	check(t, err)
	if _, err := db.SQL().ExecContext(ctx, fmt.Sprintf(
		"INSERT INTO tb_schema_migrations (version, applied_at) VALUES (%d, 0)", known+4)); err != nil {
		t.Fatal(err)
	}
	_, err = reopen(t, db, nil)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("reopen: %v, want ErrSchemaTooNew", err)
	}
	var sv *store.SchemaVersionError
	if !errors.As(err, &sv) || sv.Have != known+4 || sv.Known != known {
		t.Fatalf("reopen: %v, want a SchemaVersionError{%d, %d}", err, known+4, known)
	}
	want := fmt.Sprintf("state database schema version %d is newer than this fraisier (knows up to %d): upgrade fraisier or point --state elsewhere", known+4, known)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func (s *suite) testReadOnly(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	deploy(t, db, clk, api, 1, time.Second, store.StatusSucceeded)
	ro, err := reopen(t, db, func(o *store.Options) { o.ReadOnly = true })
	check(t, err)
	ds := must(ro.Deployments(ctx, store.DeploymentFilter{}))(t)
	if len(ds) != 1 {
		t.Fatalf("read-only: %d deployments, want 1", len(ds))
	}
	if _, err := ro.StartDeployment(ctx, store.Deployment{Target: api}); err == nil {
		t.Error("read-only database accepted a write")
	}
}

func (s *suite) testConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	other, err := store.Open(ctx, db.Options())
	check(t, err)
	t.Cleanup(func() { other.Close() })

	const writers, each = 8, 50
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		h := db
		if w%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg := store.Target{Fraise: fmt.Sprintf("f%d", w%4), Environment: "production"}
			for i := range each {
				id, err := h.StartDeployment(ctx, store.Deployment{Target: tg, NewSHA: sha(w*1000 + i)})
				if err != nil {
					errs <- err
					return
				}
				step, err := h.StartStep(ctx, id, "run")
				if err == nil {
					err = h.AppendStepOutput(ctx, step, []byte("ok\n"))
				}
				if err == nil {
					err = h.FinishStep(ctx, step, store.StepSucceeded, nil, "")
				}
				if err == nil {
					err = h.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	st := must(db.Stats(ctx, store.StatsFilter{}))(t)
	if st[0].Total != writers*each || st[0].ByStatus[store.StatusSucceeded] != writers*each {
		t.Errorf("stats count %d deployments, want %d", st[0].Total, writers*each)
	}
	if ds := must(db.Deployments(ctx, store.DeploymentFilter{Limit: 1000}))(t); len(ds) != writers*each {
		t.Errorf("%d deployments recorded, want %d", len(ds), writers*each)
	}
	if run := must(db.RunningDeployments(ctx))(t); len(run) != 0 {
		t.Errorf("%d deployments left running", len(run))
	}
}
