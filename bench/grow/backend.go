package grow

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"

	"github.com/fraiseql/fraisier/internal/store"
)

// backend is what a bulk load does differently on SQLite and PostgreSQL.
type backend struct {
	// insert starts each multi-row INSERT.
	insert string
	// dollar numbers placeholders $1, $2, ... instead of ?.
	dollar bool
	// settings are pairs of statements setting up, and restoring, the
	// connection for the load.
	settings [][2]string
	// deferForeignKeys makes the transaction check foreign keys when
	// checkForeignKeys runs: the tables' rows are buffered separately, so
	// a deployment can reach the database before its webhook event.
	deferForeignKeys, checkForeignKeys string
	// listIndexes lists (name, creating statement) of the secondary
	// indexes of the tables the load fills.
	listIndexes string
	// after runs once the rows are in.
	after []string
}

var sqlite = backend{
	// Any failure aborts the whole transaction anyway, and with ROLLBACK
	// instead of the default ABORT SQLite keeps no statement journal: a
	// copy of every page a multi-row INSERT touches.
	insert: "INSERT OR ROLLBACK INTO ",
	settings: [][2]string{
		// The rows are consistent by construction; checking every
		// reference costs more than inserting the row.
		{"PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"},
		// A transaction bigger than the page cache spills, writing pages
		// to the WAL again and again.
		{"PRAGMA cache_size = -1048576", "PRAGMA cache_size = -16384"},
		// Lets CREATE INDEX sort on more than one core, in memory.
		{"PRAGMA threads = 4", "PRAGMA threads = 0"},
		{"PRAGMA temp_store = MEMORY", "PRAGMA temp_store = DEFAULT"},
	},
	listIndexes: `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('tb_deployment', 'tb_webhook_event', 'tb_webhook_deployment')`,
}

var postgres = backend{
	insert:           "INSERT INTO ",
	dollar:           true,
	deferForeignKeys: "SET CONSTRAINTS ALL DEFERRED",
	// PostgreSQL will not build an index on a table with checks pending.
	checkForeignKeys: "SET CONSTRAINTS ALL IMMEDIATE",
	// Indexes that back a constraint (primary keys) cannot be dropped alone.
	listIndexes: `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema()
		  AND tablename IN ('tb_deployment', 'tb_webhook_event', 'tb_webhook_deployment')
		  AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)`,
	// The rows have explicit ids: the identity sequences must move past them.
	after: []string{
		"SELECT setval(pg_get_serial_sequence('tb_deployment', 'id'), COALESCE((SELECT MAX(id) FROM tb_deployment), 0) + 1, false)",
		"SELECT setval(pg_get_serial_sequence('tb_webhook_event', 'id'), COALESCE((SELECT MAX(id) FROM tb_webhook_event), 0) + 1, false)",
	},
}

func backendOf(db *store.DB) (*backend, error) {
	switch db.Backend() {
	case "sqlite":
		return &sqlite, nil
	case "postgres":
		return &postgres, nil
	}
	return nil, fmt.Errorf("unknown backend %q", db.Backend())
}

// session runs fn in a transaction on conn set up for the load, and
// restores the connection after it.
func (b *backend) session(ctx context.Context, conn *sql.Conn, fn func(tx *sql.Tx) error) error {
	for _, s := range b.settings {
		if _, err := conn.ExecContext(ctx, s[0]); err != nil {
			return fmt.Errorf("set up the connection: %w", err)
		}
		// Restored on a fresh context, since the connection goes back to
		// the pool; one that cannot be restored is discarded.
		defer func() {
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), s[1]); err != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if b.deferForeignKeys != "" {
		if _, err := tx.ExecContext(ctx, b.deferForeignKeys); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("defer foreign keys: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// dropIndexes drops the secondary indexes of the tables the load fills and
// returns the statements that make them again.
func (b *backend) dropIndexes(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, b.listIndexes)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	defer rows.Close()
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, fmt.Errorf("list indexes: %w", err)
		}
		names, defs = append(names, name), append(defs, def)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, "DROP INDEX "+name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return defs, nil
}

// finish checks the deferred foreign keys, makes the indexes again and
// runs what follows a load.
func (b *backend) finish(ctx context.Context, tx *sql.Tx, indexes []string) error {
	if b.checkForeignKeys != "" {
		if _, err := tx.ExecContext(ctx, b.checkForeignKeys); err != nil {
			return fmt.Errorf("check foreign keys: %w", err)
		}
	}
	for _, ix := range indexes {
		if _, err := tx.ExecContext(ctx, ix); err != nil {
			return fmt.Errorf("make index again: %w", err)
		}
	}
	for _, stmt := range b.after {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("after the load: %w", err)
		}
	}
	return nil
}

// inserter inserts rows into one table many per statement: per-statement
// overhead dominates single-row inserts on both backends.
type inserter struct {
	b       *backend
	tx      *sql.Tx
	table   string
	cols    []string
	perStmt int
	stmt    *sql.Stmt // perStmt rows
	buf     []any
}

func (b *backend) inserter(tx *sql.Tx, table string, cols ...string) *inserter {
	// Both backends accept at least 32766 parameters per statement;
	// beyond a few hundred rows the gain is nil.
	per := min(256, 30000/len(cols))
	return &inserter{b: b, tx: tx, table: table, cols: cols, perStmt: per}
}

func (in *inserter) query(rows int) string {
	var q strings.Builder
	q.WriteString(in.b.insert + in.table + " (" + strings.Join(in.cols, ", ") + ") VALUES ")
	n := 0
	for r := range rows {
		if r > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for c := range in.cols {
			if c > 0 {
				q.WriteString(", ")
			}
			n++
			if in.b.dollar {
				q.WriteString("$" + strconv.Itoa(n))
			} else {
				q.WriteByte('?')
			}
		}
		q.WriteByte(')')
	}
	return q.String()
}

func (in *inserter) add(ctx context.Context, vals ...any) error {
	in.buf = append(in.buf, vals...)
	if len(in.buf) < in.perStmt*len(in.cols) {
		return nil
	}
	if in.stmt == nil {
		stmt, err := in.tx.PrepareContext(ctx, in.query(in.perStmt))
		if err != nil {
			return fmt.Errorf("prepare insert into %s: %w", in.table, err)
		}
		in.stmt = stmt
	}
	if _, err := in.stmt.ExecContext(ctx, in.buf...); err != nil {
		return fmt.Errorf("insert into %s: %w", in.table, err)
	}
	in.buf = in.buf[:0]
	return nil
}

// flush inserts what is buffered and releases the prepared statement.
func (in *inserter) flush(ctx context.Context) error {
	if in.stmt != nil {
		defer in.stmt.Close()
		in.stmt = nil
	}
	if len(in.buf) == 0 {
		return nil
	}
	if _, err := in.tx.ExecContext(ctx, in.query(len(in.buf)/len(in.cols)), in.buf...); err != nil {
		return fmt.Errorf("insert into %s: %w", in.table, err)
	}
	in.buf = in.buf[:0]
	return nil
}
