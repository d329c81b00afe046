package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// TargetRestart is how a target's last deployment that recorded it took
// over: its restart mode and, with blue_green, the colour serving after it.
type TargetRestart struct {
	Target
	Mode   string `json:"restart"`
	Colour string `json:"colour,omitempty"`
}

// SetDeploymentRestart records how deployment id restarted its service:
// mode (plain, socket or blue_green) and, with blue_green, the colour
// serving when it ended (blue, green, or "" for neither).
func (db *DB) SetDeploymentRestart(ctx context.Context, id int64, mode, colour string) error {
	switch {
	case mode != "plain" && mode != "socket" && mode != "blue_green":
		return fmt.Errorf("record the restart of deployment %d: unknown mode %q", id, mode)
	case colour != "" && colour != "blue" && colour != "green":
		return fmt.Errorf("record the restart of deployment %d: unknown colour %q", id, colour)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var fraise, env string
		err := db.queryRowTx(ctx, tx, "SELECT fraise, environment FROM tb_deployment WHERE id = ?", id).Scan(&fraise, &env)
		if notFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := db.execTx(ctx, tx, "UPDATE tb_deployment SET restart_mode = ?, serving_colour = ? WHERE id = ?", mode, colour, id); err != nil {
			return err
		}
		_, err = db.execTx(ctx, tx, `INSERT INTO tb_restart_state (fraise, environment, deployment_id, restart_mode, serving_colour)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (fraise, environment) DO UPDATE SET deployment_id = excluded.deployment_id,
				restart_mode = excluded.restart_mode, serving_colour = excluded.serving_colour
			WHERE excluded.deployment_id >= tb_restart_state.deployment_id`, fraise, env, id, mode, colour)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the restart of deployment %d: %w", id, err)
	}
	return nil
}

// Restarts is, per target (of fraise and env when not empty), the restart
// mode and serving colour its newest deployment that recorded one left.
func (db *DB) Restarts(ctx context.Context, fraise, env string) ([]TargetRestart, error) {
	where, args := targetWhere("", fraise, env)
	query := "SELECT fraise, environment, restart_mode, serving_colour FROM tb_restart_state" + where
	rows, err := db.sql.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read restart modes: %w", err)
	}
	defer rows.Close()
	out := []TargetRestart{}
	for rows.Next() {
		var r TargetRestart
		if err := rows.Scan(&r.Fraise, &r.Environment, &r.Mode, &r.Colour); err != nil {
			return nil, fmt.Errorf("read restart modes: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read restart modes: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return targetLess(out[i].Target, out[j].Target) })
	return out, nil
}
