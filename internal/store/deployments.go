package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Finish is how a deployment ended.
type Finish struct {
	Status  Status // one of the terminal statuses
	NewSHA  string // "" keeps what StartDeployment recorded
	Release string // "" keeps what StartDeployment recorded
	Error   string
}

// terminal reports whether a deployment status is final.
func terminal(status Status) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusRolledBack, StatusRollbackFailed,
		StatusInterrupted, StatusSkipped, StatusSuperseded:
		return true
	}
	return false
}

// TerminalStatuses lists the statuses a deployment can end in.
func TerminalStatuses() []Status {
	return []Status{StatusSucceeded, StatusFailed, StatusRolledBack, StatusRollbackFailed,
		StatusInterrupted, StatusSkipped, StatusSuperseded}
}

func checkTarget(t Target) error {
	if t.Fraise == "" || t.Environment == "" {
		return fmt.Errorf("target %q: fraise and environment are required", t.String())
	}
	return nil
}

// normSHA lower-cases a commit id and checks it is a full SHA-1 or SHA-256
// object name, so that abbreviations never get stored as if they were one.
func normSHA(sha string) (string, error) {
	if sha == "" {
		return "", nil
	}
	s := strings.ToLower(sha)
	if len(s) != 40 && len(s) != 64 {
		return "", fmt.Errorf("commit %q is not a full 40 or 64 hex digit id", sha)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("commit %q is not hexadecimal", sha)
		}
	}
	return s, nil
}

// StartDeployment records a new deployment of d.Target, running (or queued
// when d.Status is StatusQueued) from now, and returns its id. d.ID,
// d.StartedAt and the finish fields are ignored. When d.WebhookID is set the
// webhook event is linked to the deployment too.
func (db *DB) StartDeployment(ctx context.Context, d Deployment) (int64, error) {
	id, err := db.startDeployment(ctx, d)
	if err != nil {
		return 0, fmt.Errorf("start deployment %s: %w", d.Target, err)
	}
	return id, nil
}

func (db *DB) startDeployment(ctx context.Context, d Deployment) (int64, error) {
	if err := checkTarget(d.Target); err != nil {
		return 0, err
	}
	status := StatusRunning
	switch d.Status {
	case "", StatusRunning:
	case StatusQueued:
		status = StatusQueued
	default:
		return 0, fmt.Errorf("a deployment starts queued or running, not %q", d.Status)
	}
	oldSHA, err := normSHA(d.OldSHA)
	if err != nil {
		return 0, err
	}
	newSHA, err := normSHA(d.NewSHA)
	if err != nil {
		return 0, err
	}
	var id int64
	err = db.write(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertDeployment(ctx, tx, d, status, oldSHA, newSHA)
		return err
	})
	return id, err
}

