package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// The deploy queue is tb_deployment itself: a request waits as a deployment
// in StatusQueued, and a unique index allows one per target. What a newer
// request does to the waiting one is queueRequest's rule (supersede.go).

// ErrNotQueued is returned by ClaimQueued when the deployment is no longer
// waiting: a newer request superseded it, or another worker claimed it.
var ErrNotQueued = errors.New("deployment is no longer queued")

// TriggerRequeue marks a deployment queued again because the one that was
// running when fraisier died was interrupted.
const TriggerRequeue Trigger = "requeue"

// TriggerFollow marks a deployment queued because the environment whose
// code it runs (shares_code_with) made another release current: it runs
// its scripts check and run_after_deploy on that release.
const TriggerFollow Trigger = "follow"

// QueueRequest asks for a deployment of Target at SHA to wait its turn.
type QueueRequest struct {
	Target
	SHA     string // the exact commit; required
	Ref     string // what was pushed (refs/heads/main), for the record
	Trigger Trigger
	Actor   string
	// WebhookID links the request to the delivery that caused it.
	WebhookID *int64
	// After lists the targets whose requests of the same delivery must
	// finish first (the environment's after: list and the environment
	// whose code it runs). A target the delivery queues nothing for is
	// not waited for. Only RecordIntake orders requests.
	After []Target
	// Hold keeps the request out of the queue until the forge reports the
	// checks of its commit (an environment with trigger: checks); Checks
	// names those that must pass, or none to let the first result decide.
	// Only RecordIntake holds requests (see holdRequest).
	Hold   bool
	Checks []string
	// Rollout, when set, queues a rollout of Target (the base
	// environment) across Rollout.Hosts instead of one deployment.
	Rollout *RolloutPolicy
}

// Queued is what queueing one request did.
type Queued struct {
	Target
	// DeploymentID is the deployment that carries the request: its own,
	// or, when Folded, the one that replaced it.
	DeploymentID int64 `json:"deployment_id"`
	// Superseded is the request that was waiting for this target and was
	// replaced, or 0.
	Superseded int64 `json:"superseded,omitempty"`
	// Replaced is the webhook event whose waiting request this one
	// replaced in place: that request's deployment, DeploymentID, now
	// deploys this commit. 0 if nothing waited, or if what waited was no
	// webhook's and was superseded instead.
	Replaced int64 `json:"replaced_webhook_event_id,omitempty"`
	// Folded: a newer request for the target in the same recording batch
	// replaced this one before it was queued. It never waited durably, so
	// it is no deployment of its own; DeploymentID is the newer one's. In
	// the answer to a redelivery, Folded means that a newer push has
	// taken the request over since, in its batch or later.
	Folded bool `json:"folded,omitempty"`
	// Held is the hold that keeps the request until its commit's checks
	// are reported (DeploymentID is then 0), or 0.
	Held int64 `json:"held_for_checks,omitempty"`
	// RolloutID is the rollout that carries a request with a Rollout
	// policy (DeploymentID is then 0).
	RolloutID int64 `json:"rollout_id,omitempty"`
}

// Intake is one received delivery and the requests routing made of it.
// Event.Outcome says what became of it; Requests is empty unless the
// outcome is accepted.
type Intake struct {
	Event    WebhookEvent
	Requests []QueueRequest
	// Check is the check result the delivery reports, for the pushes held
	// for its commit (see applyChecks); nil for any other delivery.
	Check *CheckReport
}

// IntakeResult is an Intake as stored. For a delivery seen before
// (Duplicate), Event is the earlier event and Queued lists the
// deployments it led to then; nothing new was queued.
//
// A request replaced by a newer one for the same target in the same
// batch is folded into it (Queued.Folded), not queued: when every
// request of a delivery was folded, its Event is recorded superseded,
// with a reason naming the newer delivery and commit, and linked to the
// deployments that replaced it. A request that was queued and is
// replaced later is finished as a superseded deployment instead.
type IntakeResult struct {
	Event     WebhookEvent
	Duplicate bool
	// Replay: the delivery pushed what an earlier delivery, acted upon,
	// had pushed, under a new delivery id. It is recorded ignored and
	// queues nothing; Event.Reason names the earlier delivery.
	Replay bool
	Queued []Queued
}

