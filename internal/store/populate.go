package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Populate fills db with a year of synthetic history ending now, for
// benchmarks: deployments over ~10 fraises × 3 environments, mostly
// succeeded, and webhooks events, most of them linked to the
// webhook-triggered deployments. The same seed gives the same data. Rows
// are inserted in bulk, bypassing the per-deployment bookkeeping, and
// the state and rollups are then derived as RebuildStats does; the database
// may already hold data, which is kept. It all happens in one transaction.
func Populate(ctx context.Context, db *DB, deployments, webhooks int, seed int64) error {
	if deployments < 0 || webhooks < 0 {
		return fmt.Errorf("populate: negative counts %d, %d", deployments, webhooks)
	}
	p := &populator{
		db:  db,
		rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		now: db.nowMS(),
		sha: map[Target]string{},
	}
	if err := p.run(ctx, deployments, webhooks); err != nil {
		return fmt.Errorf("populate %d deployments and %d webhook events: %w", deployments, webhooks, err)
	}
	return nil
}

var (
	popFraises = []string{"api", "web", "worker", "billing", "auth", "search", "mailer", "reports", "gateway", "admin"}
	popEnvs    = []string{"production", "staging", "dev"}
	popForges  = []string{"github", "github", "github", "gitlab", "gitlab", "gitea"}
	popPeople  = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
)

type populator struct {
	db     *DB
	rng    *rand.Rand
	now    int64
	nextD  int64 // next deployment id
	nextW  int64 // next webhook event id
	sha    map[Target]string
	dep    *bulkInserter
	hook   *bulkInserter
	linkIn *bulkInserter
}

func (p *populator) run(ctx context.Context, deployments, webhooks int) error {
	for _, q := range []struct {
		query string
		dst   *int64
	}{
		{"SELECT COALESCE(MAX(id), 0) + 1 FROM tb_deployment", &p.nextD},
		{"SELECT COALESCE(MAX(id), 0) + 1 FROM tb_webhook_event", &p.nextW},
	} {
		if err := p.db.sql.QueryRowContext(ctx, q.query).Scan(q.dst); err != nil {
			return fmt.Errorf("read next id: %w", err)
		}
	}
	linked := min(webhooks, deployments*6/10)
	extra := webhooks - linked
	start := p.now - 365*dayMS
	span := float64(p.now - start)

	return p.db.writeSession(ctx, p.db.d.bulkSession, func(tx *sql.Tx) error {
		if p.db.d.deferForeignKeys != "" {
			// Rows of the three tables are buffered separately, so a
			// deployment can reach the database before its webhook event.
			if _, err := tx.ExecContext(ctx, p.db.d.deferForeignKeys); err != nil {
				return fmt.Errorf("defer foreign keys: %w", err)
			}
		}
		// Building an index once over all rows is several times faster
		// than maintaining it row by row. All in one transaction: a failure
		// leaves the database as it was, indexes included.
		indexes, err := p.dropIndexes(ctx, tx)
		if err != nil {
			return err
		}
		p.begin(tx)
		if deployments == 0 {
			for i := range extra {
				if err := p.extraWebhook(ctx, start+int64(span*float64(i)/float64(extra))); err != nil {
					return err
				}
			}
		}
		for i := range deployments {
			at := start + int64(span*(float64(i)+p.rng.Float64()*0.5)/float64(deployments))
			for range share(i, extra, deployments) {
				if err := p.extraWebhook(ctx, at-p.rng.Int64N(60000)); err != nil {
					return err
				}
			}
			if err := p.deployment(ctx, at, share(i, linked, deployments) == 1); err != nil {
				return err
			}
		}
		if err := p.flush(ctx); err != nil {
			return err
		}
		// PostgreSQL will not build an index on a table with checks pending.
		if p.db.d.checkForeignKeys != "" {
			if _, err := tx.ExecContext(ctx, p.db.d.checkForeignKeys); err != nil {
				return fmt.Errorf("check foreign keys: %w", err)
			}
		}
		for _, ix := range indexes {
			if _, err := tx.ExecContext(ctx, ix); err != nil {
				return fmt.Errorf("recreate index: %w", err)
			}
		}
		for _, stmt := range p.db.d.afterBulkInsert {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("after bulk insert: %w", err)
			}
		}
		return p.db.rebuild(ctx, tx)
	})
}

// dropIndexes drops the secondary indexes of the tables Populate fills and
// returns the statements that recreate them.
func (p *populator) dropIndexes(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, p.db.d.listIndexes)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	var names, defs []string
	err = eachRow(rows, func() error {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return err
		}
		names, defs = append(names, name), append(defs, def)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, "DROP INDEX "+name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return defs, nil
}

// share spreads total items evenly over n slots: how many go in slot i.
func share(i, total, n int) int {
	return (i+1)*total/n - i*total/n
}

