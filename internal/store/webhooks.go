package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

func checkOutcome(o Outcome) error {
	switch o {
	case "", OutcomeAccepted, OutcomeIgnored, OutcomeRejected, OutcomeDuplicate, OutcomeSuperseded:
		return nil
	}
	return fmt.Errorf("unknown webhook outcome %q", o)
}

// RecordWebhook stores a received delivery and returns it with its id;
// ReceivedAt defaults to now. A delivery whose (forge, delivery id) was
// already recorded is not stored again: the earlier event is returned,
// with duplicate true, so the caller can answer the forge without acting
// twice.
func (db *DB) RecordWebhook(ctx context.Context, e WebhookEvent) (WebhookEvent, bool, error) {
	if e.Forge == "" {
		return WebhookEvent{}, false, fmt.Errorf("record webhook: forge is required")
	}
	if err := checkOutcome(e.Outcome); err != nil {
		return WebhookEvent{}, false, fmt.Errorf("record webhook %s %s: %w", e.Forge, e.DeliveryID, err)
	}
	received := e.ReceivedAt.UnixMilli()
	if e.ReceivedAt.IsZero() {
		received = db.nowMS()
	}
	var (
		stored    WebhookEvent
		duplicate bool
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		var id int64
		// The conflict target names the partial unique index, so deliveries
		// without an id are never taken for duplicates of each other.
		err := tx.QueryRowContext(ctx, db.q(`INSERT INTO tb_webhook_event
			(forge, delivery_id, event_type, repository, ref, sha, sender, outcome, reason, remote_addr, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, delivery_id) WHERE delivery_id <> '' DO NOTHING
			RETURNING id`),
			e.Forge, e.DeliveryID, e.EventType, e.Repository, e.Ref, e.SHA, e.Sender, e.Outcome, e.Reason,
			e.RemoteAddr, received).Scan(&id)
		switch {
		case notFound(err):
			duplicate = true
			err = tx.QueryRowContext(ctx, db.q("SELECT id FROM tb_webhook_event WHERE forge = ? AND delivery_id = ? AND delivery_id <> ''"),
				e.Forge, e.DeliveryID).Scan(&id)
			if err != nil {
				return fmt.Errorf("read earlier delivery: %w", err)
			}
		case err != nil:
			return err
		}
		evs, err := db.queryWebhooks(ctx, tx, " WHERE id = ?", []any{id})
		if err != nil {
			return err
		}
		if len(evs) != 1 {
			return fmt.Errorf("webhook event %d vanished", id)
		}
		stored = evs[0]
		return nil
	})
	if err != nil {
		return WebhookEvent{}, false, fmt.Errorf("record webhook %s %s: %w", e.Forge, e.DeliveryID, err)
	}
	return stored, duplicate, nil
}

// SetWebhookOutcome records what became of a webhook event.
func (db *DB) SetWebhookOutcome(ctx context.Context, id int64, outcome Outcome, reason string) error {
	if err := checkOutcome(outcome); err != nil {
		return fmt.Errorf("set outcome of webhook event %d: %w", id, err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q("UPDATE tb_webhook_event SET outcome = ?, reason = ? WHERE id = ?"), outcome, reason, id)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("set outcome of webhook event %d: %w", id, err)
	}
	return nil
}

// oneRow turns "no row affected" into ErrNotFound.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// LinkWebhook records that a webhook event led to (or was folded into) a
// deployment. Linking twice is harmless.
func (db *DB) LinkWebhook(ctx context.Context, webhookID, deploymentID int64) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, db.q("SELECT 1 FROM tb_webhook_event WHERE id = ?"), webhookID); err != nil {
			return fmt.Errorf("webhook event %d: %w", webhookID, err)
		}
		var fraise string
		err := tx.QueryRowContext(ctx, db.q("SELECT fraise FROM tb_deployment WHERE id = ?"), deploymentID).Scan(&fraise)
		if notFound(err) {
			return fmt.Errorf("deployment %d: %w", deploymentID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return db.link(ctx, tx, webhookID, deploymentID, fraise)
	})
	if err != nil {
		return fmt.Errorf("link webhook event %d to deployment %d: %w", webhookID, deploymentID, err)
	}
	return nil
}