// insertDeployment is startDeployment inside the caller's transaction, for
// the queue, which supersedes and inserts in one.
func (db *DB) insertDeployment(ctx context.Context, tx *sql.Tx, d Deployment, status Status, oldSHA, newSHA string) (int64, error) {
	var id int64
	if d.WebhookID != nil {
		if err := exists(ctx, tx, db.q("SELECT 1 FROM tb_webhook_event WHERE id = ?"), *d.WebhookID); err != nil {
			return 0, fmt.Errorf("webhook event %d: %w", *d.WebhookID, err)
		}
	}
	err := db.queryRowTx(ctx, tx, `INSERT INTO tb_deployment
		(fraise, environment, trigger, actor, requested_ref, old_sha, new_sha, release,
		 status, started_at, webhook_event_id, host, pid, rollout_id, node)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		d.Fraise, d.Environment, d.Trigger, d.Actor, d.RequestedRef, oldSHA, newSHA, d.Release,
		status, db.nowMS(), d.WebhookID, d.Host, d.PID, d.RolloutID, d.Node).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert: %w", err)
	}
	if d.WebhookID != nil {
		if err := db.link(ctx, tx, *d.WebhookID, id, d.Fraise); err != nil {
			return 0, err
		}
	}
	if _, err := db.execTx(ctx, tx, `INSERT INTO tb_fraise_state (fraise, environment, status, last_deployment_id)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (fraise, environment) DO UPDATE
		SET status = excluded.status, last_deployment_id = excluded.last_deployment_id`,
		d.Fraise, d.Environment, status, id); err != nil {
		return 0, fmt.Errorf("update state of %s: %w", d.Target, err)
	}
	if status == StatusQueued {
		return id, db.notifyTx(ctx, tx, TopicNode(d.Node))
	}
	return id, nil
}

// exists returns ErrNotFound unless the query yields a row.
func exists(ctx context.Context, q querier, query string, args ...any) error {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	if notFound(err) {
		return ErrNotFound
	}
	return err
}

// FinishDeployment ends a queued or running deployment. In one transaction
// it records the outcome, advances the target's state (the current commit
// and release change only on StatusSucceeded; broken_since is set by
// StatusRollbackFailed and cleared by StatusSucceeded or StatusRolledBack),
// closes steps still running as failed, and updates the stats rollups.
// Finishing an unknown deployment returns ErrNotFound, finishing one twice
// ErrFinished; either way nothing changes.
func (db *DB) FinishDeployment(ctx context.Context, id int64, f Finish) error {
	if err := db.finish(ctx, id, f); err != nil {
		return fmt.Errorf("finish deployment %d as %s: %w", id, f.Status, err)
	}
	db.stepsChanged.fire()
	return nil
}

// MarkInterrupted finishes a deployment whose process died as
// StatusInterrupted, with reason as its error. It is FinishDeployment for
// crash recovery, with the same bookkeeping.
func (db *DB) MarkInterrupted(ctx context.Context, id int64, reason string) error {
	if err := db.finish(ctx, id, Finish{Status: StatusInterrupted, Error: reason}); err != nil {
		return fmt.Errorf("mark deployment %d interrupted: %w", id, err)
	}
	db.stepsChanged.fire()
	return nil
}

// SetDeploymentTarget records the commit a queued or running deployment
// goes to, as soon as it is resolved: a deployment that is still running,
// or that dies before it finishes, then shows where it was going rather
// than "-". FinishDeployment keeps it unless its Finish names another.
// An unknown deployment is ErrNotFound, a finished one ErrFinished; either
// way nothing changes.
func (db *DB) SetDeploymentTarget(ctx context.Context, id int64, sha string) error {
	err := db.setDeploymentTarget(ctx, id, sha)
	if err != nil {
		return fmt.Errorf("record the target commit of deployment %d: %w", id, err)
	}
	return nil
}

func (db *DB) setDeploymentTarget(ctx context.Context, id int64, sha string) error {
	s, err := normSHA(sha)
	if err != nil {
		return err
	}
	if s == "" {
		return fmt.Errorf("no commit given")
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		var status Status
		err := db.queryRowTx(ctx, tx, "SELECT status FROM tb_deployment WHERE id = ?"+db.d.forUpdate, id).Scan(&status)
		if notFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if terminal(status) {
			return fmt.Errorf("deployment is %s: %w", status, ErrFinished)
		}
		_, err = db.execTx(ctx, tx, "UPDATE tb_deployment SET new_sha = ? WHERE id = ?", s, id)
		return err
	})
}

func (db *DB) finish(ctx context.Context, id int64, f Finish) error {
	if !terminal(f.Status) {
		return fmt.Errorf("%q is not a terminal status", f.Status)
	}
	newSHA, err := normSHA(f.NewSHA)
	if err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error { return db.finishTx(ctx, tx, id, f, newSHA) })
}

// finishTx is finish inside the caller's transaction; newSHA is f.NewSHA
// already normalised.
func (db *DB) finishTx(ctx context.Context, tx *sql.Tx, id int64, f Finish, newSHA string) error {
	var (
		d      finishedRow
		t      Target
		status Status
	)
	// Locks in one order everywhere: the target's state row, then the
	// deployment's. The webhook intake queues in that order; taking the
	// deployment first here would deadlock with it on PostgreSQL.
	err := db.queryRowTx(ctx, tx, `SELECT fraise, environment FROM tb_deployment WHERE id = ?`, id).Scan(&t.Fraise, &t.Environment)
	if notFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read deployment: %w", err)
	}
	st, err := db.loadTargetState(ctx, tx, t)
	if err != nil {
		return err
	}
	var rollout sql.NullInt64
	err = db.queryRowTx(ctx, tx, `SELECT status, actor, new_sha, release, started_at, rollout_id
		FROM tb_deployment WHERE id = ?`+db.d.forUpdate, id).
		Scan(&status, &d.actor, &d.newSHA, &d.release, &d.started, &rollout)
	if err != nil {
		return fmt.Errorf("read deployment: %w", err)
	}
	if terminal(status) {
		return fmt.Errorf("deployment is %s: %w", status, ErrFinished)
	}
	d.id, d.status, d.finished = id, f.Status, db.nowMS()
	d.duration = max(0, d.finished-d.started)
	if newSHA != "" {
		d.newSHA = newSHA
	}
	if f.Release != "" {
		d.release = f.Release
	}

	acc := st.apply(d)

	if _, err := db.execTx(ctx, tx, `UPDATE tb_deployment
		SET status = ?, finished_at = ?, duration_ms = ?, error = ?, new_sha = ?, release = ?,
		    incident = ?, restore_ms = ?
		WHERE id = ?`,
		d.status, d.finished, d.duration, f.Error, d.newSHA, d.release, acc.incident, acc.restoreMS, id); err != nil {
		return fmt.Errorf("update deployment: %w", err)
	}
	if _, err := db.execTx(ctx, tx, `UPDATE tb_deployment_step
		SET status = ?, finished_at = ?, detail = CASE WHEN detail = '' THEN ? ELSE detail END
		WHERE deployment_id = ? AND status = ?`,
		StepFailed, d.finished, "still running when the deployment ended "+d.status, id, StepRunning); err != nil {
		return fmt.Errorf("close running steps: %w", err)
	}
	if err := db.saveTargetState(ctx, tx, t, st); err != nil {
		return err
	}
	if !rollout.Valid {
		// Requests on any node may wait for this deployment (after:).
		// A rollout's step wakes nobody: the node that ran it advances
		// the rollout, and the others look at their deadlines.
		if err := db.notifyTx(ctx, tx, TopicNode("")); err != nil {
			return err
		}
	}
	return db.addToRollups(ctx, tx, t, d, acc)
}
