package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// hostSep joins an environment and one of its hosts into the per-host
// target a rollout step deploys (config.HostSep; "@" is in no name).
const hostSep = "@"

// Defaults of a rollout policy, as the configuration documents them.
const (
	defaultNodeTimeout  = 30 * time.Second
	defaultClaimTimeout = 2 * time.Minute
)

// hostTarget is the per-host target of host in the environment of t.
func hostTarget(t Target, host string) Target {
	return Target{Fraise: t.Fraise, Environment: t.Environment + hostSep + host}
}

// normPolicy checks p and fills its defaults: the migration host (the
// first host unless named) moved first, a batch of at least one, the
// timeouts.
func normPolicy(p RolloutPolicy) (RolloutPolicy, error) {
	if len(p.Hosts) == 0 {
		return p, fmt.Errorf("a rollout needs at least one host")
	}
	seen := make(map[string]bool, len(p.Hosts))
	for _, h := range p.Hosts {
		if h == "" || strings.Contains(h, hostSep) {
			return p, fmt.Errorf("host %q: a host name is not empty and has no %q", h, hostSep)
		}
		if seen[h] {
			return p, fmt.Errorf("host %q listed twice", h)
		}
		seen[h] = true
	}
	if p.MigrateHost == "" {
		p.MigrateHost = p.Hosts[0]
	}
	i := slices.Index(p.Hosts, p.MigrateHost)
	if i < 0 {
		return p, fmt.Errorf("migration host %q is not one of the hosts", p.MigrateHost)
	}
	hosts := make([]string, 0, len(p.Hosts))
	hosts = append(hosts, p.MigrateHost)
	hosts = append(hosts, p.Hosts[:i]...)
	p.Hosts = append(hosts, p.Hosts[i+1:]...)
	p.Batch = max(p.Batch, 1)
	if p.NodeTimeout <= 0 {
		p.NodeTimeout = defaultNodeTimeout
	}
	if p.ClaimTimeout <= 0 {
		p.ClaimTimeout = defaultClaimTimeout
	}
	p.CanaryWait = max(p.CanaryWait, 0)
	p.Pause = max(p.Pause, 0)
	return p, nil
}

// batchOf is the batch of the host at position i: the migration host
// alone first, then p.Batch hosts at a time.
func batchOf(p RolloutPolicy, i int) int {
	if i == 0 {
		return 0
	}
	return 1 + (i-1)/p.Batch
}

// notifyTx wakes, once tx commits, the nodes the topic concerns
// (PostgreSQL; see Listen).
func (db *DB) notifyTx(ctx context.Context, tx *sql.Tx, topic string) error {
	if db.d.notify == "" {
		return nil
	}
	if _, err := db.execTx(ctx, tx, db.d.notify, topic); err != nil {
		return fmt.Errorf("notify the other nodes: %w", err)
	}
	return nil
}

// execOne runs a statement that must change exactly one row.
func (db *DB) execOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := db.execTx(ctx, tx, query, args...)
	if err != nil {
		return err
	}
	return oneRow(res)
}

// lockRolloutsOf serialises, on PostgreSQL, the transactions that queue a
// rollout of t and the one that ends t's running rollout: each then sees
// what the other did (see queueRollout and finishRollout).
func (db *DB) lockRolloutsOf(ctx context.Context, tx *sql.Tx, t Target) error {
	if db.d.lockRollouts == "" {
		return nil
	}
	if _, err := db.execTx(ctx, tx, db.d.lockRollouts, t.String()); err != nil {
		return fmt.Errorf("lock the rollouts of %s: %w", t, err)
	}
	return nil
}

// waitingRollout is the rollout queued for an environment.
type waitingRollout struct {
	id   int64
	hook sql.NullInt64
}

