package store

// SetRewindFrames lowers the WAL size past which the background
// checkpointer makes the WAL rewind, so that a test sees it happen in
// seconds rather than after 256 MiB.
func SetRewindFrames(db *DB, frames int) { db.rewindFrames.Store(int64(frames)) }

// SetTruncateBytes lowers the WAL file size past which the checkpointer
// truncates it once idle.
func SetTruncateBytes(db *DB, n int64) { db.truncateBytes.Store(n) }
