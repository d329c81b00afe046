package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

const rolloutCols = `id, fraise, environment, sha, ref, trigger, actor, webhook_event_id, status, policy, batch, next_at,
	waiting_resume, canary_checked, created_at, started_at, finished_at, error, superseded_by`

// scanRollout reads a row of rolloutCols, and whether its canary was
// checked.
func scanRollout(s scanner) (Rollout, bool, error) {
	var (
		r                               Rollout
		policy                          string
		hook, nextAt, started, finished sql.NullInt64
		supersededBy                    sql.NullInt64
		created                         int64
		checked                         bool
	)
	err := s.Scan(&r.ID, &r.Fraise, &r.Environment, &r.SHA, &r.Ref, &r.Trigger, &r.Actor, &hook, &r.Status, &policy, &r.Batch,
		&nextAt, &r.WaitingResume, &checked, &created, &started, &finished, &r.Error, &supersededBy)
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal([]byte(policy), &r.Policy); err != nil {
		return r, false, fmt.Errorf("rollout %d: policy: %w", r.ID, err)
	}
	if hook.Valid {
		r.WebhookID = &hook.Int64
	}
	if supersededBy.Valid {
		r.SupersededBy = &supersededBy.Int64
	}
	r.NextAt, r.StartedAt, r.FinishedAt = fromNullMS(nextAt), fromNullMS(started), fromNullMS(finished)
	r.CreatedAt = fromMS(created)
	return r, checked, nil
}

// rolloutHosts reads the hosts of the rollouts ids, in rollout order.
func (db *DB) rolloutHosts(ctx context.Context, q querier, ids []int64) (map[int64][]RolloutHost, error) {
	out := make(map[int64][]RolloutHost, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, db.q(`SELECT rollout_id, host, position, batch, status, deployment_id, rollback_id,
		old_sha, error, started_at, finished_at FROM tb_rollout_host
		WHERE rollout_id IN (`+placeholders(len(ids))+`) ORDER BY rollout_id, position`), args...)
	if err != nil {
		return nil, fmt.Errorf("read rollout hosts: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			id                int64
			h                 RolloutHost
			dep, rb           sql.NullInt64
			started, finished sql.NullInt64
		)
		if err := rows.Scan(&id, &h.Host, &h.Position, &h.Batch, &h.Status, &dep, &rb, &h.OldSHA, &h.Error,
			&started, &finished); err != nil {
			return err
		}
		if dep.Valid {
			h.DeploymentID = &dep.Int64
		}
		if rb.Valid {
			h.RollbackID = &rb.Int64
		}
		h.StartedAt, h.FinishedAt = fromNullMS(started), fromNullMS(finished)
		out[id] = append(out[id], h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read rollout hosts: %w", err)
	}
	return out, nil
}

// Rollout returns one rollout with its hosts, or ErrNotFound.
func (db *DB) Rollout(ctx context.Context, id int64) (Rollout, error) {
	rs, err := db.readRollouts(ctx, " WHERE id = ?", []any{id})
	if err == nil && len(rs) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Rollout{}, fmt.Errorf("read rollout %d: %w", id, err)
	}
	return rs[0], nil
}

// Rollouts returns the rollouts f selects, newest first, with their
// hosts. An empty Target.Environment selects every environment of
// Target.Fraise; a Limit <= 0 is 20.
func (db *DB) Rollouts(ctx context.Context, f RolloutFilter) ([]Rollout, error) {
	var (
		where []string
		args  []any
	)
	if f.Target.Fraise != "" {
		where, args = append(where, "fraise = ?"), append(args, f.Target.Fraise)
	}
	if f.Target.Environment != "" {
		where, args = append(where, "environment = ?"), append(args, f.Target.Environment)
	}
	if f.Active {
		where = append(where, "status IN ('queued', 'running', 'rolling_back')")
	}
	query := ""
	if len(where) > 0 {
		query = " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	rs, err := db.readRollouts(ctx, query+" ORDER BY id DESC LIMIT ?", append(args, limit))
	if err != nil {
		return nil, fmt.Errorf("read rollouts: %w", err)
	}
	return rs, nil
}

// readRollouts reads the rollouts a WHERE/ORDER clause selects, and
// their hosts.
func (db *DB) readRollouts(ctx context.Context, clause string, args []any) ([]Rollout, error) {
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT "+rolloutCols+" FROM tb_rollout"+clause), args...)
	if err != nil {
		return nil, err
	}
	var (
		rs  []Rollout
		ids []int64
	)
	err = eachRow(rows, func() error {
		r, _, err := scanRollout(rows)
		rs, ids = append(rs, r), append(ids, r.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	hosts, err := db.rolloutHosts(ctx, db.sql, ids)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		rs[i].Hosts = hosts[rs[i].ID]
	}
	return rs, nil
}

// QueuedDeploymentsFor returns the requests waiting that node may run,
// oldest first: those any node may run, and the steps of its own host.
func (db *DB) QueuedDeploymentsFor(ctx context.Context, node string) ([]Deployment, error) {
	ds, err := db.queryDeployments(ctx, "SELECT "+deploymentCols+
		" FROM v_deployment_history WHERE status = ? AND node IN ('', ?) ORDER BY id", StatusQueued, node)
	if err != nil {
		return nil, fmt.Errorf("read the deploy queue of node %s: %w", node, err)
	}
	return ds, nil
}
