package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"sync"
	"time"
)

// ServerCheckpointEvery is CheckpointEvery for a server: often enough that
// the WAL stays a few MiB under a burst of webhooks, rarely enough that
// an idle server does nothing measurable.
const ServerCheckpointEvery = 250 * time.Millisecond

// rewindFrames is the WAL size, in frames (256 MiB of 4 KiB pages), past
// which the checkpointer makes sure the WAL rewinds.
const rewindFrames = 65536

// truncateBytes is the WAL file size past which the checkpointer
// truncates it once the server is idle, and idleTicks how many ticks
// with nothing committed make it idle.
const (
	truncateBytes = 16 << 20
	idleTicks     = 4
)

// startCheckpointer runs a PASSIVE checkpoint every interval until Close.
// PASSIVE never waits for readers or the writer: it copies what it can,
// and a reader holding an old snapshot only delays the rest to a later
// tick, as it would delay an automatic checkpoint. A tick with nothing new
// in the WAL costs a read of the WAL index.
func (db *DB) startCheckpointer(interval time.Duration) {
	db.rewindFrames.Store(rewindFrames)
	db.truncateBytes.Store(truncateBytes)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				db.checkpointAndRewind(ctx)
			}
		}
	}()
	db.stopCheckpoints = func() {
		cancel()
		wg.Wait()
	}
}

// checkpointAndRewind checkpoints the WAL, then lets the next commit
// rewind it. SQLite rewinds the WAL (and truncates it to
// journal_size_limit) only when a write transaction begins with every
// frame copied into the database file. Under a steady stream of commits a
// write transaction is nearly always open while a checkpoint runs; it
// began before the WAL was fully copied and commits after, so no writer
// ever begins on a fully copied WAL, and it grows without end. So the
// bulk of the copying runs beside the writers, then a second pass, with
// this process's writers held off (wmu), copies what they committed
// meanwhile (usually nothing or a few pages), so that the next writer
// begins on a fully copied WAL and rewinds it. Holding the
// writers off costs every delivery waiting meanwhile that pass's syncs,
// so it is done only once the WAL has grown past rewindFrames: under a
// sustained burst every ten seconds or so, and never on a server with idle
// moments, where a writer finds the WAL fully copied and rewinds it by
// itself. The WAL is thus bounded near rewindFrames.
func (db *DB) checkpointAndRewind(ctx context.Context) {
	// An error here (the database busy, the disk full) is not the
	// caller's: the next tick tries again, and the commits that grow the
	// WAL meanwhile report their own.
	frames, copied, err := db.Checkpoint(ctx)
	if err != nil || db.wmu == nil {
		return
	}
	if frames == copied && frames == db.lastFrames {
		db.idleTicks++
	} else {
		db.idleTicks = 0
	}
	db.lastFrames = frames
	if db.idleTicks == idleTicks {
		db.releaseMemory(ctx)
	}
	if db.idleTicks >= idleTicks && db.idleTicks%idleTicks == 0 {
		// Again every idle second: a reader may have kept the first
		// attempt from truncating.
		db.truncateIdle(ctx)
	}
	if int64(frames) < db.rewindFrames.Load() {
		return
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	_, _, _ = db.Checkpoint(ctx)
}

// truncateIdle gives back the disk a burst's WAL took: nothing has been
// committed for a while, so truncating (which blocks writers, and takes
// long for a large file) costs no one.
func (db *DB) truncateIdle(ctx context.Context) {
	fi, err := os.Stat(db.opts.Path + "-wal")
	if err != nil || fi.Size() <= db.truncateBytes.Load() {
		return
	}
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	// TRUNCATE waits for readers (a CLI command, an API request) to leave
	// the WAL, through the busy handler, while this holds the writers off:
	// on this connection it waits 100 ms at most, and a busy truncation
	// is left to a later idle second.
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 100"); err != nil {
		return
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMS)); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // not back into the pool with 100 ms
		}
	}()
	db.wmu.Lock()
	defer db.wmu.Unlock()
	_, _ = conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
}

// Checkpoint copies the WAL into the database file now, as far as readers
// allow (PASSIVE). It reports how many frames the WAL holds and how many of
// them are in the database file. On PostgreSQL it does nothing.
func (db *DB) Checkpoint(ctx context.Context) (walFrames, checkpointed int, err error) {
	if db.d != sqliteDialect {
		return 0, 0, nil
	}
	var busy int
	if err := db.sql.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walFrames, &checkpointed); err != nil {
		return 0, 0, fmt.Errorf("checkpoint the state database: %w", err)
	}
	return walFrames, checkpointed, nil
}
