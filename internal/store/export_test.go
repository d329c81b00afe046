package store

// SetRewindFrames lowers the WAL size past which the background
// checkpointer makes the WAL rewind, so that a test sees it happen in
// seconds rather than after 256 MiB.
func SetRewindFrames(db *DB, frames int) { db.rewindFrames = frames }
