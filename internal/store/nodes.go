package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Heartbeat records that node n is alive, now: its row is created or
// refreshed (its heartbeat_at is the store's clock; n.HeartbeatAt is
// ignored, and n.StartedAt when zero is now too).
func (db *DB) Heartbeat(ctx context.Context, n Node) error {
	if n.Name == "" {
		return fmt.Errorf("heartbeat: a node name is required")
	}
	now := db.nowMS()
	started := now
	if !n.StartedAt.IsZero() {
		started = n.StartedAt.UnixMilli()
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := db.execTx(ctx, tx, `INSERT INTO tb_node (name, hostname, pid, version, started_at, heartbeat_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid,
				version = excluded.version, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
			n.Name, n.Hostname, n.PID, n.Version, started, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", n.Name, err)
	}
	return nil
}

// Nodes lists the nodes that ever heartbeat, by name.
func (db *DB) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT name, hostname, pid, version, started_at, heartbeat_at
		FROM tb_node ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	var ns []Node
	err = eachRow(rows, func() error {
		var (
			n               Node
			started, beatAt int64
		)
		err := rows.Scan(&n.Name, &n.Hostname, &n.PID, &n.Version, &started, &beatAt)
		n.StartedAt, n.HeartbeatAt = fromMS(started), fromMS(beatAt)
		ns = append(ns, n)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	return ns, nil
}
