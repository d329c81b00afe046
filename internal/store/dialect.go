package store

import (
	"embed"
	"io/fs"
	"strconv"
	"strings"
)

//go:embed migrations
var migrationsFS embed.FS

// dialect is everything that differs between SQLite and PostgreSQL. The
// query code is shared: it is written with ? placeholders, stores times as
// integer unix milliseconds on both backends, and uses only SQL both accept
// (INSERT ... ON CONFLICT, RETURNING, partial indexes, window functions).
type dialect struct {
	name       string
	migrations fs.FS
	// rebind turns ? placeholders into the backend's own.
	rebind func(string) string
	// forUpdate is appended to a SELECT whose row the transaction then
	// updates. SQLite needs nothing: BEGIN IMMEDIATE already holds the only
	// write lock.
	forUpdate string
	// migrationLock, when set, runs first in the migration transaction so
	// that two processes opening a fresh database do not both migrate it.
	migrationLock string
	// serializeWrites makes write transactions of one DB wait on a mutex.
	serializeWrites bool
	// deferForeignKeys makes the transaction check foreign keys at commit,
	// or when checkForeignKeys runs.
	deferForeignKeys, checkForeignKeys string
	// bulkInsert starts the multi-row INSERTs of Populate and RebuildStats.
	bulkInsert string
	// afterBulkInsert runs after Populate has inserted rows with explicit ids.
	afterBulkInsert []string
	// bulkSession are pairs of statements setting up, and restoring, the
	// connection for Populate's bulk insert.
	bulkSession [][2]string
	// listIndexes lists (name, creating statement) of the secondary indexes
	// of the tables Populate fills.
	listIndexes string
	// earlierPushes are the intake's replay lookups. SQLite, without
	// statistics (nothing runs ANALYZE), takes a list of commits for many
	// rows and would read every accepted event through
	// ix_webhook_event_outcome instead: its statements name the index,
	// which makes SQLite use it or fail. PostgreSQL plans from the
	// statistics autovacuum keeps.
	earlierPushes [len(chunkSizes)]string
}

var sqliteDialect = &dialect{
	name:            "sqlite",
	migrations:      fsSub(migrationsFS, "migrations/sqlite"),
	rebind:          func(q string) string { return q },
	serializeWrites: true,
	// Any failure aborts the whole transaction anyway, and with ROLLBACK
	// instead of the default ABORT SQLite keeps no statement journal: a
	// copy of every page a multi-row INSERT touches.
	bulkInsert: "INSERT OR ROLLBACK INTO ",
	bulkSession: [][2]string{
		// Populate's rows are consistent by construction; checking every
		// reference costs more than inserting the row.
		{"PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"},
		// A transaction bigger than the page cache spills, writing pages to
		// the WAL again and again.
		{"PRAGMA cache_size = -1048576", "PRAGMA cache_size = -16384"},
		// Lets CREATE INDEX sort on more than one core, in memory.
		{"PRAGMA threads = 4", "PRAGMA threads = 0"},
		{"PRAGMA temp_store = MEMORY", "PRAGMA temp_store = DEFAULT"},
	},
	listIndexes: `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('tb_deployment', 'tb_webhook_event', 'tb_webhook_deployment')`,
	earlierPushes: earlierPushStatements(" INDEXED BY ix_webhook_event_pushed"),
}

// rebindDollar numbers ? placeholders as $1, $2, ... outside string literals.
func rebindDollar(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n, inString := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case c == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// placeholders is "?, ?, ?" with n marks, for IN lists and VALUES rows.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
