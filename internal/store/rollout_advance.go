package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AdvanceRollouts is the rollouts' coordinator, run by every node after
// each step it finishes, on a notification and at the deadline it
// returns. Each running rollout is advanced in a transaction of its own
// holding its row (FOR UPDATE SKIP LOCKED on PostgreSQL: a rollout
// another node is advancing is passed by, never waited for), by the rules
// of advance.run; it is idempotent. now is the time the rules judge by;
// liveSince is when this node's database connection last became healthy:
// a node is judged dead only once now-liveSince reaches the rollout's
// node timeout, so that a database outage does not make every node look
// dead, nor a step unclaimed.
func (db *DB) AdvanceRollouts(ctx context.Context, now, liveSince time.Time) (AdvanceResult, error) {
	var res AdvanceResult
	ids, err := db.activeRollouts(ctx)
	if err != nil {
		return res, fmt.Errorf("advance rollouts: %w", err)
	}
	nodes, err := db.heartbeats(ctx)
	if err != nil {
		return res, fmt.Errorf("advance rollouts: %w", err)
	}
	var errs []error
	for _, id := range ids {
		var (
			next    time.Time
			changes []RolloutChange
		)
		err := db.write(ctx, func(tx *sql.Tx) error {
			a, found, err := db.loadRollout(ctx, tx, id, db.d.skipLocked, true)
			if err != nil {
				return err
			}
			if !found {
				// Another node holds it (or it just ended). That pass may
				// have read its steps before one ended, and the node
				// holding it may die: look again shortly rather than
				// leave it to a wake that may never come.
				next = now.Add(busyRetry)
				return nil
			}
			a.now, a.liveSince, a.nodes = now, liveSince, nodes
			if err := a.run(ctx); err != nil {
				return err
			}
			next, changes = a.next(), a.changes
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("advance rollout %d: %w", id, err))
			continue
		}
		res.Changed = append(res.Changed, changes...)
		if !next.IsZero() && (res.Next.IsZero() || next.Before(res.Next)) {
			res.Next = next
		}
	}
	return res, errors.Join(errs...)
}

// busyRetry is how soon a pass looks again at a rollout another node's
// pass held.
const busyRetry = 250 * time.Millisecond

