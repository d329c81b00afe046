package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteBusyTimeout is how long a step waits for another writer (another
// deployer's migration) before it fails with "database is locked".
const sqliteBusyTimeout = 60 * time.Second

type sqliteStore struct{ db *sql.DB }

// openSQLite opens the file at path. A read never creates it: a missing
// file is errMissingDB.
func openSQLite(ctx context.Context, path string, forRead bool) (*sql.DB, error) {
	q := url.Values{}
	// Pragmas go in the DSN so that every connection database/sql opens
	// gets them.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if forRead {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, errMissingDB
		}
		q.Set("mode", "ro")
	} else {
		// BEGIN IMMEDIATE takes the write lock before the step reads the
		// tracking table, so two migrators cannot both decide to apply
		// the same file.
		q.Set("_txlock", "immediate")
	}
	// A file: URI, so that '?', '#' and '%' in the path are escaped rather
	// than read as the start of parameters.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One connection: dropAll's PRAGMA and its transaction must share it,
	// and a migrator has nothing to do in parallel.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

func openSQLiteStore(ctx context.Context, path string, forRead bool) (*sqliteStore, error) {
	db, err := openSQLite(ctx, path, forRead)
	if err != nil {
		return nil, err
	}
	return &sqliteStore{db: db}, nil
}

func (s *sqliteStore) close() { s.db.Close() }

func (s *sqliteStore) lock(ctx context.Context) (func(), error) { return func() {}, nil }

type sqliteQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func sqliteApplied(ctx context.Context, q sqliteQuerier) ([]appliedMigration, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, trackingTable).Scan(&n); err != nil {
		return nil, fmt.Errorf("read %s: %w", trackingTable, err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT version, name, checksum FROM `+trackingTable+` ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", trackingTable, err)
	}
	defer rows.Close()
	var out []appliedMigration
	for rows.Next() {
		var a appliedMigration
		if err := rows.Scan(&a.version, &a.name, &a.checksum); err != nil {
			return nil, fmt.Errorf("read %s: %w", trackingTable, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", trackingTable, err)
	}
	return out, nil
}

func (s *sqliteStore) applied(ctx context.Context) ([]appliedMigration, error) {
	return sqliteApplied(ctx, s.db)
}

const sqliteTrackingDDL = `CREATE TABLE IF NOT EXISTS ` + trackingTable + ` (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	checksum   TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

func (s *sqliteStore) step(ctx context.Context, fn func(tx sqlTx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, sqliteTrackingDDL); err != nil {
		return fmt.Errorf("create %s: %w", trackingTable, err)
	}
	if err := fn(sqliteTx{tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) applied(ctx context.Context) ([]appliedMigration, error) {
	return sqliteApplied(ctx, t.tx)
}

func (t sqliteTx) exec(ctx context.Context, script string) error {
	_, err := t.tx.ExecContext(ctx, script)
	return err
}

func (t sqliteTx) record(ctx context.Context, m *sqlMigration, at time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO `+trackingTable+` (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
		m.version, m.name, m.checksum, at.Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("record %s: %w", m.upFile(), err)
	}
	return nil
}

func (t sqliteTx) forget(ctx context.Context, version int64) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+trackingTable+` WHERE version = ?`, version); err != nil {
		return fmt.Errorf("forget version %d: %w", version, err)
	}
	return nil
}

// dropAll drops every view and table (their indexes and triggers go with
// them). Foreign keys are off meanwhile, or the order of drops would matter.
func (s *sqliteStore) dropAll(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	defer func() {
		if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); ferr != nil && err == nil {
			err = fmt.Errorf("drop all: %w", ferr)
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `SELECT type, name FROM sqlite_master
		WHERE type IN ('view', 'table') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY type = 'table', name`)
	if err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	var drops []string
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			rows.Close()
			return fmt.Errorf("drop all: %w", err)
		}
		drops = append(drops, fmt.Sprintf("DROP %s IF EXISTS %s", strings.ToUpper(typ), quoteIdent(name)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	for _, d := range drops {
		if _, err := tx.ExecContext(ctx, d); err != nil {
			return fmt.Errorf("drop all: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("drop all: %w", err)
	}
	return nil
}

// quoteIdent quotes an SQL identifier; names come from the catalogue, but
// a table may be called anything.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
