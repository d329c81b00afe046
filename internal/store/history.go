package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strings"
)

const deploymentCols = `id, fraise, environment, trigger, actor, requested_ref, old_sha, new_sha, release,
	status, started_at, finished_at, duration_ms, error, webhook_event_id, host, pid, rollout_id, node`

type scanner interface{ Scan(dest ...any) error }

func scanDeployment(s scanner) (Deployment, error) {
	var (
		d        Deployment
		started  int64
		finished sql.NullInt64
		duration sql.NullInt64
		webhook  sql.NullInt64
		rollout  sql.NullInt64
	)
	err := s.Scan(&d.ID, &d.Fraise, &d.Environment, &d.Trigger, &d.Actor, &d.RequestedRef, &d.OldSHA, &d.NewSHA,
		&d.Release, &d.Status, &started, &finished, &duration, &d.Error, &webhook, &d.Host, &d.PID, &rollout, &d.Node)
	if err != nil {
		return d, err
	}
	d.StartedAt = fromMS(started)
	d.FinishedAt = fromNullMS(finished)
	d.DurationMS = duration.Int64
	if webhook.Valid {
		d.WebhookID = &webhook.Int64
	}
	if rollout.Valid {
		d.RolloutID = &rollout.Int64
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
