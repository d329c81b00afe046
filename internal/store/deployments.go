package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Finish is how a deployment ended.
type Finish struct {
	Status  string // one of the terminal statuses
	NewSHA  string // "" keeps what StartDeployment recorded
	Release string // "" keeps what StartDeployment recorded
	Error   string
}

// terminal reports whether a deployment status is final.
func terminal(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusRolledBack, StatusRollbackFailed,
		StatusInterrupted, StatusSkipped, StatusSuperseded:
		return true
	}
	return false
}

// TerminalStatuses lists the statuses a deployment can end in.
func TerminalStatuses() []string {
	return []string{StatusSucceeded, StatusFailed, StatusRolledBack, StatusRollbackFailed,
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
func (db *DB) insertDeployment(ctx context.Context, tx *sql.Tx, d Deployment, status, oldSHA, newSHA string) (int64, error) {
	var id int64
	if d.WebhookID != nil {
		if err := exists(ctx, tx, db.q("SELECT 1 FROM tb_webhook_event WHERE id = ?"), *d.WebhookID); err != nil {
			return 0, fmt.Errorf("webhook event %d: %w", *d.WebhookID, err)
		}
	}
	err := db.queryRowTx(ctx, tx, `INSERT INTO tb_deployment
		(fraise, environment, trigger, actor, requested_ref, old_sha, new_sha, release,
		 status, started_at, webhook_event_id, host, pid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		d.Fraise, d.Environment, d.Trigger, d.Actor, d.RequestedRef, oldSHA, newSHA, d.Release,
		status, db.nowMS(), d.WebhookID, d.Host, d.PID).Scan(&id)
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
	return nil
}

// MarkInterrupted finishes a deployment whose process died as
// StatusInterrupted, with reason as its error. It is FinishDeployment for
// crash recovery, with the same bookkeeping.
func (db *DB) MarkInterrupted(ctx context.Context, id int64, reason string) error {
	if err := db.finish(ctx, id, Finish{Status: StatusInterrupted, Error: reason}); err != nil {
		return fmt.Errorf("mark deployment %d interrupted: %w", id, err)
	}
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
		var status string
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
		status string
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
	err = db.queryRowTx(ctx, tx, `SELECT status, actor, new_sha, release, started_at
		FROM tb_deployment WHERE id = ?`+db.d.forUpdate, id).
		Scan(&status, &d.actor, &d.newSHA, &d.release, &d.started)
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
	return db.addToRollups(ctx, tx, t, d, acc)
}

// targetState is a tb_fraise_state row while it is being advanced.
type targetState struct {
	Status           string
	CurrentSHA       string
	CurrentRelease   string
	DeployedAt       sql.NullInt64
	DeployedBy       string
	LastDeployment   sql.NullInt64
	BrokenSince      sql.NullInt64
	BrokenDeployment sql.NullInt64
	// incidentStart is when the open incident began: the start of the
	// rollback_failed deployment that opened it. Not stored; derived from
	// BrokenDeployment.
	incidentStart int64
	// deployedID is the deployment that made the current release current.
	// Only RebuildStats uses it.
	deployedID int64
}

// finishedRow is what advancing the state and the rollups needs to know
// about a finished deployment.
type finishedRow struct {
	id                          int64
	status                      string
	started, finished, duration int64
	actor, newSHA, release      string
}

// incidentAcc is a finished deployment's incident accounting, stored on
// its tb_deployment row.
type incidentAcc struct {
	incident  int           // 1 when it opened an incident
	restoreMS sql.NullInt64 // time to restore of the incident it closed
}

// apply advances the state by one finished deployment. Deployments must be
// applied in finish order (finished_at, then id); FinishDeployment and
// RebuildStats both go through here, which is what makes a rebuild
// reproduce the incremental figures exactly.
//
// Incidents: a deployment that ends rolled_back on a healthy target is an
// incident restored by its own rollback, after its duration. One that ends
// rollback_failed on a healthy target opens an incident that stays open
// (the target is broken) until a later deployment of the target ends
// succeeded or rolled_back; its time to restore runs from the start of the
// deployment that broke the target to the finish of the one that restored
// it. Failures while the target is already broken belong to the open
// incident rather than opening another.
func (st *targetState) apply(d finishedRow) incidentAcc {
	var acc incidentAcc
	broken := st.BrokenDeployment.Valid
	switch d.status {
	case StatusRollbackFailed:
		if !broken {
			acc.incident = 1
			st.BrokenSince = sql.NullInt64{Int64: d.finished, Valid: true}
			st.BrokenDeployment = sql.NullInt64{Int64: d.id, Valid: true}
			st.incidentStart = d.started
		}
	case StatusRolledBack, StatusSucceeded:
		switch {
		case broken:
			acc.restoreMS = sql.NullInt64{Int64: d.finished - st.incidentStart, Valid: true}
			st.BrokenSince, st.BrokenDeployment, st.incidentStart = sql.NullInt64{}, sql.NullInt64{}, 0
		case d.status == StatusRolledBack:
			acc.incident = 1
			acc.restoreMS = sql.NullInt64{Int64: d.duration, Valid: true}
		}
	}
	if d.status == StatusSucceeded {
		st.CurrentSHA, st.CurrentRelease = d.newSHA, d.release
		st.DeployedAt = sql.NullInt64{Int64: d.finished, Valid: true}
		st.DeployedBy = d.actor
		st.deployedID = d.id
	}
	// An older deployment finishing late does not hide a newer one.
	if !st.LastDeployment.Valid || d.id >= st.LastDeployment.Int64 {
		st.Status = d.status
		st.LastDeployment = sql.NullInt64{Int64: d.id, Valid: true}
	}
	return acc
}

func (db *DB) loadTargetState(ctx context.Context, tx *sql.Tx, t Target) (*targetState, error) {
	st := &targetState{Status: "never"}
	// Locked: two deployments of one target finishing at once must not both
	// advance the same old state.
	err := db.queryRowTx(ctx, tx, `SELECT status, current_sha, current_release, deployed_at, deployed_by,
		       last_deployment_id, broken_since, broken_deployment_id
		FROM tb_fraise_state WHERE fraise = ? AND environment = ?`+db.d.forUpdate, t.Fraise, t.Environment).
		Scan(&st.Status, &st.CurrentSHA, &st.CurrentRelease, &st.DeployedAt, &st.DeployedBy,
			&st.LastDeployment, &st.BrokenSince, &st.BrokenDeployment)
	if err != nil && !notFound(err) {
		return nil, fmt.Errorf("read state of %s: %w", t, err)
	}
	if st.BrokenDeployment.Valid {
		err := db.queryRowTx(ctx, tx, "SELECT started_at FROM tb_deployment WHERE id = ?",
			st.BrokenDeployment.Int64).Scan(&st.incidentStart)
		if err != nil {
			return nil, fmt.Errorf("read the deployment that broke %s: %w", t, err)
		}
	}
	return st, nil
}

func (db *DB) saveTargetState(ctx context.Context, q querier, t Target, st *targetState) error {
	_, err := q.ExecContext(ctx, db.q(`INSERT INTO tb_fraise_state
		(fraise, environment, status, current_sha, current_release, deployed_at, deployed_by,
		 last_deployment_id, broken_since, broken_deployment_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (fraise, environment) DO UPDATE SET
		  status = excluded.status, current_sha = excluded.current_sha,
		  current_release = excluded.current_release, deployed_at = excluded.deployed_at,
		  deployed_by = excluded.deployed_by, last_deployment_id = excluded.last_deployment_id,
		  broken_since = excluded.broken_since, broken_deployment_id = excluded.broken_deployment_id`),
		t.Fraise, t.Environment, st.Status, st.CurrentSHA, st.CurrentRelease, st.DeployedAt, st.DeployedBy,
		st.LastDeployment, st.BrokenSince, st.BrokenDeployment)
	if err != nil {
		return fmt.Errorf("update state of %s: %w", t, err)
	}
	return nil
}

const deploymentCols = `id, fraise, environment, trigger, actor, requested_ref, old_sha, new_sha, release,
	status, started_at, finished_at, duration_ms, error, webhook_event_id, host, pid`

type scanner interface{ Scan(dest ...any) error }

func scanDeployment(s scanner) (Deployment, error) {
	var (
		d        Deployment
		started  int64
		finished sql.NullInt64
		duration sql.NullInt64
		webhook  sql.NullInt64
	)
	err := s.Scan(&d.ID, &d.Fraise, &d.Environment, &d.Trigger, &d.Actor, &d.RequestedRef, &d.OldSHA, &d.NewSHA,
		&d.Release, &d.Status, &started, &finished, &duration, &d.Error, &webhook, &d.Host, &d.PID)
	if err != nil {
		return d, err
	}
	d.StartedAt = fromMS(started)
	d.FinishedAt = fromNullMS(finished)
	d.DurationMS = duration.Int64
	if webhook.Valid {
		d.WebhookID = &webhook.Int64
	}
	return d, nil
}

// Deployment returns one deployment, or ErrNotFound.
func (db *DB) Deployment(ctx context.Context, id int64) (Deployment, error) {
	row := db.sql.QueryRowContext(ctx, db.q("SELECT "+deploymentCols+" FROM v_deployment_history WHERE id = ?"), id)
	d, err := scanDeployment(row)
	if notFound(err) {
		err = ErrNotFound
	}
	if err != nil {
		return Deployment{}, fmt.Errorf("read deployment %d: %w", id, err)
	}
	return d, nil
}

// Deployments returns the deployments matching f, newest (highest id) first.
// Since bounds the start time.
func (db *DB) Deployments(ctx context.Context, f DeploymentFilter) ([]Deployment, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Fraise != "" {
		add("fraise = ?", f.Fraise)
	}
	if f.Environment != "" {
		add("environment = ?", f.Environment)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if !f.Since.IsZero() {
		since := f.Since.UnixMilli()
		add("started_at >= ?", since)
		bound, bounded, err := db.sinceBound(ctx, since)
		if err != nil {
			return nil, fmt.Errorf("list deployments: %w", err)
		}
		if bounded {
			add("id >= ?", bound)
		}
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	query := "SELECT " + deploymentCols + " FROM v_deployment_history"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	ds, err := db.queryDeployments(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	return ds, nil
}

// sinceBoundRows is how many deployments a window may hold for sinceBound
// to bound the scan; more than that and enough of them match that a
// newest-first scan ends early anyway.
const sinceBoundRows = 10000

// sinceBound returns the lowest id of the deployments started at or after
// since, when there are few of them. History is listed by id, and every
// index a filter uses ends in id, so "id >= bound" turns "scan newest first
// until the limit is reached, possibly to the very first deployment" into
// a bounded range. The bound is exact, not inferred from ids growing with
// start times: a queued deployment gets its start time when it begins.
func (db *DB) sinceBound(ctx context.Context, since int64) (bound int64, ok bool, err error) {
	var (
		n   int64
		min sql.NullInt64
	)
	err = db.sql.QueryRowContext(ctx, db.q(`SELECT COUNT(*), MIN(id) FROM
		(SELECT id FROM tb_deployment WHERE started_at >= ? LIMIT ?) s`), since, sinceBoundRows+1).Scan(&n, &min)
	if err != nil {
		return 0, false, fmt.Errorf("bound window: %w", err)
	}
	switch {
	case n > sinceBoundRows:
		return 0, false, nil
	case n == 0:
		// Nothing started since: no id qualifies.
		return math.MaxInt64, true, nil
	}
	return min.Int64, true, nil
}

// RunningDeployments returns the deployments not yet finished, queued ones
// included, oldest first: after a crash, those whose process is gone are
// for MarkInterrupted.
func (db *DB) RunningDeployments(ctx context.Context) ([]Deployment, error) {
	ds, err := db.queryDeployments(ctx, "SELECT "+deploymentCols+
		" FROM v_deployment_history WHERE status IN (?, ?) ORDER BY id", StatusQueued, StatusRunning)
	if err != nil {
		return nil, fmt.Errorf("list running deployments: %w", err)
	}
	return ds, nil
}

func (db *DB) queryDeployments(ctx context.Context, query string, args ...any) ([]Deployment, error) {
	// Prepared once: the queue's dispatcher and the API run these queries
	// often, and the history view takes longer to parse than to read. The
	// callers' query strings come from a fixed set of filters.
	st, err := db.dbStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ds := []Deployment{}
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

// FraiseStates returns the recorded state of every target matching fraise
// and env ("" matches all), sorted by fraise then environment. Targets never
// deployed have no state and are not listed.
func (db *DB) FraiseStates(ctx context.Context, fraise, env string) ([]FraiseState, error) {
	query := `SELECT fraise, environment, status, current_sha, current_release, deployed_at, deployed_by,
		last_deployment_id, broken_since FROM v_fraise_status`
	where, args := targetWhere("", fraise, env)
	rows, err := db.sql.QueryContext(ctx, db.q(query+where), args...)
	if err != nil {
		return nil, fmt.Errorf("read fraise states: %w", err)
	}
	defer rows.Close()
	states := []FraiseState{}
	for rows.Next() {
		var (
			s        FraiseState
			deployed sql.NullInt64
			last     sql.NullInt64
			broken   sql.NullInt64
		)
		if err := rows.Scan(&s.Fraise, &s.Environment, &s.Status, &s.CurrentSHA, &s.CurrentRelease,
			&deployed, &s.DeployedBy, &last, &broken); err != nil {
			return nil, fmt.Errorf("read fraise states: %w", err)
		}
		if deployed.Valid {
			s.DeployedAt = fromMS(deployed.Int64)
		}
		s.LastDeployment = last.Int64
		s.BrokenSince = fromNullMS(broken)
		states = append(states, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read fraise states: %w", err)
	}
	// Sorted here rather than in SQL: PostgreSQL would sort by the
	// database's collation, SQLite bytewise.
	sort.Slice(states, func(i, j int) bool { return targetLess(states[i].Target, states[j].Target) })
	return states, nil
}

func targetLess(a, b Target) bool {
	if a.Fraise != b.Fraise {
		return a.Fraise < b.Fraise
	}
	return a.Environment < b.Environment
}

// targetWhere is the WHERE clause selecting fraise and env when non-empty,
// with columns qualified by prefix (e.g. "s.").
func targetWhere(prefix, fraise, env string) (string, []any) {
	var (
		conds []string
		args  []any
	)
	if fraise != "" {
		conds = append(conds, prefix+"fraise = ?")
		args = append(args, fraise)
	}
	if env != "" {
		conds = append(conds, prefix+"environment = ?")
		args = append(args, env)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}
