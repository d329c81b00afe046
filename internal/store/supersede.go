package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// newerRequest is a request being queued: the QueueRequest, its commit
// normalised, and the webhook event that made it (0 for none).
type newerRequest struct {
	QueueRequest
	sha  string
	hook int64
	// node and rollout make the request one host's step of a rollout:
	// only that node claims it (see queueStep).
	node    string
	rollout int64
}

// waitingRequest is the request already waiting for a target.
type waitingRequest struct {
	id      int64
	hook    sql.NullInt64
	started int64
	trigger Trigger
}

// madeByWebhook reports whether a webhook event made the request.
func (w waitingRequest) madeByWebhook() bool { return w.trigger == TriggerWebhook && w.hook.Valid }

// supersededMark is a webhook event to mark superseded (see
// markWebhookSuperseded) once the transaction holds every target it
// queues for.
type supersededMark struct {
	hook   int64
	reason string
}

// queueRequest queues r for its target in tx, at now. It is the rule for
// what happens when a newer request arrives for a target whose previous
// one still waits (at most one request waits per target, as a queued
// deployment):
//
//   - Both were made by a webhook: the newer push takes the waiting
//     request over in place. The deployment keeps its id and deploys the
//     newer commit (Queued.Replaced names the older event); the older
//     event is recorded superseded, linked to that deployment. A push
//     replacing another is not a deployment of its own.
//   - Otherwise (a requeue, the CLI, a follow, on either side): the
//     waiting deployment is finished superseded and counted in the
//     statistics as such, its event (if any) is recorded superseded, and
//     the newer request waits as a deployment of its own
//     (Queued.Superseded).
//   - ifIdle (EnqueueIfIdle, a follow): the waiting request is newer than
//     anything r could carry; r is dropped and the zero Queued returned.
//
// A deployment already running is never touched: r waits behind it. All
// of it happens in the transaction that queues r, so no push is lost
// between the older request leaving and the newer one being stored.
// RecordIntake first folds the older requests of one batch into the
// newest (see intakeBatch); only that one comes here.
//
// A request with a Rollout policy is a rollout of the environment across
// its hosts, and rollouts follow the same rule one level up
// (queueRollout): at most one waits per environment, and a newer one
// supersedes it; a running rollout is never stopped.
//
// Events to mark superseded are appended to marks: the caller marks them
// (markSuperseded) once it holds every target it queues for.
func (db *DB) queueRequest(ctx context.Context, tx *sql.Tx, r newerRequest, now int64, ifIdle bool, marks *[]supersededMark) (Queued, error) {
	if r.Rollout != nil {
		return db.queueRollout(ctx, tx, r, now, ifIdle, marks)
	}
	t := r.Target
	if err := db.lockTarget(ctx, tx, t); err != nil {
		return Queued{}, err
	}
	w, found, err := db.waiting(ctx, tx, t)
	if err != nil {
		return Queued{}, err
	}
	q := Queued{Target: t}
	switch {
	case !found:
	case ifIdle:
		return Queued{}, nil
	case w.madeByWebhook() && r.Trigger == TriggerWebhook && r.hook != 0:
		return db.takeOver(ctx, tx, r, w, marks)
	default:
		if err := db.supersede(ctx, tx, r, w, now, marks); err != nil {
			return Queued{}, err
		}
		q.Superseded = w.id
	}
	ins, err := db.stmt(ctx, tx, sqlInsertRequest)
	if err != nil {
		return Queued{}, err
	}
	var hook sql.NullInt64
	if r.hook != 0 {
		hook = sql.NullInt64{Int64: r.hook, Valid: true}
	}
	var rollout sql.NullInt64
	if r.rollout != 0 {
		rollout = sql.NullInt64{Int64: r.rollout, Valid: true}
	}
	if err := ins.QueryRowContext(ctx, t.Fraise, t.Environment, r.Trigger, r.Actor, requestedRef(r.QueueRequest), r.sha,
		now, hook, r.node, rollout).Scan(&q.DeploymentID); err != nil {
		return Queued{}, fmt.Errorf("insert: %w", err)
	}
	if err := db.markQueued(ctx, tx, t, q.DeploymentID); err != nil {
		return Queued{}, err
	}
	return q, db.notifyTx(ctx, tx, TopicNode(r.node))
}

