package store

import (
	"database/sql"
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
	// skipLocked is forUpdate for a row another node may be working on
	// (a rollout): the transaction passes it by rather than waiting.
	skipLocked string
	// notify, run in a transaction that queues work or changes a rollout,
	// wakes every node's Listen once it commits. SQLite needs none: one
	// process writes it, and its runner wakes itself.
	notify string
	// lockRollouts serialises, per environment, queueing a rollout and
	// ending one (which starts the one queued behind it), with the
	// environment ("fraise/env") as its argument. SQLite needs none.
	lockRollouts string
	// migrationLock, when set, runs first in the migration transaction so
	// that two processes opening a fresh database do not both migrate it.
	migrationLock string
	// serializeWrites makes write transactions of one DB wait on a mutex.
	serializeWrites bool
	// txOptions begin every write transaction.
	txOptions *sql.TxOptions
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
	earlierPushes:   earlierPushStatements(" INDEXED BY ix_webhook_event_pushed"),
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
