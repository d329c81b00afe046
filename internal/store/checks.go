package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Deploy when CI says so. A push to an environment with trigger: checks is
// held (tb_check_hold) instead of queued; the check results a forge
// reports are recorded (tb_check_result), and each decides the pushes held
// for its commit: passed, a push is queued by queueRequest as if it had
// just arrived; failed, it ends with the reason. A newer push held for the
// environment supersedes the older one, as a newer push takes a queued
// request over. Results recorded before the push decide it as it is held.

// CheckReport is a check result a forge reported, as the intake hands it
// to RecordIntake: only one that passed or failed.
type CheckReport struct {
	SHA        string
	Name       string // the workflow, pipeline, status context or build key
	Conclusion string // the forge's word for the result
	Passed     bool
	// Targets are the environments whose held pushes the report may
	// decide: those that wait for checks of the repository it came from,
	// that its sender's secret covers.
	Targets []Target
}

// Hold statuses.
const (
	holdWaiting    = "waiting"
	holdReleased   = "released"
	holdFailed     = "failed"
	holdSuperseded = "superseded"
)

// hold is a held push.
type hold struct {
	id                int64
	target            Target
	forge, repository string
	sha, ref, actor   string
	checks            []string
	hook              int64
	reason            string
	// rollout is the policy (JSON) of a push to an environment with
	// hosts, released as a rollout; "" for a deployment.
	rollout string
}