const (
	sqlEnsureTarget = `INSERT INTO tb_fraise_state (fraise, environment) VALUES (?, ?)
		ON CONFLICT (fraise, environment) DO NOTHING`
	sqlLockTarget = `SELECT 1 FROM tb_fraise_state WHERE fraise = ? AND environment = ?`
	sqlWaiting    = `SELECT id, webhook_event_id, started_at, trigger FROM tb_deployment
		WHERE fraise = ? AND environment = ? AND status = 'queued'`
	sqlTakeOver = `UPDATE tb_deployment
		SET trigger = ?, actor = ?, requested_ref = ?, new_sha = ?, webhook_event_id = ?
		WHERE id = ? AND status = 'queued'`
	sqlSupersedeWaiting = `UPDATE tb_deployment
		SET status = 'superseded', finished_at = ?, duration_ms = ?, error = ?
		WHERE id = ? AND status = 'queued'`
	sqlInsertRequest = `INSERT INTO tb_deployment
		(fraise, environment, trigger, actor, requested_ref, new_sha, status, started_at, webhook_event_id, node, rollout_id)
		VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING id`
	// An upsert: on SQLite the target's state row is not created ahead as
	// a lock (see lockTarget), so it may not exist yet.
	sqlTargetQueued = `INSERT INTO tb_fraise_state (fraise, environment, status, last_deployment_id)
		VALUES (?, ?, 'queued', ?)
		ON CONFLICT (fraise, environment) DO UPDATE SET status = 'queued', last_deployment_id = excluded.last_deployment_id`
	// What statsAcc.add does for a superseded deployment (one more
	// superseded, the earliest finish kept), applied to the target's row
	// of the day and every later one, provided the day already has its
	// row: the running totals of a day without one start from the day
	// before, which addToRollups reads.
	sqlCountSuperseded = `UPDATE tb_stats_cumulative
		SET superseded = superseded + 1,
		    first_at = CASE WHEN first_at = 0 OR first_at > ? THEN ? ELSE first_at END
		WHERE fraise = ? AND environment = ? AND day >= ?
		  AND EXISTS (SELECT 1 FROM tb_stats_cumulative WHERE fraise = ? AND environment = ? AND day = ?)`
)

// lockTarget serialises queueing for t on PostgreSQL: with nothing
// waiting, the lookup of the waiting request locks no row, and two
// transactions would both insert one. The target's state row is the
// lock, created if need be. SQLite needs none: its write transactions
// take the database's one write lock when they begin.
func (db *DB) lockTarget(ctx context.Context, tx *sql.Tx, t Target) error {
	if db.d.forUpdate == "" {
		return nil
	}
	ensure, err := db.stmt(ctx, tx, sqlEnsureTarget)
	if err != nil {
		return err
	}
	if _, err := ensure.ExecContext(ctx, t.Fraise, t.Environment); err != nil {
		return fmt.Errorf("lock %s: %w", t, err)
	}
	lock, err := db.stmt(ctx, tx, sqlLockTarget+db.d.forUpdate)
	if err != nil {
		return err
	}
	var one int
	if err := lock.QueryRowContext(ctx, t.Fraise, t.Environment).Scan(&one); err != nil {
		return fmt.Errorf("lock %s: %w", t, err)
	}
	return nil
}

// waiting finds the request waiting for t, locked.
func (db *DB) waiting(ctx context.Context, tx *sql.Tx, t Target) (w waitingRequest, found bool, err error) {
	sel, err := db.stmt(ctx, tx, sqlWaiting+db.d.forUpdate)
	if err != nil {
		return w, false, err
	}
	err = sel.QueryRowContext(ctx, t.Fraise, t.Environment).Scan(&w.id, &w.hook, &w.started, &w.trigger)
	switch {
	case notFound(err):
		return w, false, nil
	case err != nil:
		return w, false, fmt.Errorf("find the request waiting for %s: %w", t, err)
	}
	return w, true, nil
}

// takeOver makes the waiting request w deploy r's commit, in place.
func (db *DB) takeOver(ctx context.Context, tx *sql.Tx, r newerRequest, w waitingRequest, marks *[]supersededMark) (Queued, error) {
	upd, err := db.stmt(ctx, tx, sqlTakeOver)
	if err != nil {
		return Queued{}, err
	}
	if _, err := upd.ExecContext(ctx, r.Trigger, r.Actor, requestedRef(r.QueueRequest), r.sha, r.hook, w.id); err != nil {
		return Queued{}, fmt.Errorf("take deployment %d over: %w", w.id, err)
	}
	why := fmt.Sprintf("replaced while it waited by webhook event %d (commit %s); deployment %d deploys that commit instead", r.hook, short12(r.sha), w.id)
	*marks = append(*marks, supersededMark{w.hook.Int64, why})
	if err := db.markQueued(ctx, tx, r.Target, w.id); err != nil {
		return Queued{}, err
	}
	return Queued{Target: r.Target, DeploymentID: w.id, Replaced: w.hook.Int64}, db.notifyTx(ctx, tx, TopicNode(r.node))
}