const (
	sqlQueuedRollout = `SELECT id, webhook_event_id FROM tb_rollout
		WHERE fraise = ? AND environment = ? AND status = 'queued'`
	sqlRolloutRunning = `SELECT 1 FROM tb_rollout
		WHERE fraise = ? AND environment = ? AND status IN ('running', 'rolling_back')`
	sqlSupersedeRollout = `UPDATE tb_rollout SET status = 'superseded', finished_at = ?
		WHERE id = ? AND status = 'queued'`
	sqlInsertRollout = `INSERT INTO tb_rollout
		(fraise, environment, sha, ref, trigger, actor, webhook_event_id, status, policy, migrate_host, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	sqlInsertRolloutHost = `INSERT INTO tb_rollout_host (rollout_id, host, position, batch, status)
		VALUES (?, ?, ?, ?, 'pending')`
)

// queuedRollout finds the rollout queued for t, locked.
func (db *DB) queuedRollout(ctx context.Context, tx *sql.Tx, t Target) (w waitingRollout, found bool, err error) {
	err = db.queryRowTx(ctx, tx, sqlQueuedRollout+db.d.forUpdate, t.Fraise, t.Environment).Scan(&w.id, &w.hook)
	switch {
	case notFound(err):
		return w, false, nil
	case err != nil:
		return w, false, fmt.Errorf("find the rollout queued for %s: %w", t, err)
	}
	return w, true, nil
}

// rolloutRunning reports whether a rollout of t runs or rolls back.
func (db *DB) rolloutRunning(ctx context.Context, tx *sql.Tx, t Target) (bool, error) {
	err := exists(ctx, tx, db.q(sqlRolloutRunning), t.Fraise, t.Environment)
	switch {
	case err == nil:
		return true, nil
	case err == ErrNotFound:
		return false, nil
	}
	return false, fmt.Errorf("find the rollout running for %s: %w", t, err)
}

// insertRollout records the rollout r asks for, queued or, with start,
// running (startRollout then queues its first batch), and its hosts.
func (db *DB) insertRollout(ctx context.Context, tx *sql.Tx, r newerRequest, now int64, start bool) (int64, error) {
	p, err := normPolicy(*r.Rollout)
	if err != nil {
		return 0, err
	}
	policy, err := json.Marshal(p)
	if err != nil {
		return 0, fmt.Errorf("encode the rollout policy: %w", err)
	}
	var hook sql.NullInt64
	if r.hook != 0 {
		hook = sql.NullInt64{Int64: r.hook, Valid: true}
	}
	status := RolloutQueued
	if start {
		status = RolloutRunning
	}
	var id int64
	if err := db.queryRowTx(ctx, tx, sqlInsertRollout, r.Fraise, r.Environment, r.sha, r.Ref, r.Trigger, r.Actor,
		hook, status, string(policy), p.MigrateHost, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert rollout: %w", err)
	}
	for i, h := range p.Hosts {
		if _, err := db.execTx(ctx, tx, sqlInsertRolloutHost, id, h, i, batchOf(p, i)); err != nil {
			return 0, fmt.Errorf("insert host %s of rollout %d: %w", h, id, err)
		}
	}
	return id, nil
}

// startRollout starts rollout id, recorded running: its first batch is
// queued.
func (db *DB) startRollout(ctx context.Context, tx *sql.Tx, id, now int64) error {
	a, found, err := db.loadRollout(ctx, tx, id, db.d.forUpdate, false)
	if err != nil || !found {
		return err
	}
	a.now = fromMS(now)
	a.r.Status = RolloutRunning
	at := a.now
	a.r.StartedAt = &at
	a.dirty = true
	if err := a.queueBatch(ctx, 0, a.now); err != nil {
		return err
	}
	return a.save(ctx)
}

// queueStep queues host's step of the rollout: a deployment of the
// per-host target that only the host's node claims. It returns the
// deployment and the commit the host runs now (what a rollback returns
// to).
func (db *DB) queueStep(ctx context.Context, tx *sql.Tx, r *Rollout, host string, trigger Trigger, sha string, now int64, marks *[]supersededMark) (id int64, current string, err error) {
	t := hostTarget(r.Target, host)
	if err := db.lockTarget(ctx, tx, t); err != nil {
		return 0, "", err
	}
	err = db.queryRowTx(ctx, tx, "SELECT current_sha FROM tb_fraise_state WHERE fraise = ? AND environment = ?",
		t.Fraise, t.Environment).Scan(&current)
	if err != nil && !notFound(err) {
		return 0, "", fmt.Errorf("read state of %s: %w", t, err)
	}
	ref := r.Ref
	if trigger == TriggerRollback {
		// As the deploy API queues a rollback: its ref names what to
		// return to (QueuedRef), here the commit the host ran before.
		ref = sha
	}
	q, err := db.queueRequest(ctx, tx, newerRequest{
		QueueRequest: QueueRequest{Target: t, SHA: sha, Ref: ref, Trigger: trigger, Actor: r.Actor},
		sha:          sha, node: host, rollout: r.ID,
	}, now, false, marks)
	if err != nil {
		return 0, "", fmt.Errorf("queue the step of %s: %w", t, err)
	}
	return q.DeploymentID, current, nil
}
