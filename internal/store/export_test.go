package store

import (
	"context"
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"
)

// SetRewindFrames lowers the WAL size past which the background
// checkpointer makes the WAL rewind, so that a test sees it happen in
// seconds rather than after 256 MiB.
func SetRewindFrames(db *DB, frames int) { db.rewindFrames.Store(int64(frames)) }

// SetTruncateBytes lowers the WAL file size past which the checkpointer
// truncates it once idle.
func SetTruncateBytes(db *DB, n int64) { db.truncateBytes.Store(n) }

// EarlierPushQueries are the intake's lookups of earlier deliveries of
// pushes, for one commit and for the most a statement takes, rebound for
// db's dialect, with arguments.
func EarlierPushQueries(db *DB) map[string][]any {
	out := map[string][]any{}
	for k, n := range chunkSizes {
		if k != 0 && k != len(chunkSizes)-1 {
			continue
		}
		args := make([]any, n)
		for i := range args {
			args[i] = fmt.Sprintf("%040x", i+1)
		}
		out[db.q(db.d.earlierPushes[k])] = args
	}
	return out
}

// WithConnector returns o with wrap applied to the connector the store
// opens its connections with: a test sees every statement it runs.
func WithConnector(o Options, wrap func(driver.Connector) driver.Connector) Options {
	o.wrapConnector = wrap
	return o
}

// WriterCacheBytes is the page cache the writing connection of a SQLite
// database holds now, 0 before its first write.
func WriterCacheBytes(ctx context.Context, db *DB) (int64, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.writer == nil {
		return 0, nil
	}
	var n int64
	err := db.writer.Raw(func(dc any) error {
		used, _, err := dc.(sqlite.DBStatus).Status(sqlite.DBStatusCacheUsed, false)
		n = int64(used)
		return err
	})
	return n, err
}