// RecordIntake stores deliveries and queues their requests, all in one
// transaction: a delivery is answered only once it and its requests are
// durable, and a busy server commits many deliveries per transaction
// rather than one each. If the batch fails as a whole, nothing of it is
// stored; callers retry the items one by one to isolate a bad one.
func (db *DB) RecordIntake(ctx context.Context, items []Intake) ([]IntakeResult, error) {
	for i := range items {
		if err := checkIntake(items[i]); err != nil {
			return nil, fmt.Errorf("record webhook %s %s: %w", items[i].Event.Forge, items[i].Event.DeliveryID, err)
		}
	}
	var results []IntakeResult
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		results, err = db.recordIntake(ctx, tx, items)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func checkIntake(it Intake) error {
	if it.Event.Forge == "" {
		return fmt.Errorf("forge is required")
	}
	if err := checkOutcome(it.Event.Outcome); err != nil {
		return err
	}
	if len(it.Requests) > 0 && it.Event.Outcome != OutcomeAccepted {
		return fmt.Errorf("requests queued for a delivery whose outcome is %q", it.Event.Outcome)
	}
	for _, r := range it.Requests {
		if err := checkQueueRequest(r); err != nil {
			return err
		}
	}
	return nil
}

func checkQueueRequest(r QueueRequest) error {
	if err := checkTarget(r.Target); err != nil {
		return err
	}
	if r.SHA == "" {
		return fmt.Errorf("queue %s: a commit is required", r.Target)
	}
	if _, err := normSHA(r.SHA); err != nil {
		return fmt.Errorf("queue %s: %w", r.Target, err)
	}
	if r.Rollout != nil {
		if _, err := normPolicy(*r.Rollout); err != nil {
			return fmt.Errorf("queue a rollout of %s: %w", r.Target, err)
		}
	}
	return nil
}

// Enqueue queues one request. A request already waiting for the target
// is taken over in place or superseded, as queueRequest says.
func (db *DB) Enqueue(ctx context.Context, r QueueRequest) (Queued, error) {
	if err := checkQueueRequest(r); err != nil {
		return Queued{}, err
	}
	var q Queued
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		q, err = db.enqueue(ctx, tx, r, false)
		return err
	})
	if err != nil {
		return Queued{}, fmt.Errorf("queue %s at %s: %w", r.Target, r.SHA, err)
	}
	return q, nil
}

// EnqueueIfIdle queues r only when nothing waits for its target: a waiting
// request is newer than anything r could carry. ok reports whether r was
// queued.
func (db *DB) EnqueueIfIdle(ctx context.Context, r QueueRequest) (q Queued, ok bool, err error) {
	if err := checkQueueRequest(r); err != nil {
		return Queued{}, false, err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		var err error
		q, err = db.enqueue(ctx, tx, r, true)
		return err
	})
	if err != nil {
		return Queued{}, false, fmt.Errorf("queue %s at %s: %w", r.Target, r.SHA, err)
	}
	return q, q.DeploymentID != 0, nil
}

// enqueue queues r inside tx by the rule of queueRequest; with ifIdle,
// only when nothing waits for its target (a zero Queued otherwise).
func (db *DB) enqueue(ctx context.Context, tx *sql.Tx, r QueueRequest, ifIdle bool) (Queued, error) {
	sha, err := normSHA(r.SHA)
	if err != nil {
		return Queued{}, err
	}
	var hook int64
	if r.WebhookID != nil {
		hook = *r.WebhookID
		if err := exists(ctx, tx, db.q("SELECT 1 FROM tb_webhook_event WHERE id = ?"), hook); err != nil {
			return Queued{}, fmt.Errorf("webhook event %d: %w", hook, err)
		}
	}
	var marks []supersededMark
	q, err := db.queueRequest(ctx, tx, newerRequest{QueueRequest: r, sha: sha, hook: hook}, db.nowMS(), ifIdle, &marks)
	if err != nil || q.DeploymentID == 0 && q.RolloutID == 0 {
		return q, err
	}
	if q.RolloutID != 0 {
		return q, db.markSuperseded(ctx, tx, marks)
	}
	if hook != 0 {
		if err := db.link(ctx, tx, hook, q.DeploymentID, r.Fraise); err != nil {
			return Queued{}, err
		}
	}
	return q, db.markSuperseded(ctx, tx, marks)
}

