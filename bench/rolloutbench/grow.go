package main

import (
	"fmt"
	"time"

	"github.com/fraiseql/fraisier/bench/grow"
)

// growHistory fills the phase's state database, before its nodes start,
// with a history: past rollouts of hello/production across every host,
// one step a host each (so n/hosts rollouts and n steps: deployments of
// the very targets the benchmark deploys, linked to their rollouts), then
// bench/grow's year of n deployments and n/4 webhook events of other
// fraises, whose last step derives every target's state and the
// statistics from all of it (store.RebuildStats). It returns how long it
// took and what it made.
func (w *world) growHistory(n int) (time.Duration, string, error) {
	start := time.Now()
	rollouts := max(1, n/len(w.hosts))
	day := int64(24 * time.Hour / time.Millisecond)
	first := time.Now().UnixMilli() - 365*day
	every := 365 * day / int64(rollouts)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO tb_rollout (fraise, environment, sha, ref, trigger, actor, status, policy, migrate_host, batch,
				created_at, started_at, finished_at)
			SELECT 'hello', 'production', md5(g::text) || substr(md5('x' || g::text), 1, 8), 'refs/heads/main', 'cli', 'grow',
				'succeeded', '{"hosts":[],"batch":1}', 'web-001', $2 - 1, $3::bigint + g * $4::bigint, $3::bigint + g * $4::bigint, $3::bigint + g * $4::bigint + 60000
			FROM generate_series(1, $1) g`, []any{rollouts, len(w.hosts), first, every}},
		{`INSERT INTO tb_rollout_host (rollout_id, host, position, batch, status, started_at, finished_at)
			SELECT r.id, 'web-' || lpad(h::text, 3, '0'), h - 1, h - 1, 'succeeded', r.started_at + (h - 1) * 500, r.started_at + h * 500
			FROM tb_rollout r, generate_series(1, $1) h WHERE r.actor = 'grow'`, []any{len(w.hosts)}},
		{`INSERT INTO tb_deployment (fraise, environment, trigger, actor, requested_ref, new_sha, status,
				started_at, finished_at, duration_ms, host, pid, rollout_id, node)
			SELECT r.fraise, r.environment || '@' || h.host, 'rollout', 'grow', r.ref, r.sha, 'succeeded',
				h.started_at, h.finished_at, 450, h.host, 1, r.id, h.host
			FROM tb_rollout_host h JOIN tb_rollout r ON r.id = h.rollout_id WHERE r.actor = 'grow'`, nil},
		{`UPDATE tb_rollout_host h SET deployment_id = d.id FROM tb_deployment d
			WHERE d.rollout_id = h.rollout_id AND d.node = h.host AND d.actor = 'grow'`, nil},
	} {
		if _, err := w.db.SQL().ExecContext(w.ctx, q.sql, q.args...); err != nil {
			return 0, "", fmt.Errorf("grow the rollouts' history: %w", err)
		}
	}
	if err := grow.Populate(w.ctx, w.db, n, n/4, 1); err != nil {
		return 0, "", err
	}
	if _, err := w.db.SQL().ExecContext(w.ctx, "ANALYZE"); err != nil {
		return 0, "", err
	}
	what := fmt.Sprintf("%d past rollouts of hello/production (%d host steps) and %d deployments, %d webhook events of other fraises",
		rollouts, rollouts*len(w.hosts), n, n/4)
	return time.Since(start), what, nil
}
