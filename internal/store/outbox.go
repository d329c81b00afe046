package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// OutboxKind is what an outbox message is.
type OutboxKind string

// The outbox kinds.
const (
	OutboxNotification OutboxKind = "notification"
	OutboxForgeStatus  OutboxKind = "forge_status"
)

// OutboxState is where an outbox message stands: pending until its first
// attempt, failed while it is retried, then sent or given up.
type OutboxState string

// The outbox states.
const (
	OutboxPending OutboxState = "pending"
	OutboxSent    OutboxState = "sent"
	OutboxFailed  OutboxState = "failed"
	OutboxGivenUp OutboxState = "given_up"
)

// OutboxMessage is one message owed to a target. Payload is JSON and never
// holds a secret: the sender resolves the target's URL and token from the
// configuration, by Target name, when it sends.
type OutboxMessage struct {
	ID            int64       `json:"id"`
	Kind          OutboxKind  `json:"kind"`
	Target        string      `json:"target"`
	Event         string      `json:"event"`
	DeploymentID  *int64      `json:"deployment_id,omitempty"`
	Payload       string      `json:"payload"`
	CreatedAt     time.Time   `json:"created_at"`
	NextAttemptAt time.Time   `json:"next_attempt_at"`
	Attempts      int         `json:"attempts"`
	State         OutboxState `json:"state"`
	LastError     string      `json:"last_error"`
	SentAt        *time.Time  `json:"sent_at,omitempty"`
}

// OutboxAttempt is one try at sending an outbox message. Outcome is sent,
// failed (to be retried at Next) or given_up; Error must already be
// scrubbed of secrets.
type OutboxAttempt struct {
	At         time.Time     `json:"at"`
	Outcome    OutboxState   `json:"outcome"`
	HTTPStatus int           `json:"http_status,omitempty"`
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"-"`
	// Next is when a failed message is tried again.
	Next time.Time `json:"-"`
}

// OutboxFilter selects outbox messages, newest first.
type OutboxFilter struct {
	// States, when set, keeps only messages in one of them.
	States []OutboxState
	Kind   OutboxKind
	Limit  int // <= 0: a default of 50
}

func checkOutbox(m OutboxMessage) error {
	switch {
	case m.Kind != OutboxNotification && m.Kind != OutboxForgeStatus:
		return fmt.Errorf("unknown outbox kind %q", m.Kind)
	case m.Target == "":
		return errors.New("outbox message without a target")
	case m.Payload == "":
		return errors.New("outbox message without a payload")
	}
	return nil
}

// EnqueueOutbox stores messages to send, due at once, and returns their
// ids. It is one insert transaction: the deployment it reports is already
// recorded, and a failure here never undoes it.
func (db *DB) EnqueueOutbox(ctx context.Context, msgs ...OutboxMessage) ([]int64, error) {
	for _, m := range msgs {
		if err := checkOutbox(m); err != nil {
			return nil, fmt.Errorf("enqueue outbox message: %w", err)
		}
	}
	ids := make([]int64, 0, len(msgs))
	now := db.nowMS()
	err := db.write(ctx, func(tx *sql.Tx) error {
		for _, m := range msgs {
			var id int64
			err := tx.QueryRowContext(ctx, db.q(`INSERT INTO tb_outbox
				(kind, target, event, deployment_id, payload, created_at, next_attempt_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
				m.Kind, m.Target, m.Event, m.DeploymentID, m.Payload, now, now).Scan(&id)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enqueue %d outbox messages: %w", len(msgs), err)
	}
	return ids, nil
}

const outboxColumns = `id, kind, target, event, deployment_id, payload, created_at, next_attempt_at,
	attempts, state, last_error, sent_at`

