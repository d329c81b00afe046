package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migration is one embedded migrations/<dialect>/NNNN_name.sql file.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("embedded migration %s: name must start with a positive version and _", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("embedded migrations: expected version %d, found %s", i+1, ms[i].name)
		}
	}
	return ms, nil
}

// SchemaVersion reports the schema version of the open database and the
// newest version this binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (have, known int, err error) {
	ms, err := loadMigrations(db.d.migrations)
	if err != nil {
		return 0, 0, err
	}
	have, err = schemaVersion(ctx, db.sql)
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	return have, len(ms), nil
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM tb_schema_migrations").Scan(&v)
	return v, err
}

// migrate brings the schema up to date. The common case, an up-to-date
// database, costs one read and no write lock, so read-only commands never
// wait behind a running deployment.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(db.d.migrations)
	if err != nil {
		return err
	}
	known := len(ms)
	// A fresh database has no tb_schema_migrations yet, so an error here just
	// sends us down the locked path, which reports anything real.
	if v, err := schemaVersion(ctx, db.sql); err == nil {
		if v > known {
			return &SchemaVersionError{Have: v, Known: known}
		}
		if v == known {
			return nil
		}
	}
	if db.opts.ReadOnly {
		v, err := schemaVersion(ctx, db.sql)
		if err != nil {
			v = 0
		}
		return &SchemaVersionError{Have: v, Known: known}
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if db.d.migrationLock != "" {
			if _, err := tx.ExecContext(ctx, db.d.migrationLock); err != nil {
				return fmt.Errorf("lock schema for migration: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS tb_schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at BIGINT  NOT NULL
		)`); err != nil {
			return fmt.Errorf("create tb_schema_migrations: %w", err)
		}
		// Read again under the lock: another process may have migrated.
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if v > known {
			return &SchemaVersionError{Have: v, Known: known}
		}
		for _, m := range ms[v:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, db.q("INSERT INTO tb_schema_migrations (version, applied_at) VALUES (?, ?)"),
				m.version, db.nowMS()); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}