func (p *populator) begin(tx *sql.Tx) {
	p.hook = p.db.newBulkInserter(tx, "tb_webhook_event", "id", "forge", "delivery_id", "event_type",
		"repository", "ref", "sha", "sender", "outcome", "reason", "remote_addr", "received_at")
	p.dep = p.db.newBulkInserter(tx, "tb_deployment", "id", "fraise", "environment", "trigger", "actor",
		"requested_ref", "old_sha", "new_sha", "release", "status", "started_at", "finished_at", "duration_ms",
		"error", "webhook_event_id", "host", "pid")
	p.linkIn = p.db.newBulkInserter(tx, "tb_webhook_deployment", "webhook_event_id", "deployment_id", "fraise")
}

func (p *populator) flush(ctx context.Context) error {
	for _, b := range []*bulkInserter{p.hook, p.dep, p.linkIn} {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (p *populator) hex(n int) string {
	b := make([]byte, n/2)
	for i := 0; i < len(b); i += 8 {
		v := p.rng.Uint64()
		for j := i; j < min(i+8, len(b)); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return hex.EncodeToString(b)
}

func (p *populator) pick(xs []string) string { return xs[p.rng.IntN(len(xs))] }

func (p *populator) target() Target {
	env := "production"
	switch r := p.rng.IntN(10); {
	case r < 4:
		env = "staging"
	case r < 6:
		env = "dev"
	}
	return Target{Fraise: p.pick(popFraises), Environment: env}
}

func (p *populator) webhook(ctx context.Context, at int64, t Target, sha, outcome, reason string) (int64, error) {
	id := p.nextW
	p.nextW++
	delivery := p.hex(32)
	if outcome == OutcomeDuplicate {
		delivery = "" // the first delivery holds the id; a copy is kept without it
	}
	err := p.hook.add(ctx, id, p.pick(popForges), delivery, "push", "acme/"+t.Fraise, "refs/heads/"+t.Environment,
		sha, p.pick(popPeople), outcome, reason, fmt.Sprintf("192.0.2.%d", p.rng.IntN(254)+1), at)
	return id, err
}

func (p *populator) extraWebhook(ctx context.Context, at int64) error {
	outcome, reason := OutcomeIgnored, "branch not deployed"
	switch r := p.rng.IntN(100); {
	case r < 15:
		outcome, reason = OutcomeRejected, "bad signature"
	case r < 20:
		outcome, reason = OutcomeDuplicate, "delivery already processed"
	case r < 30:
		outcome, reason = OutcomeSuperseded, "a newer push replaced it"
	}
	_, err := p.webhook(ctx, at, p.target(), p.hex(40), outcome, reason)
	return err
}

func (p *populator) deployment(ctx context.Context, at int64, fromWebhook bool) error {
	t := p.target()
	id := p.nextD
	p.nextD++
	newSHA := p.hex(40)
	oldSHA := p.sha[t]

	status := StatusSucceeded
	switch r := p.rng.IntN(1000); {
	case r < 40:
		status = StatusFailed
	case r < 70:
		status = StatusRolledBack
	case r < 75:
		status = StatusRollbackFailed
	case r < 80:
		status = StatusInterrupted
	case r < 120:
		status = StatusSkipped
	case r < 140:
		status = StatusSuperseded
	}
	// Durations are log-normal around a per-fraise typical time.
	typical := 20000.0 + 15000.0*float64(len(t.Fraise))
	duration := int64(typical * math.Exp(0.5*p.rng.NormFloat64()))
	errText := ""
	switch status {
	case StatusSkipped:
		duration = 200 + p.rng.Int64N(1500)
	case StatusSuperseded:
		duration = p.rng.Int64N(100)
	case StatusRolledBack, StatusRollbackFailed:
		duration = duration * 3 / 2
		errText = "health check failed: GET /health returned 503"
	case StatusFailed:
		duration /= 2
		errText = "build failed: exit status 1"
	case StatusInterrupted:
		errText = "deploying process died"
	case StatusSucceeded:
		p.sha[t] = newSHA
	}
	trigger, actor := TriggerCLI, p.pick(popPeople)
	var webhookID sql.NullInt64
	if fromWebhook {
		trigger = TriggerWebhook
		wid, err := p.webhook(ctx, at-p.rng.Int64N(2000), t, newSHA, OutcomeAccepted, "")
		if err != nil {
			return err
		}
		webhookID = sql.NullInt64{Int64: wid, Valid: true}
	} else {
		switch r := p.rng.IntN(10); {
		case r < 4:
			trigger, actor = TriggerPoll, "fraisier"
		case r < 5:
			trigger = TriggerRollback
		case r < 6:
			trigger, actor = TriggerSchedule, "fraisier"
		}
	}
	release := time.UnixMilli(at).UTC().Format("20060102-150405") + "-" + newSHA[:7]
	if err := p.dep.add(ctx, id, t.Fraise, t.Environment, trigger, actor, "refs/heads/main", oldSHA, newSHA, release,
		status, at, at+duration, duration, errText, webhookID, "deploy-1", 1000+p.rng.IntN(60000)); err != nil {
		return err
	}
	if webhookID.Valid {
		return p.linkIn.add(ctx, webhookID.Int64, id, t.Fraise)
	}
	return nil
}