// activeRollouts lists the rollouts running or rolling back, oldest
// first.
func (db *DB) activeRollouts(ctx context.Context) ([]int64, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT id FROM tb_rollout
		WHERE status IN ('running', 'rolling_back') ORDER BY id`))
	if err != nil {
		return nil, fmt.Errorf("list running rollouts: %w", err)
	}
	var ids []int64
	err = eachRow(rows, func() error {
		var id int64
		ids = append(ids, id)
		return rows.Scan(&ids[len(ids)-1])
	})
	if err != nil {
		return nil, fmt.Errorf("list running rollouts: %w", err)
	}
	return ids, nil
}

// heartbeats is each node's last heartbeat.
func (db *DB) heartbeats(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT name, heartbeat_at FROM tb_node")
	if err != nil {
		return nil, fmt.Errorf("read heartbeats: %w", err)
	}
	m := make(map[string]time.Time)
	err = eachRow(rows, func() error {
		var (
			name string
			at   int64
		)
		err := rows.Scan(&name, &at)
		m[name] = fromMS(at)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read heartbeats: %w", err)
	}
	return m, nil
}

// stepRow is what a rollout reads of one of its deployments.
type stepRow struct {
	status         Status
	oldSHA, newSHA string
	err            string
	started        int64 // while queued: when it was queued
}

// advance is one rollout being advanced inside a transaction.
type advance struct {
	db            *DB
	tx            *sql.Tx
	r             Rollout
	canaryChecked bool
	// dirty: the rollout's row changed; hostDirty: that host's row did.
	dirty     bool
	hostDirty []bool
	now       time.Time
	liveSince time.Time
	nodes     map[string]time.Time
	steps     map[int64]stepRow
	changes   []RolloutChange
	marks     []supersededMark
	// queued: the pass queued or ended a deployment.
	queued bool
	// loadedStatus is the rollout's status as read; a pass that changes
	// it, or wakeAll, wakes every node's rollout loop (TopicRollout).
	loadedStatus RolloutStatus
	wakeAll      bool
}

// loadRollout reads rollout id and its hosts in tx, its row locked with
// lock (forUpdate, or skipLocked to pass a row another node holds by:
// found is then false). With activeOnly, a rollout that is not running
// or rolling back is not found either.
func (db *DB) loadRollout(ctx context.Context, tx *sql.Tx, id int64, lock string, activeOnly bool) (*advance, bool, error) {
	a := &advance{db: db, tx: tx}
	where := " WHERE id = ?"
	if activeOnly {
		where += " AND status IN ('running', 'rolling_back')"
	}
	r, checked, err := scanRollout(db.queryRowTx(ctx, tx, "SELECT "+rolloutCols+" FROM tb_rollout"+where+lock, id))
	if notFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read rollout %d: %w", id, err)
	}
	a.r, a.canaryChecked, a.loadedStatus = r, checked, r.Status
	hosts, err := db.rolloutHosts(ctx, tx, []int64{id})
	if err != nil {
		return nil, false, err
	}
	a.r.Hosts = hosts[id]
	a.hostDirty = make([]bool, len(a.r.Hosts))
	return a, true, nil
}

// loadSteps reads the rollout's deployments, steps and rollbacks.
func (a *advance) loadSteps(ctx context.Context) error {
	rows, err := a.db.queryTx(ctx, a.tx, `SELECT id, status, old_sha, new_sha, error, started_at
		FROM tb_deployment WHERE rollout_id = ?`, a.r.ID)
	if err != nil {
		return fmt.Errorf("read the steps of rollout %d: %w", a.r.ID, err)
	}
	a.steps = make(map[int64]stepRow)
	err = eachRow(rows, func() error {
		var (
			id int64
			s  stepRow
		)
		err := rows.Scan(&id, &s.status, &s.oldSHA, &s.newSHA, &s.err, &s.started)
		a.steps[id] = s
		return err
	})
	if err != nil {
		return fmt.Errorf("read the steps of rollout %d: %w", a.r.ID, err)
	}
	return nil
}

// run applies the rules once: the steps that ended (collect), the nodes
// that died and the steps nobody claimed (checkLiveness), then what the
// rollout does next (settle).
func (a *advance) run(ctx context.Context) error {
	if err := a.loadSteps(ctx); err != nil {
		return err
	}
	a.collect()
	if err := a.checkLiveness(ctx); err != nil {
		return err
	}
	return a.settleAndSave(ctx)
}

// settleAndSave moves the rollout on (forward, stop, rollBack), saves it,
// and starts the rollout queued behind it once it ended.
func (a *advance) settleAndSave(ctx context.Context) error {
	if err := a.settle(ctx); err != nil {
		return err
	}
	if err := a.save(ctx); err != nil {
		return err
	}
	if !a.r.Status.Terminal() {
		return nil
	}
	return a.startNext(ctx)
}

// change records a transition for the caller's logs.
func (a *advance) change(host, what string) {
	a.changes = append(a.changes, RolloutChange{RolloutID: a.r.ID, Target: a.r.Target, Host: host, Status: a.r.Status, What: what})
}

// setHost moves host i to status, with why as its error when not "".
func (a *advance) setHost(i int, status HostStatus, why string) {
	h := &a.r.Hosts[i]
	h.Status = status
	if why != "" {
		h.Error = why
	}
	if status != HostDeploying && status != HostRollingBack {
		t := a.now
		h.FinishedAt = &t
	}
	a.hostDirty[i] = true
	what := "host " + string(status)
	if why != "" {
		what += ": " + why
	}
	a.change(h.Host, what)
}

const (
	sqlSaveRollout = `UPDATE tb_rollout SET status = ?, batch = ?, next_at = ?, waiting_resume = ?, canary_checked = ?,
		started_at = ?, finished_at = ?, error = ? WHERE id = ?`
	sqlSaveRolloutHost = `UPDATE tb_rollout_host SET status = ?, deployment_id = ?, rollback_id = ?, old_sha = ?, error = ?,
		started_at = ?, finished_at = ? WHERE rollout_id = ? AND host = ?`
)

// save writes what changed, marks the events superseded, and wakes the
// other nodes when anything did.
func (a *advance) save(ctx context.Context) error {
	changed := a.dirty || a.queued
	for i, h := range a.r.Hosts {
		if !a.hostDirty[i] {
			continue
		}
		changed = true
		if err := a.db.execOne(ctx, a.tx, sqlSaveRolloutHost, h.Status, h.DeploymentID, h.RollbackID, h.OldSHA, h.Error,
			msOf(h.StartedAt), msOf(h.FinishedAt), a.r.ID, h.Host); err != nil {
			return fmt.Errorf("save host %s of rollout %d: %w", h.Host, a.r.ID, err)
		}
	}
	if !changed {
		return nil
	}
	r := a.r
	if err := a.db.execOne(ctx, a.tx, sqlSaveRollout, r.Status, r.Batch, msOf(r.NextAt), r.WaitingResume, a.canaryChecked,
		msOf(r.StartedAt), msOf(r.FinishedAt), r.Error, r.ID); err != nil {
		return fmt.Errorf("save rollout %d: %w", r.ID, err)
	}
	if err := a.db.markSuperseded(ctx, a.tx, a.marks); err != nil {
		return err
	}
	if r.Status == a.loadedStatus && !a.wakeAll {
		// The steps it queued woke their own nodes (queueRequest); the
		// node that runs a step advances the rollout when it ends.
		return nil
	}
	return a.db.notifyTx(ctx, a.tx, TopicRollout)
}

// msOf is t as stored: unix milliseconds, NULL for nil.
func msOf(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// startNext starts the rollout queued behind this one, which ended. The
// environment's rollouts are locked first, as queueRollout locks them:
// a rollout queued while this one ended is either seen here or saw this
// one ended and started at once.
func (a *advance) startNext(ctx context.Context) error {
	if err := a.db.lockRolloutsOf(ctx, a.tx, a.r.Target); err != nil {
		return err
	}
	w, found, err := a.db.queuedRollout(ctx, a.tx, a.r.Target)
	if err != nil || !found {
		return err
	}
	if err := a.db.startRollout(ctx, a.tx, w.id, a.now.UnixMilli()); err != nil {
		return fmt.Errorf("start rollout %d: %w", w.id, err)
	}
	a.change("", fmt.Sprintf("rollout %d, queued behind it, started", w.id))
	return nil
}

// next is when this rollout must be looked at again at the latest,
// whatever happens meanwhile: the end of a pause or canary window, a step
// left unclaimed, a node's heartbeat growing stale. Zero: only when woken.
func (a *advance) next() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(a.now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if a.r.Status.Terminal() {
		return next
	}
	p := a.r.Policy
	if a.r.NextAt != nil {
		consider(*a.r.NextAt)
		if a.canaryWaiting() {
			consider(a.r.NextAt.Add(p.ClaimTimeout))
			consider(a.liveUntil(a.r.Hosts[0].Host, p))
		}
	}
	for _, h := range a.r.Hosts {
		id := h.activeStep()
		if id == nil {
			continue
		}
		s, ok := a.steps[*id]
		if !ok || terminal(s.status) {
			continue
		}
		if s.status == StatusQueued {
			consider(laterOf(fromMS(s.started), a.liveSince).Add(p.ClaimTimeout))
		}
		consider(a.liveUntil(h.Host, p))
	}
	return next
}

// liveUntil is when node stops being judged alive unless it heartbeats.
func (a *advance) liveUntil(node string, p RolloutPolicy) time.Time {
	return laterOf(a.nodes[node], a.liveSince).Add(p.NodeTimeout)
}

// laterOf is the later of t and u.
func laterOf(t, u time.Time) time.Time {
	if t.After(u) {
		return t
	}
	return u
}

// activeStep is the deployment the host waits on: its step while
// deploying, its rollback while rolling back.
func (h RolloutHost) activeStep() *int64 {
	switch h.Status {
	case HostDeploying:
		return h.DeploymentID
	case HostRollingBack:
		return h.RollbackID
	}
	return nil
}

// Terminal reports whether a rollout in status s has ended.
func (s RolloutStatus) Terminal() bool {
	switch s {
	case RolloutQueued, RolloutRunning, RolloutRollingBack:
		return false
	}
	return true
}
