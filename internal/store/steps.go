package store

import (
	"context"
	"database/sql"
	"fmt"
	"unicode/utf8"
)

// StepOutputCap is how much of a step's output is kept: the last 64 KiB,
// because the end of a failing command's output is where the error is.
const StepOutputCap = 64 << 10

// StartStep records a new running step of a deployment, numbered after the
// steps already recorded, and returns its id.
func (db *DB) StartStep(ctx context.Context, deploymentID int64, name string) (int64, error) {
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, db.q("SELECT 1 FROM tb_deployment WHERE id = ?"), deploymentID); err != nil {
			return fmt.Errorf("deployment %d: %w", deploymentID, err)
		}
		return db.queryRowTx(ctx, tx, `INSERT INTO tb_deployment_step (deployment_id, seq, name, status, started_at)
			VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tb_deployment_step WHERE deployment_id = ?), ?, ?, ?)
			RETURNING id`,
			deploymentID, deploymentID, name, StepRunning, db.nowMS()).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("start step %s of deployment %d: %w", name, deploymentID, err)
	}
	db.stepsChanged.fire()
	return id, nil
}

// AppendStepOutput adds chunk to the step's output, keeping only the last
// StepOutputCap bytes, marking the output truncated once anything was
// dropped and counting the bytes dropped in OutputOffset. An empty chunk
// is a no-op.
func (db *DB) AppendStepOutput(ctx context.Context, stepID int64, chunk []byte) error {
	if len(chunk) == 0 {
		return nil
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var (
			out       []byte
			truncated bool
			offset    int64
		)
		err := db.queryRowTx(ctx, tx, "SELECT output, output_truncated, output_offset FROM tb_deployment_step WHERE id = ?"+db.d.forUpdate,
			stepID).Scan(&out, &truncated, &offset)
		if notFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		all := int64(len(out) + len(chunk))
		out, cut := keepTail(append(out, chunk...), StepOutputCap)
		_, err = db.execTx(ctx, tx, "UPDATE tb_deployment_step SET output = ?, output_truncated = ?, output_offset = ? WHERE id = ?",
			out, truncated || cut, offset+all-int64(len(out)), stepID)
		return err
	})
	if err != nil {
		return fmt.Errorf("append output of step %d: %w", stepID, err)
	}
	db.stepsChanged.fire()
	return nil
}

// keepTail returns the last limit bytes of b, starting at a UTF-8 character
// boundary when it has to cut, and whether it cut.
func keepTail(b []byte, limit int) ([]byte, bool) {
	if len(b) <= limit {
		return b, false
	}
	b = b[len(b)-limit:]
	// Drop the continuation bytes of a character whose start was cut off;
	// a valid sequence has at most three.
	for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
		b = b[1:]
	}
	return b, true
}

func stepDone(status string) bool {
	switch status {
	case StepSucceeded, StepFailed, StepSkipped:
		return true
	}
	return false
}

// FinishStep ends a running step. exitCode is nil when no process ran.
func (db *DB) FinishStep(ctx context.Context, stepID int64, status string, exitCode *int, detail string) error {
	if !stepDone(status) {
		return fmt.Errorf("finish step %d: %q is not a final step status", stepID, status)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var cur string
		err := db.queryRowTx(ctx, tx, "SELECT status FROM tb_deployment_step WHERE id = ?"+db.d.forUpdate, stepID).Scan(&cur)
		if notFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if cur != StepRunning {
			return fmt.Errorf("step is %s: %w", cur, ErrFinished)
		}
		_, err = db.execTx(ctx, tx, `UPDATE tb_deployment_step SET status = ?, finished_at = ?, exit_code = ?, detail = ?
			WHERE id = ?`, status, db.nowMS(), exitCode, detail, stepID)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish step %d as %s: %w", stepID, status, err)
	}
	db.stepsChanged.fire()
	return nil
}

// Steps returns a deployment's steps in order, or ErrNotFound for an
// unknown deployment.
func (db *DB) Steps(ctx context.Context, deploymentID int64) ([]Step, error) {
	steps, err := db.steps(ctx, deploymentID)
	if err != nil {
		return nil, fmt.Errorf("read steps of deployment %d: %w", deploymentID, err)
	}
	return steps, nil
}

func (db *DB) steps(ctx context.Context, deploymentID int64) ([]Step, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT id, deployment_id, seq, name, status, started_at, finished_at,
		exit_code, output, output_truncated, output_pruned_at, detail, output_offset FROM tb_deployment_step WHERE deployment_id = ? ORDER BY seq`), deploymentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	steps := []Step{}
	for rows.Next() {
		var (
			s        Step
			started  int64
			finished sql.NullInt64
			exit     sql.NullInt64
			out      []byte
			pruned   sql.NullInt64
		)
		if err := rows.Scan(&s.ID, &s.DeploymentID, &s.Seq, &s.Name, &s.Status, &started, &finished,
			&exit, &out, &s.Truncated, &pruned, &s.Detail, &s.OutputOffset); err != nil {
			return nil, err
		}
		s.StartedAt = fromMS(started)
		s.FinishedAt = fromNullMS(finished)
		s.OutputPrunedAt = fromNullMS(pruned)
		if exit.Valid {
			code := int(exit.Int64)
			s.ExitCode = &code
		}
		s.Output = string(out)
		steps = append(steps, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		if err := exists(ctx, db.sql, db.q("SELECT 1 FROM tb_deployment WHERE id = ?"), deploymentID); err != nil {
			return nil, err
		}
	}
	return steps, nil
}