// ClaimOutbox takes up to limit messages of kind that are due, oldest
// first, and leases them for lease: their next attempt is pushed that far
// so that no other sender, in this process or another node's, takes them
// meanwhile. RecordOutboxAttempt then sets what comes next. On PostgreSQL
// the rows are locked FOR UPDATE SKIP LOCKED, so two nodes claiming at
// once never block on nor take the same row.
func (db *DB) ClaimOutbox(ctx context.Context, kind OutboxKind, limit int, lease time.Duration) ([]OutboxMessage, error) {
	if limit <= 0 {
		limit = 10
	}
	var msgs []OutboxMessage
	now := db.nowMS()
	lock := ""
	if db.d.forUpdate != "" {
		lock = db.d.forUpdate + " SKIP LOCKED"
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		msgs, err = db.queryOutbox(ctx, tx, `SELECT `+outboxColumns+` FROM tb_outbox
			WHERE state IN ('pending', 'failed') AND kind = ? AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id LIMIT ?`+lock, kind, now, limit)
		if err != nil {
			return err
		}
		until := now + lease.Milliseconds()
		for i := range msgs {
			if _, err := tx.ExecContext(ctx, db.q("UPDATE tb_outbox SET next_attempt_at = ? WHERE id = ?"), until, msgs[i].ID); err != nil {
				return err
			}
			msgs[i].NextAttemptAt = fromMS(until)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim due outbox messages: %w", err)
	}
	return msgs, nil
}

// RecordOutboxAttempt records one attempt at message id and moves the
// message to the attempt's outcome: sent, failed (due again at a.Next) or
// given up.
func (db *DB) RecordOutboxAttempt(ctx context.Context, id int64, a OutboxAttempt) error {
	switch a.Outcome {
	case OutboxSent, OutboxFailed, OutboxGivenUp:
	default:
		return fmt.Errorf("record outbox attempt %d: unknown outcome %q", id, a.Outcome)
	}
	at := a.At.UnixMilli()
	if a.At.IsZero() {
		at = db.nowMS()
	}
	var sent any
	if a.Outcome == OutboxSent {
		sent = at
	}
	next := a.Next.UnixMilli()
	if a.Outcome != OutboxFailed || a.Next.IsZero() {
		next = at
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE tb_outbox SET attempts = attempts + 1, state = ?, last_error = ?,
			sent_at = ?, next_attempt_at = ? WHERE id = ?`), a.Outcome, a.Error, sent, next, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO tb_outbox_attempt (outbox_id, at, outcome, http_status, error, duration_ms)
			VALUES (?, ?, ?, ?, ?, ?)`), id, at, a.Outcome, a.HTTPStatus, a.Error, a.Duration.Milliseconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("record outbox attempt %d: %w", id, err)
	}
	return nil
}

// Outbox lists outbox messages, newest first. With States, each state is
// read newest first on its own (by its last attempt), so that a long
// history of one never has to be read whole to list another.
func (db *DB) Outbox(ctx context.Context, f OutboxFilter) ([]OutboxMessage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	kind, kindArgs := "", []any{}
	if f.Kind != "" {
		kind, kindArgs = " AND kind = ?", []any{f.Kind}
	}
	var out []OutboxMessage
	if len(f.States) == 0 {
		msgs, err := db.queryOutbox(ctx, db.sql, `SELECT `+outboxColumns+` FROM tb_outbox WHERE 1 = 1`+kind+
			` ORDER BY id DESC LIMIT ?`, append(kindArgs, limit)...)
		if err != nil {
			return nil, fmt.Errorf("list outbox: %w", err)
		}
		return msgs, nil
	}
	for _, st := range f.States {
		msgs, err := db.queryOutbox(ctx, db.sql, `SELECT `+outboxColumns+` FROM tb_outbox WHERE state = ?`+kind+
			` ORDER BY next_attempt_at DESC LIMIT ?`, append(append([]any{st}, kindArgs...), limit)...)
		if err != nil {
			return nil, fmt.Errorf("list outbox: %w", err)
		}
		out = append(out, msgs...)
	}
	slices.SortFunc(out, func(a, b OutboxMessage) int { return cmp.Compare(b.ID, a.ID) })
	return out[:min(len(out), limit)], nil
}