// QueuedRef is the ref a queued deployment's requested ref names
// ("refs/heads/main@0123456789ab", as requestedRef writes it), or "" when
// it names only a commit.
func QueuedRef(requested string) string {
	if i := strings.LastIndexByte(requested, '@'); i > 0 {
		return requested[:i]
	}
	return ""
}

// requestedRef is what the deployment records as asked for: the exact
// commit, with the pushed ref when there is one.
func requestedRef(r QueueRequest) string {
	if r.Ref == "" {
		return r.SHA
	}
	return r.Ref + "@" + short12(r.SHA)
}

func short12(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Claim is who takes a queued deployment and what it starts from.
type Claim struct {
	Host   string
	PID    int
	OldSHA string
}

// ClaimQueued moves a queued deployment to running for the claimant and
// restarts its clock, so that its duration measures the run and not the
// wait. ErrNotQueued means it was superseded or claimed by another worker
// meanwhile; ErrNotReady that it waits for a deployment the same push
// queued that has not deployed yet (it stays queued). The returned
// deployment is its state after the claim.
func (db *DB) ClaimQueued(ctx context.Context, id int64, c Claim) (Deployment, error) {
	oldSHA, err := normSHA(c.OldSHA)
	if err != nil {
		return Deployment{}, fmt.Errorf("claim deployment %d: %w", id, err)
	}
	var d Deployment
	err = db.write(ctx, func(tx *sql.Tx) error {
		// The target's state row first, as the intake and finish take
		// them: the other order deadlocks with them on PostgreSQL.
		var t Target
		err := db.queryRowTx(ctx, tx, "SELECT fraise, environment FROM tb_deployment WHERE id = ?", id).Scan(&t.Fraise, &t.Environment)
		if notFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if db.d.forUpdate != "" {
			var one int
			if err := db.queryRowTx(ctx, tx, "SELECT 1 FROM tb_fraise_state WHERE fraise = ? AND environment = ?"+db.d.forUpdate,
				t.Fraise, t.Environment).Scan(&one); err != nil && !notFound(err) {
				return fmt.Errorf("lock %s: %w", t, err)
			}
		}
		// The deployment's row next, passed by if another transaction
		// holds it (another node claiming it, a newer request replacing
		// it): that one decides, and this claim never waits on it.
		if db.d.skipLocked != "" {
			var status Status
			err := db.queryRowTx(ctx, tx, "SELECT status FROM tb_deployment WHERE id = ?"+db.d.skipLocked, id).Scan(&status)
			switch {
			case notFound(err):
				return ErrNotQueued
			case err != nil:
				return err
			case status != StatusQueued:
				return ErrNotQueued
			}
		}
		// A deployment the same push ordered after others runs only once
		// they have all deployed, whichever node ran them.
		if err := db.checkReady(ctx, tx, id); err != nil {
			return err
		}
		res, err := db.execTx(ctx, tx, `UPDATE tb_deployment
			SET status = ?, started_at = ?, host = ?, pid = ?, old_sha = ?
			WHERE id = ? AND status = ?`,
			StatusRunning, db.nowMS(), c.Host, c.PID, oldSHA, id, StatusQueued)
		if err != nil {
			return err
		}
		if err := oneRow(res); err != nil {
			if exists(ctx, tx, db.q("SELECT 1 FROM tb_deployment WHERE id = ?"), id) != nil {
				return ErrNotFound
			}
			return ErrNotQueued
		}
		if _, err := db.execTx(ctx, tx, "UPDATE tb_fraise_state SET status = ? WHERE last_deployment_id = ?",
			StatusRunning, id); err != nil {
			return err
		}
		row := tx.QueryRowContext(ctx, db.q("SELECT "+deploymentCols+" FROM v_deployment_history WHERE id = ?"), id)
		d, err = scanDeployment(row)
		return err
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("claim deployment %d: %w", id, err)
	}
	return d, nil
}

// QueuedDeployments returns the requests waiting, oldest first.
func (db *DB) QueuedDeployments(ctx context.Context) ([]Deployment, error) {
	ds, err := db.queryDeployments(ctx, "SELECT "+deploymentCols+
		" FROM v_deployment_history WHERE status = ? ORDER BY id", StatusQueued)
	if err != nil {
		return nil, fmt.Errorf("read the deploy queue: %w", err)
	}
	return ds, nil
}
