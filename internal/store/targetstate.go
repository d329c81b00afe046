package store

import (
	"context"
	"database/sql"
	"fmt"
)

// targetState is a tb_fraise_state row while it is being advanced.
type targetState struct {
	Status           Status
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
	status                      Status
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
