package store

import (
	"context"
	"database/sql"
	"fmt"
)

func checkReleaseState(s string) error {
	switch s {
	case ReleaseCurrent, ReleaseGood, ReleaseBad, ReleaseNew:
		return nil
	}
	return fmt.Errorf("unknown release state %q", s)
}

// AddRelease records a release of r.Target and returns its id. State
// defaults to ReleaseNew and CreatedAt to now. Adding a name already
// recorded for the target updates that release (sha, path, state,
// deployment, migration revision) and keeps its creation time, so an in-place checkout that
// reuses one name stays one row. A target has at most one current release:
// making this one current makes the previous one good.
func (db *DB) AddRelease(ctx context.Context, r Release) (int64, error) {
	id, err := db.addRelease(ctx, r)
	if err != nil {
		return 0, fmt.Errorf("add release %s of %s: %w", r.Name, r.Target, err)
	}
	return id, nil
}

func (db *DB) addRelease(ctx context.Context, r Release) (int64, error) {
	if err := checkTarget(r.Target); err != nil {
		return 0, err
	}
	if r.Name == "" {
		return 0, fmt.Errorf("a release needs a name")
	}
	if r.State == "" {
		r.State = ReleaseNew
	}
	if err := checkReleaseState(r.State); err != nil {
		return 0, err
	}
	sha, err := normSHA(r.SHA)
	if err != nil {
		return 0, err
	}
	created := r.CreatedAt.UnixMilli()
	if r.CreatedAt.IsZero() {
		created = db.nowMS()
	}
	var deployment sql.NullInt64
	if r.DeploymentID != 0 {
		deployment = sql.NullInt64{Int64: r.DeploymentID, Valid: true}
	}
	var id int64
	err = db.write(ctx, func(tx *sql.Tx) error {
		if deployment.Valid {
			if err := exists(ctx, tx, db.q("SELECT 1 FROM tb_deployment WHERE id = ?"), r.DeploymentID); err != nil {
				return fmt.Errorf("deployment %d: %w", r.DeploymentID, err)
			}
		}
		if r.State == ReleaseCurrent {
			if err := db.demoteCurrent(ctx, tx, r.Target, r.Name); err != nil {
				return err
			}
		}
		return db.queryRowTx(ctx, tx, `INSERT INTO tb_release
			(fraise, environment, name, sha, path, state, deployment_id, created_at, migration_revision)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fraise, environment, name) DO UPDATE SET
			  sha = excluded.sha, path = excluded.path, state = excluded.state,
			  deployment_id = excluded.deployment_id, migration_revision = excluded.migration_revision
			RETURNING id`,
			r.Fraise, r.Environment, r.Name, sha, r.Path, r.State, deployment, created, r.MigrationRevision).Scan(&id)
	})
	return id, err
}

// demoteCurrent makes the target's current release, unless it is named
// keep, good: it served until now. The states are written in the
// statement, not passed: the partial index ux_release_current serves only
// a statement that says state = 'current', whatever its arguments.
func (db *DB) demoteCurrent(ctx context.Context, tx *sql.Tx, t Target, keep string) error {
	_, err := db.execTx(ctx, tx, `UPDATE tb_release SET state = '`+ReleaseGood+`'
		WHERE fraise = ? AND environment = ? AND state = '`+ReleaseCurrent+`' AND name <> ?`,
		t.Fraise, t.Environment, keep)
	if err != nil {
		return fmt.Errorf("demote current release: %w", err)
	}
	return nil
}

// SetReleaseState changes the state of the release named name. Making it
// current makes the previous current release good.
func (db *DB) SetReleaseState(ctx context.Context, t Target, name, state string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := checkReleaseState(state); err != nil {
			return err
		}
		if state == ReleaseCurrent {
			if err := db.demoteCurrent(ctx, tx, t, name); err != nil {
				return err
			}
		}
		res, err := db.execTx(ctx, tx, "UPDATE tb_release SET state = ? WHERE fraise = ? AND environment = ? AND name = ?",
			state, t.Fraise, t.Environment, name)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("set release %s of %s %s: %w", name, t, state, err)
	}
	return nil
}

// SetReleaseRevision records the migration revision the database reached
// with the release named name (its migrate step's result), so that a
// rollback to it knows where to migrate down to. An unknown release is
// ErrNotFound.
func (db *DB) SetReleaseRevision(ctx context.Context, t Target, name, revision string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := db.execTx(ctx, tx, "UPDATE tb_release SET migration_revision = ? WHERE fraise = ? AND environment = ? AND name = ?",
			revision, t.Fraise, t.Environment, name)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("record migration revision of release %s of %s: %w", name, t, err)
	}
	return nil
}

// releaseColumns are what every read of tb_release selects, in scanRelease's
// order.
const releaseColumns = "id, fraise, environment, name, sha, path, state, deployment_id, created_at, migration_revision"

// Releases returns the releases of the targets matching fraise and env (""
// matches all), newest first: a target's whole history, for a rollback's
// choice and for recovery. A deployment looks one up by name (Release).
func (db *DB) Releases(ctx context.Context, fraise, env string) ([]Release, error) {
	where, args := targetWhere("", fraise, env)
	return db.queryReleases(ctx, "list releases", where+" ORDER BY created_at DESC, id DESC", args)
}

// RecentReleases returns the newest limit releases of t, newest first.
func (db *DB) RecentReleases(ctx context.Context, t Target, limit int) ([]Release, error) {
	return db.queryReleases(ctx, "list recent releases", " WHERE fraise = ? AND environment = ? ORDER BY created_at DESC, id DESC LIMIT ?",
		[]any{t.Fraise, t.Environment, limit})
}

// Release returns t's release named name; ErrNotFound when there is none.
func (db *DB) Release(ctx context.Context, t Target, name string) (Release, error) {
	rs, err := db.queryReleases(ctx, "read release", " WHERE fraise = ? AND environment = ? AND name = ?", []any{t.Fraise, t.Environment, name})
	if err != nil {
		return Release{}, err
	}
	if len(rs) == 0 {
		return Release{}, fmt.Errorf("read release %s of %s: %w", name, t, ErrNotFound)
	}
	return rs[0], nil
}

func (db *DB) queryReleases(ctx context.Context, what, tail string, args []any) ([]Release, error) {
	rows, err := db.sql.QueryContext(ctx, db.q("SELECT "+releaseColumns+" FROM tb_release"+tail), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	rs := []Release{}
	for rows.Next() {
		var (
			r          Release
			deployment sql.NullInt64
			created    int64
		)
		if err := rows.Scan(&r.ID, &r.Fraise, &r.Environment, &r.Name, &r.SHA, &r.Path, &r.State, &deployment, &created, &r.MigrationRevision); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		r.DeploymentID = deployment.Int64
		r.CreatedAt = fromMS(created)
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return rs, nil
}
