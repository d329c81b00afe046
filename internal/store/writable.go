package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// WriteAccessError says why this user (SQLite) or role (PostgreSQL) could
// not write the state database, and how to fix it.
type WriteAccessError struct {
	// What cannot be done, and on what.
	What string
	// Fix is a step or a statement that fixes it.
	Fix string
}

func (e *WriteAccessError) Error() string { return e.What }

// CheckWritable tells, without writing anything, whether the commands that
// write (deploy, serve, prune) could write the state database opts names,
// as this user or role: nil, a *WriteAccessError, or the error that kept
// it from telling. It creates and migrates nothing, so a missing SQLite
// file is an error here.
//
// It asks rather than tries: a write rolled back would still advance the
// identity sequences and fire triggers, which is a change. On SQLite it
// asks the kernel (access(2), which also knows read-only mounts) about the
// file, its directory and its -wal and -shm files. On PostgreSQL it opens
// a connection of its own as a writer's would be (opts.ReadOnly ignored),
// and in a read-only transaction checks that the server is not a standby,
// that the session does not default to read-only transactions, that the
// role holds SELECT, INSERT, UPDATE and DELETE on every table fraisier
// writes (SELECT alone on tb_schema_migrations, which only a migration
// writes), and, when the schema is older than this fraisier, that it may
// migrate it. Row-level security policies are not looked at.
func CheckWritable(ctx context.Context, opts Options) error {
	switch {
	case opts.Path != "" && opts.URL == "":
		return sqliteWritable(opts.Path)
	case opts.URL != "" && opts.Path == "":
		return postgresWritable(ctx, opts.URL)
	}
	return errors.New("check state database: give exactly one of a SQLite path and a PostgreSQL URL")
}

func sqliteWritable(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("check state database %s: %w", path, err)
	}
	// The directory first: SQLite creates its journal files there, and
	// when both are unwritable the directory is the thing to fix.
	for i, p := range []string{filepath.Dir(path), path, path + "-wal", path + "-shm"} {
		err := unix.Access(p, unix.W_OK)
		if err == nil || (i >= 2 && errors.Is(err, unix.ENOENT)) {
			continue // a missing -wal or -shm is created in the directory
		}
		e := &WriteAccessError{What: fmt.Sprintf("%s is not writable by uid %d: %v", p, os.Geteuid(), err),
			Fix: "run fraisier as the user that owns " + p + ", or chown it to fraisier's user"}
		if errors.Is(err, unix.EROFS) {
			e.Fix = "its filesystem is read-only here: list " + filepath.Dir(path) + " in ReadWritePaths= of fraisier's unit (ProtectSystem=strict), or remount it read-write"
		}
		return e
	}
	return nil
}

// pgSession is what a writer's session would be, as the server says.
type pgSession struct {
	role, schema         string
	recovery, readOnly   bool
	schemaVersion, known int
	canCreate            bool
}

