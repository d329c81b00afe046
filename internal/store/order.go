package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The queue's order: a request can wait for others the same push queued
// (RecordIntake records it, QueueRequest.After), and a deployment whose
// code other environments run can queue them to follow it
// (FinishFollowed).

// ErrNotReady is returned (wrapped, naming what it waits for) by
// ClaimQueued when the deployment waits for another that the same push
// queued and that has not deployed: it stays queued, and SettleQueue ends
// it skipped if that one finishes without deploying.
var ErrNotReady = errors.New("waits for another deployment to deploy first")

// The deployments that queued ones wait for (tb_deployment_after), as
// ordered by the push each queued one now carries: rows stamped with an
// earlier push's event, which a newer push took the request over from, do
// not count.
const (
	sqlOrderInsert = `INSERT INTO tb_deployment_after (deployment_id, webhook_event_id, after_id)
		VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	sqlWaitsHead = `SELECT q.id, d.id, d.fraise, d.environment, d.status, d.error
		FROM tb_deployment q
		JOIN tb_deployment_after a ON a.deployment_id = q.id AND a.webhook_event_id = q.webhook_event_id
		JOIN tb_deployment d ON d.id = a.after_id
		WHERE q.status = 'queued'`
	sqlWaitsAll = sqlWaitsHead + ` ORDER BY q.id, d.id`
	sqlWaitsOne = sqlWaitsHead + ` AND q.id = ? ORDER BY d.id`
)

// Wait is a deployment that a queued one waits for.
type Wait struct {
	Target
	ID     int64  `json:"id"`
	Status Status `json:"status"`
}

// QueueOrder is what SettleQueue found and did.
type QueueOrder struct {
	// Waiting maps each queued deployment that may not run yet to the
	// unfinished deployments it waits for.
	Waiting map[int64][]Wait
	// Skipped are the queued deployments it ended skipped: one they
	// waited for finished without deploying.
	Skipped []Deployment
}

// dependency is one row of sqlWaits*: waiter waits for Wait, which ended
// with err when it finished.
type dependency struct {
	waiter int64
	Wait
	err string
}

// deployed reports whether the deployment waited for has finished and
// left what it was asked to deploy running: it succeeded, or was skipped
// as already current (a refused push is skipped with its reason).
func (d dependency) deployed() bool {
	return d.Status == StatusSucceeded || d.Status == StatusSkipped && d.err == ""
}

// notRun is the reason a deployment that waited for d does not run.
func (d dependency) notRun() string {
	how := "ended " + d.Status
	if d.Status == StatusSkipped {
		how = "deployed nothing (skipped: refused, or itself not run)"
	}
	return fmt.Sprintf("not run: it runs after deployment %d of %s, queued by the same push, which %s (fraisier show %d says why)",
		d.ID, d.Target, how, d.ID)
}

func scanDependencies(rows *sql.Rows, err error) ([]dependency, error) {
	if err != nil {
		return nil, err
	}
	var deps []dependency
	err = eachRow(rows, func() error {
		var d dependency
		if err := rows.Scan(&d.waiter, &d.ID, &d.Fraise, &d.Environment, &d.Status, &d.err); err != nil {
			return err
		}
		deps = append(deps, d)
		return nil
	})
	return deps, err
}

// checkReady returns ErrNotReady, naming the deployment waited for, when
// queued deployment id may not start yet.
func (db *DB) checkReady(ctx context.Context, tx *sql.Tx, id int64) error {
	deps, err := scanDependencies(db.queryTx(ctx, tx, sqlWaitsOne, id))
	if err != nil {
		return fmt.Errorf("read what it waits for: %w", err)
	}
	for _, d := range deps {
		if !d.deployed() {
			return fmt.Errorf("%w: deployment %d of %s is %s", ErrNotReady, d.ID, d.Target, d.Status)
		}
	}
	return nil
}

// SettleQueue reads which queued deployments wait for others, and ends
// skipped, with the reason, each one that waits for a deployment that
// finished without deploying: it must not run on code that deployment
// did not leave running. Its push's webhook event records it too. Every
// node's queue calls it before dispatching, so a request whose
// dependency failed on another node, or was interrupted by a crash, is
// decided by whichever node looks next.
func (db *DB) SettleQueue(ctx context.Context) (QueueOrder, error) {
	st, err := db.dbStmt(ctx, sqlWaitsAll)
	if err != nil {
		return QueueOrder{}, fmt.Errorf("read the deploy queue's order: %w", err)
	}
	deps, err := scanDependencies(st.QueryContext(ctx))
	if err != nil {
		return QueueOrder{}, fmt.Errorf("read the deploy queue's order: %w", err)
	}
	o := QueueOrder{Waiting: map[int64][]Wait{}}
	var blocked []int64
	for _, d := range deps {
		switch {
		case !terminal(d.Status):
			o.Waiting[d.waiter] = append(o.Waiting[d.waiter], d.Wait)
		case !d.deployed() && !slices.Contains(blocked, d.waiter):
			blocked = append(blocked, d.waiter)
		}
	}
	for _, id := range blocked {
		delete(o.Waiting, id)
		d, skipped, err := db.skipBlocked(ctx, id)
		if err != nil {
			return o, fmt.Errorf("settle deployment %d: %w", id, err)
		}
		if skipped {
			o.Skipped = append(o.Skipped, d)
		}
	}
	return o, nil
}

// skipBlocked ends queued deployment id skipped if, read again in the
// transaction, it still waits for a deployment that did not deploy: a
// newer push may have taken it over since, or another node decided it.
func (db *DB) skipBlocked(ctx context.Context, id int64) (Deployment, bool, error) {
	var (
		d       Deployment
		skipped bool
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		var (
			t    Target
			hook sql.NullInt64
		)
		err := db.queryRowTx(ctx, tx, "SELECT fraise, environment, webhook_event_id FROM tb_deployment WHERE id = ?", id).
			Scan(&t.Fraise, &t.Environment, &hook)
		if err != nil {
			return err
		}
		// The target's state row first, as everywhere (see ClaimQueued).
		if err := db.lockTargets(ctx, tx, []Target{t}); err != nil {
			return err
		}
		deps, err := scanDependencies(db.queryTx(ctx, tx, sqlWaitsOne, id))
		if err != nil {
			return err
		}
		i := slices.IndexFunc(deps, func(d dependency) bool { return terminal(d.Status) && !d.deployed() })
		if i < 0 {
			return nil
		}
		why := deps[i].notRun()
		if err := db.finishTx(ctx, tx, id, Finish{Status: StatusSkipped, Error: why}, ""); err != nil {
			return err
		}
		if hook.Valid {
			part, err := db.stmt(ctx, tx, sqlWebhookPartSuperseded)
			if err != nil {
				return err
			}
			why = "for " + t.String() + ": " + why
			if _, err := part.ExecContext(ctx, why, why, hook.Int64); err != nil {
				return fmt.Errorf("record on webhook event %d that a request of it did not run: %w", hook.Int64, err)
			}
		}
		skipped = true
		d, err = scanDeployment(tx.QueryRowContext(ctx, db.q("SELECT "+deploymentCols+" FROM v_deployment_history WHERE id = ?"), id))
		return err
	})
	return d, skipped, err
}

// lockTargets locks the state rows of ts, created if need be, in the
// order of their names, as the intake does: on PostgreSQL a transaction
// that queues or finishes for several targets must not take them in
// another order than one doing the same for an overlapping set. SQLite
// needs none: its write transactions hold the database's one write lock.
func (db *DB) lockTargets(ctx context.Context, tx *sql.Tx, ts []Target) error {
	if db.d.forUpdate == "" {
		return nil
	}
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b Target) int { return strings.Compare(a.String(), b.String()) })
	for _, t := range slices.Compact(ts) {
		if err := db.lockTarget(ctx, tx, t); err != nil {
			return err
		}
	}
	return nil
}

// FinishFollowed is FinishDeployment for a deployment whose code other
// environments run (shares_code_with): when it succeeded, the same
// transaction queues follow, one request per such environment, unless a
// request already waits for it (which runs on what this deployment made
// current anyway). Recorded together, no crash can leave a release
// current that what runs its code never followed. It returns what it
// queued.
func (db *DB) FinishFollowed(ctx context.Context, id int64, f Finish, follow []QueueRequest) ([]Queued, error) {
	var queued []Queued
	err := db.finishFollowed(ctx, id, f, follow, &queued)
	if err != nil {
		return nil, fmt.Errorf("finish deployment %d as %s: %w", id, f.Status, err)
	}
	db.stepsChanged.fire()
	return queued, nil
}

func (db *DB) finishFollowed(ctx context.Context, id int64, f Finish, follow []QueueRequest, queued *[]Queued) error {
	if !terminal(f.Status) {
		return fmt.Errorf("%q is not a terminal status", f.Status)
	}
	newSHA, err := normSHA(f.NewSHA)
	if err != nil {
		return err
	}
	for _, r := range follow {
		if err := checkQueueRequest(r); err != nil {
			return err
		}
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		var t Target
		err := db.queryRowTx(ctx, tx, `SELECT fraise, environment FROM tb_deployment WHERE id = ?`, id).Scan(&t.Fraise, &t.Environment)
		if notFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read deployment: %w", err)
		}
		ts := []Target{t}
		for _, r := range follow {
			ts = append(ts, r.Target)
		}
		if err := db.lockTargets(ctx, tx, ts); err != nil {
			return err
		}
		if err := db.finishTx(ctx, tx, id, f, newSHA); err != nil {
			return err
		}
		if f.Status != StatusSucceeded {
			return nil
		}
		for _, r := range follow {
			q, err := db.enqueue(ctx, tx, r, true)
			if err != nil {
				return fmt.Errorf("queue %s to follow: %w", r.Target, err)
			}
			if q.DeploymentID != 0 {
				*queued = append(*queued, q)
			}
		}
		return nil
	})
}
