package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// writerCacheKiB is the page cache of the SQLite connection that writes:
// enough for the interior pages of every table and index of a history of
// a million webhook events, and the leaves a burst appends to. The
// readers keep the DSN's larger cache, for the read commands' scans.
const writerCacheKiB = 4096

// readerMaxIdle is how long a SQLite reader stays open unused.
const readerMaxIdle = 10 * time.Second

// beginWrite begins a write transaction. On SQLite every write
// transaction of the process runs on one connection, db.writer: on any
// pooled connection, each would fill that connection's page cache with
// the pages it touched, and drop it at the next transaction another
// connection committed, so that a busy server held a page cache per
// connection, most of it stale. The caller holds wmu.
func (db *DB) beginWrite(ctx context.Context) (*sql.Tx, error) {
	if db.wmu == nil {
		return db.sql.BeginTx(ctx, db.d.txOptions)
	}
	for attempt := 0; ; attempt++ {
		if db.writer == nil {
			w, err := db.openWriter(ctx)
			if err != nil {
				return nil, err
			}
			db.writer = w
		}
		tx, err := db.writer.BeginTx(ctx, db.d.txOptions)
		if err == nil || attempt > 0 || !(errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone)) {
			return tx, err
		}
		// A connection that went bad is replaced, once.
		db.closeWriter()
	}
}

func (db *DB) openWriter(ctx context.Context) (*sql.Conn, error) {
	w, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", writerCacheKiB)); err != nil {
		w.Close()
		return nil, fmt.Errorf("set up the writing connection: %w", err)
	}
	return w, nil
}

// closeWriter closes the writing connection; the next write opens another.
func (db *DB) closeWriter() {
	if db.writer != nil {
		_ = db.writer.Close()
		db.writer = nil
	}
}

// releaseMemory gives back the writing connection's page cache, once a
// server has been idle a while: the next burst reads again what it needs.
func (db *DB) releaseMemory(ctx context.Context) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.writer == nil {
		return
	}
	// An error leaves the cache as it is, bounded anyway.
	_, _ = db.writer.ExecContext(ctx, "PRAGMA shrink_memory")
}