func (db *DB) link(ctx context.Context, tx *sql.Tx, webhookID, deploymentID int64, fraise string) error {
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO tb_webhook_deployment (webhook_event_id, deployment_id, fraise)
		VALUES (?, ?, ?) ON CONFLICT (webhook_event_id, deployment_id) DO NOTHING`), webhookID, deploymentID, fraise)
	if err != nil {
		return fmt.Errorf("link webhook event %d: %w", webhookID, err)
	}
	return nil
}

// Webhooks returns the webhook events matching f, newest first, each with
// the ids of the deployments it is linked to.
func (db *DB) Webhooks(ctx context.Context, f WebhookFilter) ([]WebhookEvent, error) {
	evs, err := db.webhooks(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list webhook events: %w", err)
	}
	return evs, nil
}

func (db *DB) webhooks(ctx context.Context, f WebhookFilter) ([]WebhookEvent, error) {
	var (
		conds []string
		args  []any
	)
	if f.Forge != "" {
		conds = append(conds, "e.forge = ?")
		args = append(args, f.Forge)
	}
	if f.Outcome != "" {
		conds = append(conds, "e.outcome = ?")
		args = append(args, f.Outcome)
	}
	if f.BeforeID > 0 {
		conds = append(conds, "e.id < ?")
		args = append(args, f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	if f.Fraise == "" {
		where := ""
		if len(conds) > 0 {
			where = " WHERE " + strings.ReplaceAll(strings.Join(conds, " AND "), "e.", "")
		}
		return db.queryWebhooks(ctx, db.sql, where+" ORDER BY id DESC LIMIT ?", append(args, limit))
	}
	// Driven by the link table's (fraise, webhook_event_id) index, newest
	// first: filtering every event by "linked to this fraise" instead would
	// scan them all when the fraise has none.
	query := `SELECT DISTINCT l.webhook_event_id FROM tb_webhook_deployment l
		JOIN tb_webhook_event e ON e.id = l.webhook_event_id
		WHERE l.fraise = ?`
	for _, c := range conds {
		query += " AND " + c
	}
	query += " ORDER BY l.webhook_event_id DESC LIMIT ?"
	rows, err := db.sql.QueryContext(ctx, db.q(query), append(append([]any{f.Fraise}, args...), limit)...)
	if err != nil {
		return nil, err
	}
	var ids []any
	err = eachRow(rows, func() error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil || len(ids) == 0 {
		return []WebhookEvent{}, err
	}
	return db.queryWebhooks(ctx, db.sql, " WHERE id IN ("+placeholders(len(ids))+") ORDER BY id DESC", ids)
}

func (db *DB) queryWebhooks(ctx context.Context, q querier, tail string, args []any) ([]WebhookEvent, error) {
	query := `SELECT id, forge, delivery_id, event_type, repository, ref, sha, sender,
		outcome, reason, remote_addr, received_at, deployment_ids FROM v_webhook_events` + tail
	var (
		rows *sql.Rows
		err  error
	)
	if tx, ok := q.(*sql.Tx); ok {
		// The write paths read an event by id, a redelivery's answer in
		// the intake's transaction: prepared once, not parsed each time.
		rows, err = db.queryTx(ctx, tx, query, args...)
	} else {
		rows, err = q.QueryContext(ctx, db.q(query), args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	evs := []WebhookEvent{}
	for rows.Next() {
		var (
			e        WebhookEvent
			received int64
			ids      sql.NullString
		)
		if err := rows.Scan(&e.ID, &e.Forge, &e.DeliveryID, &e.EventType, &e.Repository, &e.Ref, &e.SHA, &e.Sender,
			&e.Outcome, &e.Reason, &e.RemoteAddr, &received, &ids); err != nil {
			return nil, err
		}
		e.ReceivedAt = fromMS(received)
		if e.DeploymentIDs, err = parseIDs(ids.String); err != nil {
			return nil, fmt.Errorf("webhook event %d: %w", e.ID, err)
		}
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// parseIDs reads the comma-separated deployment_ids column of
// v_webhook_events, always returning a non-nil slice so JSON shows [].
func parseIDs(s string) ([]int64, error) {
	ids := []int64{}
	if s == "" {
		return ids, nil
	}
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("deployment ids %q: %w", s, err)
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}