// OutboxAttempts lists the attempts at message id, oldest first.
func (db *DB) OutboxAttempts(ctx context.Context, id int64) ([]OutboxAttempt, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT at, outcome, http_status, error, duration_ms
		FROM tb_outbox_attempt WHERE outbox_id = ? ORDER BY id`), id)
	if err != nil {
		return nil, fmt.Errorf("list outbox attempts %d: %w", id, err)
	}
	defer rows.Close()
	var out []OutboxAttempt
	for rows.Next() {
		var (
			a      OutboxAttempt
			at, ms int64
		)
		if err := rows.Scan(&at, &a.Outcome, &a.HTTPStatus, &a.Error, &ms); err != nil {
			return nil, fmt.Errorf("list outbox attempts %d: %w", id, err)
		}
		a.At, a.Duration = fromMS(at), time.Duration(ms)*time.Millisecond
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list outbox attempts %d: %w", id, err)
	}
	return out, nil
}

// OutboxCounts returns how many messages of kind are still owed (pending,
// failed) and how many were given up within the last day: sent messages,
// the many, and older failures are not read.
func (db *DB) OutboxCounts(ctx context.Context, kind OutboxKind) (map[OutboxState]int64, error) {
	dayAgo := db.nowMS() - (24 * time.Hour).Milliseconds()
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT state, COUNT(*) FROM tb_outbox
		WHERE state IN ('pending', 'failed') AND kind = ? GROUP BY state
		UNION ALL
		SELECT state, COUNT(*) FROM tb_outbox
		WHERE state = 'given_up' AND next_attempt_at >= ? AND kind = ? GROUP BY state`), kind, dayAgo, kind)
	if err != nil {
		return nil, fmt.Errorf("count outbox: %w", err)
	}
	defer rows.Close()
	out := map[OutboxState]int64{}
	for rows.Next() {
		var (
			s OutboxState
			n int64
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("count outbox: %w", err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count outbox: %w", err)
	}
	return out, nil
}

// PruneOutbox removes messages sent or given up more than keep ago, with
// their attempts, in batches of pruneOutboxBatch, and returns how many
// went. Messages still to send stay however old.
func (db *DB) PruneOutbox(ctx context.Context, keep time.Duration) (int64, error) {
	cutoff := db.nowMS() - keep.Milliseconds()
	var total int64
	for {
		var n int64
		err := db.write(ctx, func(tx *sql.Tx) error {
			var ids []int64
			rows, err := tx.QueryContext(ctx, db.q(`SELECT id FROM tb_outbox WHERE state IN ('sent', 'given_up')
				AND next_attempt_at < ? ORDER BY next_attempt_at LIMIT ?`), cutoff, pruneOutboxBatch)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if n = int64(len(ids)); n == 0 {
				return nil
			}
			// Their attempts go by ON DELETE CASCADE.
			list, args := idList(ids)
			_, err = tx.ExecContext(ctx, db.q("DELETE FROM tb_outbox WHERE id IN ("+list+")"), args...)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune outbox: %w", err)
		}
		total += n
		if n < pruneOutboxBatch {
			return total, nil
		}
	}
}

// pruneOutboxBatch is how many messages one pruning transaction removes.
const pruneOutboxBatch = 200

func (db *DB) queryOutbox(ctx context.Context, q querier, query string, args ...any) ([]OutboxMessage, error) {
	rows, err := q.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		var (
			m               OutboxMessage
			dep, sent       sql.NullInt64
			created, nextAt int64
		)
		if err := rows.Scan(&m.ID, &m.Kind, &m.Target, &m.Event, &dep, &m.Payload, &created, &nextAt,
			&m.Attempts, &m.State, &m.LastError, &sent); err != nil {
			return nil, err
		}
		if dep.Valid {
			m.DeploymentID = &dep.Int64
		}
		m.CreatedAt, m.NextAttemptAt, m.SentAt = fromMS(created), fromMS(nextAt), fromNullMS(sent)
		out = append(out, m)
	}
	return out, rows.Err()
}