// supersede finishes the waiting request w as superseded by r.
func (db *DB) supersede(ctx context.Context, tx *sql.Tx, r newerRequest, w waitingRequest, now int64, marks *[]supersededMark) error {
	upd, err := db.stmt(ctx, tx, sqlSupersedeWaiting)
	if err != nil {
		return err
	}
	why := "superseded by a newer request for " + short12(r.sha)
	if r.hook != 0 {
		why += fmt.Sprintf(" (webhook event %d)", r.hook)
	}
	if _, err := upd.ExecContext(ctx, now, max(0, now-w.started), why, w.id); err != nil {
		return fmt.Errorf("supersede deployment %d: %w", w.id, err)
	}
	if w.hook.Valid {
		reason := fmt.Sprintf("a newer request replaced deployment %d before it ran", w.id)
		if r.hook != 0 {
			reason = fmt.Sprintf("webhook event %d replaced deployment %d before it ran", r.hook, w.id)
		}
		*marks = append(*marks, supersededMark{w.hook.Int64, reason})
	}
	return db.countSuperseded(ctx, tx, r.Target, now)
}

// countSuperseded adds one superseded deployment of t, finished at now,
// to the statistics, as FinishDeployment counts one: in one prepared
// statement when the day's rollup row exists, as it does for every
// queueing but the day's first, else through addToRollups.
func (db *DB) countSuperseded(ctx context.Context, tx *sql.Tx, t Target, now int64) error {
	upd, err := db.stmt(ctx, tx, sqlCountSuperseded)
	if err != nil {
		return err
	}
	day := dayOf(now)
	res, err := upd.ExecContext(ctx, now, now, t.Fraise, t.Environment, day, t.Fraise, t.Environment, day)
	if err != nil {
		return fmt.Errorf("update stats of %s: %w", t, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	return db.addToRollups(ctx, tx, t, finishedRow{status: StatusSuperseded, finished: now}, incidentAcc{})
}

// markQueued records in the target's state that deployment id waits.
func (db *DB) markQueued(ctx context.Context, tx *sql.Tx, t Target, id int64) error {
	state, err := db.stmt(ctx, tx, sqlTargetQueued)
	if err != nil {
		return err
	}
	if _, err := state.ExecContext(ctx, t.Fraise, t.Environment, id); err != nil {
		return fmt.Errorf("update state: %w", err)
	}
	return nil
}

// markSuperseded marks the events of marks, in the order of their ids,
// the same in every transaction.
func (db *DB) markSuperseded(ctx context.Context, tx *sql.Tx, marks []supersededMark) error {
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].hook < marks[j].hook })
	for _, m := range marks {
		if err := db.markWebhookSuperseded(ctx, tx, m.hook, m.reason); err != nil {
			return err
		}
	}
	return nil
}

