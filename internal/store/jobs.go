package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"
)

// JobState is what fraisier last knew of one scheduled job of a target: the
// hash of the units it installed (to tell whether they need rewriting) and
// the job's last result.
type JobState struct {
	Target
	Job        string     `json:"job"`
	UnitHash   string     `json:"unit_hash"`
	LastResult string     `json:"last_result"`
	LastRunAt  *time.Time `json:"last_run_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// PutJobState records the state of one job, replacing what was there;
// UpdatedAt is set to now.
func (db *DB) PutJobState(ctx context.Context, j JobState) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := checkTarget(j.Target); err != nil {
			return err
		}
		var lastRun sql.NullInt64
		if j.LastRunAt != nil {
			lastRun = sql.NullInt64{Int64: j.LastRunAt.UnixMilli(), Valid: true}
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO tb_job_state
			(fraise, environment, job, unit_hash, last_result, last_run_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fraise, environment, job) DO UPDATE SET
			  unit_hash = excluded.unit_hash, last_result = excluded.last_result,
			  last_run_at = excluded.last_run_at, updated_at = excluded.updated_at`),
			j.Fraise, j.Environment, j.Job, j.UnitHash, j.LastResult, lastRun, db.nowMS())
		return err
	})
	if err != nil {
		return fmt.Errorf("record state of job %s of %s: %w", j.Job, j.Target, err)
	}
	return nil
}

// JobStates returns the job states of the targets matching fraise and env
// ("" matches all), sorted by target and job.
func (db *DB) JobStates(ctx context.Context, fraise, env string) ([]JobState, error) {
	where, args := targetWhere("", fraise, env)
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT fraise, environment, job, unit_hash, last_result, last_run_at, updated_at
		FROM tb_job_state`+where), args...)
	if err != nil {
		return nil, fmt.Errorf("list job states: %w", err)
	}
	defer rows.Close()
	js := []JobState{}
	for rows.Next() {
		var (
			j       JobState
			lastRun sql.NullInt64
			updated int64
		)
		if err := rows.Scan(&j.Fraise, &j.Environment, &j.Job, &j.UnitHash, &j.LastResult, &lastRun, &updated); err != nil {
			return nil, fmt.Errorf("list job states: %w", err)
		}
		j.LastRunAt = fromNullMS(lastRun)
		j.UpdatedAt = fromMS(updated)
		js = append(js, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list job states: %w", err)
	}
	sort.Slice(js, func(i, k int) bool {
		if js[i].Target != js[k].Target {
			return targetLess(js[i].Target, js[k].Target)
		}
		return js[i].Job < js[k].Job
	})
	return js, nil
}
