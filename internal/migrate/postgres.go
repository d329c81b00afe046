package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// advisoryLockKey is the pg_advisory_lock key every fraisier migrator of a
// database takes: "fraisier" in ASCII. Advisory locks are per database, so
// migrators of different databases on one server do not wait for each other.
const advisoryLockKey int64 = 0x6672616973696572

// cleanupTimeout bounds unlocking and closing after the caller's context
// has ended.
const cleanupTimeout = 10 * time.Second

// pgStore talks to PostgreSQL through one pgx connection (not database/sql:
// pgx's stdlib adapter needs a module this build does not carry, and the
// session advisory lock wants one connection anyway).
type pgStore struct{ conn *pgx.Conn }

func openPostgresStore(ctx context.Context, connString string) (*pgStore, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("parse postgres URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &pgStore{conn: conn}, nil
}

func (s *pgStore) close() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	s.conn.Close(ctx)
}

// lock takes a session advisory lock, held for the whole run and released
// by PostgreSQL itself if this process dies with the connection.
func (s *pgStore) lock(ctx context.Context) (func(), error) {
	if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, advisoryLockKey); err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, advisoryLockKey); err != nil {
			// Closing the session is the other way to release it.
			s.conn.Close(ctx)
		}
	}, nil
}

func pgApplied(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) ([]appliedMigration, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, trackingTable).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read %s: %w", trackingTable, err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT version, name, checksum FROM `+trackingTable+` ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", trackingTable, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (appliedMigration, error) {
		var a appliedMigration
		err := r.Scan(&a.version, &a.name, &a.checksum)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", trackingTable, err)
	}
	return out, nil
}

func (s *pgStore) applied(ctx context.Context) ([]appliedMigration, error) {
	return pgApplied(ctx, s.conn)
}

const pgTrackingDDL = `CREATE TABLE IF NOT EXISTS ` + trackingTable + ` (
	version    bigint PRIMARY KEY,
	name       text NOT NULL,
	checksum   text NOT NULL,
	applied_at timestamptz NOT NULL
)`

func (s *pgStore) step(ctx context.Context, fn func(tx sqlTx) error) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	// The advisory lock already keeps fraisier migrators apart; the
	// transaction-level one also covers a caller that skipped lock().
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, advisoryLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, pgTrackingDDL); err != nil {
		return fmt.Errorf("create %s: %w", trackingTable, err)
	}
	if err := fn(pgTx{tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) applied(ctx context.Context) ([]appliedMigration, error) { return pgApplied(ctx, t.tx) }

// exec sends the script without arguments, which pgx sends over the simple
// query protocol: a file may hold many statements.
func (t pgTx) exec(ctx context.Context, script string) error {
	_, err := t.tx.Exec(ctx, script)
	return err
}

func (t pgTx) record(ctx context.Context, m *sqlMigration, at time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO `+trackingTable+` (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)`,
		m.version, m.name, m.checksum, at)
	if err != nil {
		return fmt.Errorf("record %s: %w", m.upFile(), err)
	}
	return nil
}

func (t pgTx) forget(ctx context.Context, version int64) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM `+trackingTable+` WHERE version = $1`, version); err != nil {
		return fmt.Errorf("forget version %d: %w", version, err)
	}
	return nil
}

// dropAll replaces the public schema. The new one grants USAGE to PUBLIC
// like PostgreSQL 15's default; objects in other schemas are left alone.
func (s *pgStore) dropAll(ctx context.Context) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public; GRANT USAGE ON SCHEMA public TO PUBLIC`); err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	return nil
}