// markWebhookSuperseded records that a delivery led to nothing that will
// run: once every deployment it queued itself was superseded, its outcome
// becomes superseded. A delivery routed to several targets keeps
// "accepted" while any of them still stands. Deployments it was only
// folded into (linked, queued by another delivery) do not count: its own
// requests are what it stands for.
//
// On PostgreSQL the event's row is locked first. Two transactions (two
// nodes) that each take over one of a delivery's requests at once would
// otherwise each still see the other's request standing, and the
// delivery would stay accepted with nothing of it left; locked, the
// second waits for the first to commit and its check, a statement of its
// own, then sees the first's takeover. Callers mark after locking every
// target they queue for, as all transactions lock targets before events,
// so that this cannot deadlock with a transaction holding a target.
func (db *DB) markWebhookSuperseded(ctx context.Context, tx *sql.Tx, webhookID int64, reason string) error {
	if db.d.forUpdate != "" {
		// NO KEY: a foreign key check of a row referencing the event (a
		// link) takes a key-share lock, which this must not block.
		var one int
		if err := db.queryRowTx(ctx, tx, sqlLockWebhook, webhookID).Scan(&one); err != nil {
			return fmt.Errorf("lock webhook event %d: %w", webhookID, err)
		}
	}
	upd, err := db.stmt(ctx, tx, sqlWebhookSuperseded)
	if err != nil {
		return err
	}
	res, err := upd.ExecContext(ctx, reason, webhookID, webhookID, webhookID, webhookID)
	if err != nil {
		return fmt.Errorf("mark webhook event %d superseded: %w", webhookID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	// Another of its requests still stands: it stays accepted, and its
	// reason says which part of it no longer deploys its commit.
	part, err := db.stmt(ctx, tx, sqlWebhookPartSuperseded)
	if err != nil {
		return err
	}
	if _, err := part.ExecContext(ctx, partSuperseded+reason, partSuperseded+reason, webhookID); err != nil {
		return fmt.Errorf("record on webhook event %d that a request of it was replaced: %w", webhookID, err)
	}
	return nil
}

// partSuperseded begins what an event still accepted records of one of
// its requests replaced.
const partSuperseded = "for one of its targets: "

const (
	sqlWebhookPartSuperseded = `UPDATE tb_webhook_event
	SET reason = CASE WHEN reason = '' THEN ? ELSE reason || '; ' || ? END
	WHERE id = ? AND outcome = 'accepted'`
	sqlLockWebhook = `SELECT 1 FROM tb_webhook_event WHERE id = ? FOR NO KEY UPDATE`
	// One statement rather than a count then an update: it runs on every
	// supersession, in the intake's hot path.
	sqlWebhookSuperseded = `UPDATE tb_webhook_event SET outcome = 'superseded', reason = ?
	WHERE id = ? AND NOT EXISTS (SELECT 1 FROM tb_deployment
		WHERE webhook_event_id = ? AND status <> 'superseded')
	  AND NOT EXISTS (SELECT 1 FROM tb_check_hold WHERE webhook_event_id = ? AND status = 'waiting')
	  AND NOT EXISTS (SELECT 1 FROM tb_rollout WHERE webhook_event_id = ? AND status <> 'superseded')`
)

// queueRollout is queueRequest for a request with a Rollout policy, the
// rule for rollouts of one environment:
//
//   - A rollout queued behind a running one and not started yet is
//     superseded by the newer one (its event, if any, marked superseded
//     through marks), which waits in its place; ifIdle drops the newer
//     one instead and returns the zero Queued.
//   - A running (or rolling back) rollout is never stopped: the newer one
//     waits until it ends (AdvanceRollouts then starts it).
//   - With no rollout running, the newer one starts at once: it is
//     running and its first batch (the migration host) is queued, in the
//     same transaction.
func (db *DB) queueRollout(ctx context.Context, tx *sql.Tx, r newerRequest, now int64, ifIdle bool, marks *[]supersededMark) (Queued, error) {
	t := r.Target
	if err := db.lockRolloutsOf(ctx, tx, t); err != nil {
		return Queued{}, err
	}
	waiting, found, err := db.queuedRollout(ctx, tx, t)
	if err != nil {
		return Queued{}, err
	}
	if found && ifIdle {
		return Queued{}, nil
	}
	if found {
		if err := db.execOne(ctx, tx, sqlSupersedeRollout, now, waiting.id); err != nil {
			return Queued{}, fmt.Errorf("supersede rollout %d: %w", waiting.id, err)
		}
	}
	running, err := db.rolloutRunning(ctx, tx, t)
	if err != nil {
		return Queued{}, err
	}
	id, err := db.insertRollout(ctx, tx, r, now, !running)
	if err != nil {
		return Queued{}, err
	}
	if found {
		if err := db.execOne(ctx, tx, "UPDATE tb_rollout SET superseded_by = ? WHERE id = ?", id, waiting.id); err != nil {
			return Queued{}, fmt.Errorf("supersede rollout %d: %w", waiting.id, err)
		}
		// Its hosts never start: they read skipped, not pending forever.
		if _, err := db.execTx(ctx, tx, "UPDATE tb_rollout_host SET status = ?, error = ? WHERE rollout_id = ? AND status = ?",
			HostSkipped, fmt.Sprintf("rollout %d replaced this one before it started", id), waiting.id, HostPending); err != nil {
			return Queued{}, fmt.Errorf("supersede rollout %d's hosts: %w", waiting.id, err)
		}
		if waiting.hook.Valid {
			reason := fmt.Sprintf("a newer request (rollout %d) replaced rollout %d before it started", id, waiting.id)
			if r.hook != 0 {
				reason = fmt.Sprintf("webhook event %d (rollout %d) replaced rollout %d before it started", r.hook, id, waiting.id)
			}
			*marks = append(*marks, supersededMark{waiting.hook.Int64, reason})
		}
	}
	if !running {
		if err := db.startRollout(ctx, tx, id, now); err != nil {
			return Queued{}, err
		}
	}
	return Queued{Target: t, RolloutID: id}, db.notifyTx(ctx, tx, TopicRollout)
}