const (
	holdCols        = `id, fraise, environment, forge, repository, sha, ref, actor, checks, webhook_event_id, reason, rollout`
	sqlHoldWaiting  = `SELECT ` + holdCols + ` FROM tb_check_hold WHERE fraise = ? AND environment = ? AND status = 'waiting'`
	sqlHoldsForSHA  = `SELECT ` + holdCols + ` FROM tb_check_hold WHERE sha = ? AND status = 'waiting' AND forge = ? AND repository = ?`
	sqlHoldInsert   = `INSERT INTO tb_check_hold (fraise, environment, forge, repository, sha, ref, actor, checks, webhook_event_id, status, reason, created_at, rollout) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?) RETURNING id`
	sqlHoldFinish   = `UPDATE tb_check_hold SET status = ?, reason = ?, deployment_id = ?, finished_at = ? WHERE id = ? AND status = 'waiting'`
	sqlResultInsert = `INSERT INTO tb_check_result (fraise, environment, forge, repository, sha, name, passed, conclusion, webhook_event_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlResultsOf    = `SELECT name, passed, conclusion FROM tb_check_result WHERE sha = ? AND forge = ? AND repository = ? AND fraise = ? AND environment = ? ORDER BY id`
	// The reason of a held push's event says it waits; what decides the
	// hold replaces those words.
	sqlEventReasonAppend  = `UPDATE tb_webhook_event SET reason = CASE WHEN reason = '' THEN ? ELSE reason || '; ' || ? END WHERE id = ?`
	sqlEventReasonReplace = `UPDATE tb_webhook_event SET reason = REPLACE(reason, ?, ?) WHERE id = ?`
)

func scanHold(row interface{ Scan(...any) error }) (hold, error) {
	var (
		h      hold
		checks string
	)
	err := row.Scan(&h.id, &h.target.Fraise, &h.target.Environment, &h.forge, &h.repository, &h.sha, &h.ref, &h.actor, &checks, &h.hook, &h.reason, &h.rollout)
	if checks != "" {
		h.checks = strings.Split(checks, "\n")
	}
	return h, err
}

// waitingReason is what a held push's event says while it waits.
func waitingReason(t Target, sha string, checks []string) string {
	what := "its checks"
	if len(checks) > 0 {
		what = strings.Join(checks, ", ")
	}
	return fmt.Sprintf("%s: waiting for checks: commit %s deploys once the forge reports that %s passed", t, short12(sha), what)
}

// holdRequest holds r, made by the delivery ev, for its target: the push
// held there before is superseded (its event marked through marks), and
// the results already recorded for the commit may decide it at once.
func (db *DB) holdRequest(ctx context.Context, tx *sql.Tx, r newerRequest, ev WebhookEvent, now int64, marks *[]supersededMark) (Queued, error) {
	t := r.Target
	if err := db.lockTarget(ctx, tx, t); err != nil {
		return Queued{}, err
	}
	old, err := scanHold(db.queryRowTx(ctx, tx, sqlHoldWaiting+db.d.forUpdate, t.Fraise, t.Environment))
	switch {
	case err == nil:
		why := fmt.Sprintf("replaced while it waited for checks by webhook event %d (commit %s)", r.hook, short12(r.sha))
		if err := db.finishHold(ctx, tx, old, holdSuperseded, why, 0, now); err != nil {
			return Queued{}, err
		}
		*marks = append(*marks, supersededMark{old.hook, why})
	case !notFound(err):
		return Queued{}, fmt.Errorf("find the push held for %s: %w", t, err)
	}
	h := hold{target: t, forge: ev.Forge, repository: ev.Repository, sha: r.sha, ref: r.Ref, actor: r.Actor,
		checks: r.Checks, hook: r.hook, reason: waitingReason(t, r.sha, r.Checks)}
	if r.Rollout != nil {
		policy, err := json.Marshal(r.Rollout)
		if err != nil {
			return Queued{}, fmt.Errorf("encode the rollout policy: %w", err)
		}
		h.rollout = string(policy)
	}
	if err := db.queryRowTx(ctx, tx, sqlHoldInsert, t.Fraise, t.Environment, h.forge, h.repository, h.sha, h.ref, h.actor,
		strings.Join(h.checks, "\n"), h.hook, h.reason, now, h.rollout).Scan(&h.id); err != nil {
		return Queued{}, fmt.Errorf("hold %s for its checks: %w", t, err)
	}
	if _, err := db.execTx(ctx, tx, sqlEventReasonAppend, h.reason, h.reason, h.hook); err != nil {
		return Queued{}, fmt.Errorf("record on webhook event %d that it waits for checks: %w", h.hook, err)
	}
	q, _, err := db.decideHold(ctx, tx, h, 0, now, marks)
	if err != nil || q.DeploymentID != 0 || q.RolloutID != 0 {
		return q, err
	}
	return Queued{Target: t, Held: h.id}, nil
}

// checkResult is one recorded result of a commit's checks.
type checkResult struct {
	name, conclusion string
	passed           bool
}

// checksVerdict decides a hold from the results of its commit, oldest
// first. Without required names the first result decides; with them, the
// latest result of each name counts: one failed fails the hold, all passed
// pass it, otherwise it waits. Names compare ignoring case.
func checksVerdict(required []string, results []checkResult) (decided, passed bool, by checkResult) {
	if len(required) == 0 {
		if len(results) == 0 {
			return false, false, checkResult{}
		}
		return true, results[0].passed, results[0]
	}
	latest := map[string]checkResult{}
	for _, r := range results {
		latest[strings.ToLower(r.name)] = r
	}
	all := true
	for _, n := range required {
		r, ok := latest[strings.ToLower(n)]
		if ok && !r.passed {
			return true, false, r
		}
		all = all && ok
	}
	if !all {
		return false, false, checkResult{}
	}
	return true, true, checkResult{name: strings.Join(required, ", "), conclusion: "passed", passed: true}
}

// decideHold releases or fails h by the results recorded for its commit,
// or leaves it waiting. checkEvent is the delivery that reported the
// latest result (0 when the push itself is being held): the deployment a
// release queues is linked to it as well as to the push.
func (db *DB) decideHold(ctx context.Context, tx *sql.Tx, h hold, checkEvent, now int64, marks *[]supersededMark) (q Queued, why string, err error) {
	rows, err := db.queryTx(ctx, tx, sqlResultsOf, h.sha, h.forge, h.repository, h.target.Fraise, h.target.Environment)
	if err != nil {
		return Queued{}, "", fmt.Errorf("read the check results of %s: %w", short12(h.sha), err)
	}
	var results []checkResult
	err = eachRow(rows, func() error {
		var r checkResult
		var passed int
		err := rows.Scan(&r.name, &passed, &r.conclusion)
		r.passed = passed == 1
		results = append(results, r)
		return err
	})
	if err != nil {
		return Queued{}, "", fmt.Errorf("read the check results of %s: %w", short12(h.sha), err)
	}
	decided, passed, by := checksVerdict(h.checks, results)
	switch {
	case !decided:
		return Queued{}, "", nil
	case !passed:
		why = fmt.Sprintf("%s: checks failed: %s %s; commit %s not deployed", h.target, by.name, by.conclusion, short12(h.sha))
		return Queued{}, why, db.finishHold(ctx, tx, h, holdFailed, why, 0, now)
	}
	return db.releaseHold(ctx, tx, h, by, checkEvent, now, marks)
}

// releaseHold queues h's push as if it had just arrived.
func (db *DB) releaseHold(ctx context.Context, tx *sql.Tx, h hold, by checkResult, checkEvent, now int64, marks *[]supersededMark) (Queued, string, error) {
	hook := h.hook
	// Retention may have removed the push's event meanwhile: the request
	// is then no webhook's.
	if exists(ctx, tx, db.q("SELECT 1 FROM tb_webhook_event WHERE id = ?"), hook) != nil {
		hook = 0
	}
	r := newerRequest{QueueRequest: QueueRequest{Target: h.target, SHA: h.sha, Ref: h.ref, Trigger: TriggerWebhook, Actor: h.actor}, sha: h.sha, hook: hook}
	if h.rollout != "" {
		r.Rollout = new(RolloutPolicy)
		if err := json.Unmarshal([]byte(h.rollout), r.Rollout); err != nil {
			return Queued{}, "", fmt.Errorf("the push held for %s: its rollout policy: %w", h.target, err)
		}
	}
	q, err := db.queueRequest(ctx, tx, r, now, false, marks)
	if err != nil {
		return Queued{}, "", fmt.Errorf("queue the push held for %s: %w", h.target, err)
	}
	if q.RolloutID != 0 {
		why := fmt.Sprintf("%s: checks passed (%s): commit %s queued as rollout %d", h.target, by.name, short12(h.sha), q.RolloutID)
		return q, why, db.finishHold(ctx, tx, h, holdReleased, why, 0, now)
	}
	for _, e := range []int64{hook, checkEvent} {
		if e != 0 {
			if err := db.link(ctx, tx, e, q.DeploymentID, h.target.Fraise); err != nil {
				return Queued{}, "", err
			}
		}
	}
	why := fmt.Sprintf("%s: checks passed (%s): commit %s queued as deployment %d", h.target, by.name, short12(h.sha), q.DeploymentID)
	return q, why, db.finishHold(ctx, tx, h, holdReleased, why, q.DeploymentID, now)
}

// finishHold ends h and puts why in place of its waiting words in its
// push's event.
func (db *DB) finishHold(ctx context.Context, tx *sql.Tx, h hold, status, why string, deployment, now int64) error {
	var dep sql.NullInt64
	if deployment != 0 {
		dep = sql.NullInt64{Int64: deployment, Valid: true}
	}
	if _, err := db.execTx(ctx, tx, sqlHoldFinish, status, why, dep, now, h.id); err != nil {
		return fmt.Errorf("end the push held for %s: %w", h.target, err)
	}
	if _, err := db.execTx(ctx, tx, sqlEventReasonReplace, h.reason, why, h.hook); err != nil {
		return fmt.Errorf("record on webhook event %d what became of its push held for %s: %w", h.hook, h.target, err)
	}
	return nil
}

// checkTargets are the targets the batch's check results may decide
// pushes in, for queueStanding to lock with the others.
func checkTargets(b *intakeBatch) []Target {
	var out []Target
	for i, it := range b.items {
		if it.Check != nil && !b.dup[i] {
			out = append(out, it.Check.Targets...)
		}
	}
	return out
}

// applyChecks records the check results of the batch and decides the
// pushes held for their commits, in the environments each may decide. A
// result that decided a hold makes its delivery accepted, its reason
// saying what it decided; the others stay as routing recorded them.
func (db *DB) applyChecks(ctx context.Context, tx *sql.Tx, b *intakeBatch, now int64) error {
	var marks []supersededMark
	for i, it := range b.items {
		c := it.Check
		if b.dup[i] || c == nil || b.results[i].Event.ID == 0 {
			continue
		}
		res := &b.results[i]
		if err := db.applyCheck(ctx, tx, res, c, now, &marks); err != nil {
			return fmt.Errorf("apply check %q of %s: %w", c.Name, short12(c.SHA), err)
		}
	}
	return db.markSuperseded(ctx, tx, marks)
}

func (db *DB) applyCheck(ctx context.Context, tx *sql.Tx, res *IntakeResult, c *CheckReport, now int64, marks *[]supersededMark) error {
	e := &res.Event
	sha, err := normSHA(c.SHA)
	if err != nil {
		return err
	}
	passed := 0
	if c.Passed {
		passed = 1
	}
	for _, t := range c.Targets {
		if _, err := db.execTx(ctx, tx, sqlResultInsert, t.Fraise, t.Environment, e.Forge, e.Repository, sha, c.Name, passed, c.Conclusion, e.ID, now); err != nil {
			return fmt.Errorf("record for %s: %w", t, err)
		}
	}
	holds, err := db.heldFor(ctx, tx, e.Forge, e.Repository, sha, c.Targets)
	if err != nil {
		return err
	}
	var whys []string
	for _, h := range holds {
		if err := db.lockTarget(ctx, tx, h.target); err != nil {
			return err
		}
		// Locked now: still waiting?
		cur, err := scanHold(db.queryRowTx(ctx, tx, sqlHoldWaiting+db.d.forUpdate, h.target.Fraise, h.target.Environment))
		if notFound(err) || err == nil && cur.id != h.id {
			continue
		}
		if err != nil {
			return err
		}
		q, why, err := db.decideHold(ctx, tx, cur, e.ID, now, marks)
		if err != nil {
			return err
		}
		if why != "" {
			whys = append(whys, why)
		}
		if q.DeploymentID != 0 {
			res.Queued = append(res.Queued, q)
			e.DeploymentIDs = append(e.DeploymentIDs, q.DeploymentID)
		}
	}
	if len(whys) == 0 {
		return nil
	}
	e.Outcome, e.Reason = OutcomeAccepted, strings.Join(whys, "; ")
	upd, err := db.stmt(ctx, tx, sqlEventReplanned)
	if err != nil {
		return err
	}
	_, err = upd.ExecContext(ctx, e.Outcome, e.Reason, e.ID)
	return err
}

// heldFor reads the pushes held for sha, from forge and repository, in the
// targets given, in the order targets are locked.
func (db *DB) heldFor(ctx context.Context, tx *sql.Tx, forge, repository, sha string, targets []Target) ([]hold, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	rows, err := db.queryTx(ctx, tx, sqlHoldsForSHA, sha, forge, repository)
	if err != nil {
		return nil, fmt.Errorf("find the pushes held for %s: %w", short12(sha), err)
	}
	var out []hold
	err = eachRow(rows, func() error {
		h, err := scanHold(rows)
		for _, t := range targets {
			if err == nil && t == h.target {
				out = append(out, h)
				break
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find the pushes held for %s: %w", short12(sha), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].target.String() < out[j].target.String() })
	return out, nil
}

// pruneCheckRecords removes, with the events before cut, the check results
// received and the holds ended before it.
func (db *DB) pruneCheckRecords(ctx context.Context, tx *sql.Tx, cut int64) error {
	if _, err := db.execTx(ctx, tx, "DELETE FROM tb_check_result WHERE received_at < ?", cut); err != nil {
		return fmt.Errorf("remove old check results: %w", err)
	}
	if _, err := db.execTx(ctx, tx, "DELETE FROM tb_check_hold WHERE status <> 'waiting' AND finished_at < ?", cut); err != nil {
		return fmt.Errorf("remove old held pushes: %w", err)
	}
	return nil
}

// HeldPush is a push held for its checks, as HeldPushes lists them.
type HeldPush struct {
	ID int64 `json:"id"`
	Target
	SHA            string `json:"sha"`
	Ref            string `json:"ref"`
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	WebhookEventID int64  `json:"webhook_event_id"`
	DeploymentID   int64  `json:"deployment_id,omitempty"`
}

// HeldPushes returns the pushes held for their checks, newest first, at
// most limit (20 when not positive); waitingOnly keeps those still waiting.
func (db *DB) HeldPushes(ctx context.Context, waitingOnly bool, limit int) ([]HeldPush, error) {
	if limit <= 0 {
		limit = 20
	}
	where := ""
	if waitingOnly {
		where = " WHERE status = 'waiting'"
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT id, fraise, environment, sha, ref, status, reason, webhook_event_id, COALESCE(deployment_id, 0)
		FROM tb_check_hold`+where+` ORDER BY id DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("list held pushes: %w", err)
	}
	out := []HeldPush{}
	err = eachRow(rows, func() error {
		var h HeldPush
		err := rows.Scan(&h.ID, &h.Fraise, &h.Environment, &h.SHA, &h.Ref, &h.Status, &h.Reason, &h.WebhookEventID, &h.DeploymentID)
		out = append(out, h)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list held pushes: %w", err)
	}
	return out, nil
}