func postgresWritable(ctx context.Context, rawURL string) error {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return errors.New("check state database: invalid PostgreSQL URL") // pgx's message can quote the password
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "fraisier"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("check state database %s: connect: %w", redactURL(rawURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Read only whatever the session's default: nothing here may write.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("check state database %s: %w", redactURL(rawURL), err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	s, tables, err := readPGSession(ctx, tx)
	if err != nil {
		return fmt.Errorf("check state database %s: %w", redactURL(rawURL), err)
	}
	return s.verdict(tables)
}

// pgTable is one of fraisier's tables and what the role may do to it.
type pgTable struct {
	name, owner string
	view        bool
	// missing are the privileges the role lacks on it; owns tells whether
	// it may alter it (a migration does).
	missing []string
	owns    bool
}

func readPGSession(ctx context.Context, tx pgx.Tx) (pgSession, []pgTable, error) {
	var (
		s             pgSession
		ns            *uint32
		hasMigrations bool
	)
	// The schema is where the store's unqualified names resolve: the one
	// holding tb_schema_migrations, or, before any migration, the one a
	// migration would create it in.
	err := tx.QueryRow(ctx, `WITH n AS (SELECT COALESCE(
			(SELECT relnamespace FROM pg_class WHERE oid = to_regclass('tb_schema_migrations')),
			(SELECT oid FROM pg_namespace WHERE nspname = current_schema())) AS oid)
		SELECT current_user, pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on',
			n.oid, COALESCE(nsp.nspname, ''), COALESCE(has_schema_privilege(n.oid, 'CREATE'), false),
			to_regclass('tb_schema_migrations') IS NOT NULL
		FROM n LEFT JOIN pg_namespace nsp ON nsp.oid = n.oid`).Scan(&s.role, &s.recovery, &s.readOnly, &ns, &s.schema, &s.canCreate, &hasMigrations)
	if err != nil {
		return s, nil, fmt.Errorf("read the session's settings: %w", err)
	}
	if ns == nil {
		return s, nil, errors.New("no schema to create fraisier's tables in: the role's search_path names none that exists")
	}
	ms, err := loadMigrations(postgresDialect.migrations)
	if err != nil {
		return s, nil, err
	}
	s.known = len(ms)
	if hasMigrations {
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM tb_schema_migrations").Scan(&s.schemaVersion); err != nil {
			return s, nil, fmt.Errorf("read schema version: %w", err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT c.relname, pg_get_userbyid(c.relowner), c.relkind = 'v',
		array_remove(ARRAY[
			CASE WHEN NOT has_table_privilege(c.oid, 'SELECT') THEN 'SELECT' END,
			CASE WHEN w AND NOT has_table_privilege(c.oid, 'INSERT') THEN 'INSERT' END,
			CASE WHEN w AND NOT has_table_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END,
			CASE WHEN w AND NOT has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END], NULL),
		pg_has_role(c.relowner, 'USAGE')
		FROM pg_class c, LATERAL (SELECT c.relkind <> 'v' AND c.relname <> 'tb_schema_migrations' AS w) written
		WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v')
		AND (c.relname LIKE 'tb\_%' OR c.relname LIKE 'v\_%')
		ORDER BY c.relname`, *ns)
	if err != nil {
		return s, nil, fmt.Errorf("read privileges on fraisier's tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgTable, error) {
		var t pgTable
		err := r.Scan(&t.name, &t.owner, &t.view, &t.missing, &t.owns)
		return t, err
	})
	if err != nil {
		return s, nil, fmt.Errorf("read privileges on fraisier's tables: %w", err)
	}
	return s, tables, nil
}

// verdict is the first reason, in the order a fix would go, that keeps the
// role from writing, or nil.
func (s pgSession) verdict(tables []pgTable) error {
	role := quoteIdent(s.role)
	switch {
	case s.recovery:
		return &WriteAccessError{What: "the server is a standby (in recovery): it takes no writes",
			Fix: "point state.url at the primary"}
	case s.readOnly:
		return &WriteAccessError{What: "role " + s.role + "'s sessions default to read-only transactions (default_transaction_read_only is on)",
			Fix: "ALTER ROLE " + role + " SET default_transaction_read_only = off, or turn it off where it is set on (ALTER DATABASE, postgresql.conf, state.url's options)"}
	}
	var missing, missingOwners, notOwned, owners []string
	privs := map[string]bool{}
	for _, t := range tables {
		if len(t.missing) > 0 {
			missing = append(missing, t.name)
			missingOwners = addUnique(missingOwners, t.owner)
			for _, p := range t.missing {
				privs[p] = true
			}
		}
		if !t.owns && !t.view {
			notOwned = append(notOwned, t.name)
			owners = addUnique(owners, t.owner)
		}
	}
	if len(missing) > 0 {
		var ps []string
		for _, p := range []string{"SELECT", "INSERT", "UPDATE", "DELETE"} {
			if privs[p] {
				ps = append(ps, p)
			}
		}
		return &WriteAccessError{
			What: fmt.Sprintf("role %s lacks %s on %s in schema %s", s.role, strings.Join(ps, ", "), listSome(missing, 3), s.schema),
			Fix: fmt.Sprintf("as the tables' owner (%s): GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s",
				strings.Join(missingOwners, ", "), quoteIdent(s.schema), role)}
	}
	if s.schemaVersion >= s.known {
		return nil
	}
	// A migration creates tables, and adds indexes and columns to tables,
	// which takes their owner.
	switch {
	case !s.canCreate:
		return &WriteAccessError{
			What: fmt.Sprintf("the schema needs migrating from version %d to %d, and role %s may not CREATE in schema %s", s.schemaVersion, s.known, s.role, s.schema),
			Fix:  fmt.Sprintf("GRANT CREATE ON SCHEMA %s TO %s, or run one fraisier command that writes (deploy, serve) as a role that may", quoteIdent(s.schema), role)}
	case len(notOwned) > 0:
		return &WriteAccessError{
			What: fmt.Sprintf("the schema needs migrating from version %d to %d, and role %s does not own %s", s.schemaVersion, s.known, s.role, listSome(notOwned, 3)),
			Fix:  fmt.Sprintf("run one fraisier command that writes (deploy, serve) as %s, the tables' owner: it migrates them", strings.Join(owners, ", "))}
	}
	return nil
}

func addUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// listSome names the first n of names and counts the rest.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more tables", strings.Join(names[:n], ", "), len(names)-n)
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// quoteIdent is name as a SQL identifier, quoted only when it must be.
func quoteIdent(name string) string {
	if plainIdent.MatchString(name) {
		return name
	}
	return pgx.Identifier{name}.Sanitize()
}
