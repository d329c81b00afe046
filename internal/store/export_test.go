package store

import (
	"database/sql/driver"
	"fmt"
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
