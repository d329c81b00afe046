package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// The statements of the intake's hot path, prepared once (see stmt).
const (
	sqlInsertEvent = `INSERT INTO tb_webhook_event
		(forge, delivery_id, event_type, repository, ref, sha, sender, outcome, reason, remote_addr, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (forge, delivery_id) WHERE delivery_id <> '' DO NOTHING
		RETURNING id`
	sqlEnsureTarget = `INSERT INTO tb_fraise_state (fraise, environment) VALUES (?, ?)
		ON CONFLICT (fraise, environment) DO NOTHING`
	sqlWaiting = `SELECT id, webhook_event_id, started_at FROM tb_deployment
		WHERE fraise = ? AND environment = ? AND status = 'queued'`
	sqlSupersedeWaiting = `UPDATE tb_deployment
		SET status = 'superseded', finished_at = ?, duration_ms = ?, error = ?
		WHERE id = ? AND status = 'queued'`
	sqlInsertRequest = `INSERT INTO tb_deployment
		(fraise, environment, trigger, actor, requested_ref, new_sha, status, started_at, finished_at, duration_ms,
		 error, webhook_event_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	sqlLinkWebhook = `INSERT INTO tb_webhook_deployment (webhook_event_id, deployment_id, fraise)
		VALUES (?, ?, ?) ON CONFLICT (webhook_event_id, deployment_id) DO NOTHING`
	sqlTargetQueued = `UPDATE tb_fraise_state SET status = 'queued', last_deployment_id = ?
		WHERE fraise = ? AND environment = ?`
	sqlEventSuperseded = `UPDATE tb_webhook_event SET outcome = 'superseded', reason = ? WHERE id = ?`
)

// intakeRef is one request of a batch: item i's request j.
type intakeRef struct{ item, req int }

// recordIntake is RecordIntake's transaction. A busy server hands it many
// deliveries at once, often several for one target; per target it queues
// only the newest request and writes the others straight as superseded, so
// a burst costs about one row per delivery rather than a queue-then-
// supersede cycle each.
func (db *DB) recordIntake(ctx context.Context, tx *sql.Tx, items []Intake) ([]IntakeResult, error) {
	now := db.nowMS()
	insEvent, err := db.stmt(ctx, tx, sqlInsertEvent)
	if err != nil {
		return nil, err
	}
	results := make([]IntakeResult, len(items))
	byTarget := map[Target][]intakeRef{}
	var targets []Target
	standing := make([]int, len(items)) // requests of each delivery not superseded
	for i, it := range items {
		e := it.Event
		received := e.ReceivedAt.UnixMilli()
		if e.ReceivedAt.IsZero() {
			received = now
		}
		var id int64
		err := insEvent.QueryRowContext(ctx, e.Forge, e.DeliveryID, e.EventType, e.Repository, e.Ref, e.SHA, e.Sender,
			e.Outcome, e.Reason, e.RemoteAddr, received).Scan(&id)
		if notFound(err) {
			r, err := db.duplicateIntake(ctx, tx, e)
			if err != nil {
				return nil, fmt.Errorf("record webhook %s %s: %w", e.Forge, e.DeliveryID, err)
			}
			results[i] = r
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("record webhook %s %s: insert: %w", e.Forge, e.DeliveryID, err)
		}
		e.ID, e.ReceivedAt = id, fromMS(received)
		results[i].Event = e
		standing[i] = len(it.Requests)
		for j, r := range it.Requests {
			if _, ok := byTarget[r.Target]; !ok {
				targets = append(targets, r.Target)
			}
			byTarget[r.Target] = append(byTarget[r.Target], intakeRef{i, j})
		}
	}
	// A fixed order: two PostgreSQL nodes queueing for the same targets
	// lock them in the same order and cannot deadlock.
	sort.Slice(targets, func(a, b int) bool { return targets[a].String() < targets[b].String() })
	for _, t := range targets {
		if err := db.queueBatch(ctx, tx, t, byTarget[t], items, results, standing, now); err != nil {
			return nil, fmt.Errorf("queue %s: %w", t, err)
		}
	}
	if len(targets) > 0 {
		upd, err := db.stmt(ctx, tx, sqlEventSuperseded)
		if err != nil {
			return nil, err
		}
		for i := range items {
			if len(items[i].Requests) == 0 || results[i].Duplicate || standing[i] > 0 {
				continue
			}
			reason := "a newer push replaced it before it ran"
			if _, err := upd.ExecContext(ctx, reason, results[i].Event.ID); err != nil {
				return nil, fmt.Errorf("mark webhook event %d superseded: %w", results[i].Event.ID, err)
			}
			results[i].Event.Outcome, results[i].Event.Reason = OutcomeSuperseded, reason
		}
	}
	return results, nil
}

// queueBatch queues the requests of one batch for target t, oldest first:
// the request already waiting and all but the last of these are
// superseded, the last waits.
func (db *DB) queueBatch(ctx context.Context, tx *sql.Tx, t Target, refs []intakeRef, items []Intake, results []IntakeResult, standing []int, now int64) error {
	// Serialise queueing per target: with nothing waiting, the SELECT below
	// locks no row, and two PostgreSQL transactions would both insert. The
	// target's state row is the lock, created if need be.
	ensure, err := db.stmt(ctx, tx, sqlEnsureTarget)
	if err != nil {
		return err
	}
	if _, err := ensure.ExecContext(ctx, t.Fraise, t.Environment); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if db.d.forUpdate != "" {
		var one int
		if err := tx.QueryRowContext(ctx, db.q("SELECT 1 FROM tb_fraise_state WHERE fraise = ? AND environment = ?"+db.d.forUpdate),
			t.Fraise, t.Environment).Scan(&one); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	request := func(r intakeRef) QueueRequest { return items[r.item].Requests[r.req] }
	hook := func(r intakeRef) int64 { return results[r.item].Event.ID }
	supersededBy := func(r intakeRef) string {
		return fmt.Sprintf("superseded by a newer request for %s (webhook event %d)", short12(request(r).SHA), hook(r))
	}

	superseded := 0
	var prev int64 // the request the next one replaces
	sel, err := db.stmt(ctx, tx, sqlWaiting+db.d.forUpdate)
	if err != nil {
		return err
	}
	var (
		waiting     int64
		waitingHook sql.NullInt64
		started     int64
	)
	switch err := sel.QueryRowContext(ctx, t.Fraise, t.Environment).Scan(&waiting, &waitingHook, &started); {
	case notFound(err):
	case err != nil:
		return fmt.Errorf("find the request waiting: %w", err)
	default:
		upd, err := db.stmt(ctx, tx, sqlSupersedeWaiting)
		if err != nil {
			return err
		}
		if _, err := upd.ExecContext(ctx, now, max(0, now-started), supersededBy(refs[0]), waiting); err != nil {
			return fmt.Errorf("supersede deployment %d: %w", waiting, err)
		}
		if waitingHook.Valid {
			first := hook(refs[0])
			if err := db.markWebhookSuperseded(ctx, tx, waitingHook.Int64, &first); err != nil {
				return err
			}
		}
		superseded++
		prev = waiting
	}

	ins, err := db.stmt(ctx, tx, sqlInsertRequest)
	if err != nil {
		return err
	}
	link, err := db.stmt(ctx, tx, sqlLinkWebhook)
	if err != nil {
		return err
	}
	var last int64
	for k, ref := range refs {
		r := request(ref)
		sha, err := normSHA(r.SHA)
		if err != nil {
			return err
		}
		status, finished, duration, why := StatusQueued, sql.NullInt64{}, sql.NullInt64{}, ""
		if k < len(refs)-1 {
			status = StatusSuperseded
			finished, duration = sql.NullInt64{Int64: now, Valid: true}, sql.NullInt64{Valid: true}
			why = supersededBy(refs[k+1])
		}
		var id int64
		if err := ins.QueryRowContext(ctx, t.Fraise, t.Environment, r.Trigger, r.Actor, requestedRef(r), sha, status,
			now, finished, duration, why, hook(ref)).Scan(&id); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if _, err := link.ExecContext(ctx, hook(ref), id, t.Fraise); err != nil {
			return fmt.Errorf("link webhook event %d: %w", hook(ref), err)
		}
		res := &results[ref.item]
		res.Queued = append(res.Queued, Queued{Target: t, DeploymentID: id, Superseded: prev})
		res.Event.DeploymentIDs = append(res.Event.DeploymentIDs, id)
		if status == StatusSuperseded {
			superseded++
			standing[ref.item]--
		}
		prev, last = id, id
	}

	state, err := db.stmt(ctx, tx, sqlTargetQueued)
	if err != nil {
		return err
	}
	if _, err := state.ExecContext(ctx, last, t.Fraise, t.Environment); err != nil {
		return fmt.Errorf("update state: %w", err)
	}
	if superseded > 0 {
		// Superseded requests count in the statistics as finished, with no
		// duration and no incident, exactly as FinishDeployment counts one.
		if err := db.addManyToRollups(ctx, tx, t, finishedRow{status: StatusSuperseded, finished: now}, incidentAcc{}, superseded); err != nil {
			return err
		}
	}
	return nil
}

// duplicateIntake answers a delivery seen before: the earlier event and
// the deployments it led to.
func (db *DB) duplicateIntake(ctx context.Context, tx *sql.Tx, e WebhookEvent) (IntakeResult, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, db.q("SELECT id FROM tb_webhook_event WHERE forge = ? AND delivery_id = ?"),
		e.Forge, e.DeliveryID).Scan(&id); err != nil {
		return IntakeResult{}, fmt.Errorf("read earlier delivery: %w", err)
	}
	evs, err := db.queryWebhooks(ctx, tx, " WHERE id = ?", []any{id})
	if err != nil {
		return IntakeResult{}, err
	}
	if len(evs) != 1 {
		return IntakeResult{}, fmt.Errorf("webhook event %d vanished", id)
	}
	res := IntakeResult{Event: evs[0], Duplicate: true}
	for _, did := range res.Event.DeploymentIDs {
		q := Queued{DeploymentID: did}
		if err := tx.QueryRowContext(ctx, db.q("SELECT fraise, environment FROM tb_deployment WHERE id = ?"), did).
			Scan(&q.Fraise, &q.Environment); err != nil {
			return IntakeResult{}, fmt.Errorf("read deployment %d: %w", did, err)
		}
		res.Queued = append(res.Queued, q)
	}
	return res, nil
}
