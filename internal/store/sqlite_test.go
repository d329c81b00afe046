package store_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/store/storetest"
)

func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state", "fraisier.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, openSQLite)
}

// The conformance suite again with a checkpoint every few milliseconds,
// as fraisier serve runs it, so that checkpoints race every operation.
func TestSQLiteBackgroundCheckpoints(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.DB {
		db, err := store.Open(context.Background(), store.Options{
			Path: filepath.Join(t.TempDir(), "fraisier.db"), CheckpointEvery: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// With CheckpointEvery, a commit never checkpoints: the database file
// changes only when the background checkpointer runs.
func TestCheckpointsLeaveTheCommitPath(t *testing.T) {
	ctx := context.Background()
	fill := func(t *testing.T, every time.Duration) (path string, before int64) {
		path = filepath.Join(t.TempDir(), "fraisier.db")
		db, err := store.Open(ctx, store.Options{Path: path, CheckpointEvery: every})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		// The schema itself, and nothing more, reaches the file.
		if _, _, err := db.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		before = fileSize(t, path)
		// About 1,500 WAL pages: past the 1,000 at which a commit would
		// checkpoint by itself.
		for batch := range 60 {
			items := make([]store.Intake, 50)
			for i := range items {
				items[i] = store.Intake{Event: store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprintf("d-%d-%d", batch, i),
					EventType: "push", Repository: "acme/app", Ref: "refs/heads/main", Sender: strings.Repeat("s", 200),
					Outcome: store.OutcomeIgnored, Reason: strings.Repeat("r", 2000)}}
			}
			if _, err := db.RecordIntake(ctx, items); err != nil {
				t.Fatal(err)
			}
		}
		return path, before
	}
	t.Run("no commit checkpoints", func(t *testing.T) {
		path, before := fill(t, time.Hour)
		if after := fileSize(t, path); after != before {
			t.Fatalf("database file went from %d to %d bytes with no background checkpoint due: a commit checkpointed", before, after)
		}
	})
	t.Run("the checkpointer does", func(t *testing.T) {
		path, before := fill(t, 10*time.Millisecond)
		deadline := time.Now().Add(10 * time.Second)
		for fileSize(t, path) < before+1<<20 {
			if time.Now().After(deadline) {
				t.Fatalf("database file still %d bytes (was %d) 10 s after the writes: nothing checkpointed", fileSize(t, path), before)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Under a steady stream of commits the background checkpointer still
// lets the WAL rewind, which is what bounds it. (Without the second,
// writer-held pass a commit landed during every checkpoint, the WAL was
// never fully copied when a writer began, and it grew by tens of MiB a
// second.) The test counts rewinds in the WAL header rather than bounding
// the file's size: how far the WAL grows between two rewinds depends on
// how fast the disk syncs, which a shared machine does not promise.
func TestCheckpointsBoundTheWALUnderSteadyWrites(t *testing.T) {
	db, path := checkpointed(t)
	// 4 MiB of frames rather than 256: the same mechanism, seen in seconds.
	store.SetRewindFrames(db, 1024)
	const rewinds = 3
	var peak int64
	first := -1
	deadline := time.Now().Add(30 * time.Second)
	for b := 0; ; b++ {
		recordIgnored(t, db, b, 4, 500)
		if b%20 != 0 {
			continue
		}
		peak = max(peak, walSize(path))
		seq, ok := walCheckpointSeq(t, path)
		if ok && first < 0 {
			first = seq
		}
		if ok && seq-first >= rewinds {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL rewound %d times in 30 s of steady writes (peak %.1f MiB), want %d: it grows without end",
				max(seq-first, 0), float64(peak)/(1<<20), rewinds)
		}
	}
	t.Logf("the WAL rewound %d times; its peak was %.1f MiB", rewinds, float64(peak)/(1<<20))
	// Idle, the checkpointer gives the disk back.
	store.SetTruncateBytes(db, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); walSize(path) > 1<<20; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is still %.1f MiB after 5 s idle, want it truncated", float64(walSize(path))/(1<<20))
		}
	}
}

// walCheckpointSeq reads the checkpoint sequence number from the header
// of the WAL of the database at path: SQLite adds one each time the WAL
// rewinds. ok is false while the WAL has no header yet.
func walCheckpointSeq(t *testing.T, path string) (seq int, ok bool) {
	t.Helper()
	f, err := os.Open(path + "-wal")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(hdr[12:16])), true
}

// checkpointed opens a state database whose background checkpointer runs
// every 20 ms, and returns it with its path.
func checkpointed(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fraisier.db")
	db, err := store.Open(context.Background(), store.Options{Path: path, CheckpointEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// recordIgnored records batch b: n ignored deliveries in one transaction,
// each with a reason of size bytes, to grow the WAL.
func recordIgnored(t *testing.T, db *store.DB, b, n, size int) {
	t.Helper()
	items := make([]store.Intake, n)
	for i := range items {
		items[i] = store.Intake{Event: store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprintf("d-%d-%d", b, i),
			EventType: "push", Repository: "acme/app", Ref: "refs/heads/main", Sender: "s",
			Outcome: store.OutcomeIgnored, Reason: strings.Repeat("r", size)}}
	}
	if _, err := db.RecordIntake(context.Background(), items); err != nil {
		t.Fatal(err)
	}
}

// walSize is the size of the WAL file of the database at path, 0 if none.
func walSize(path string) int64 {
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// A reader holding a snapshot keeps the idle truncation from happening,
// and the truncation gives up quickly rather than holding the writers off
// while it waits: a commit in the middle is not stalled. Once the reader
// leaves, a later idle second truncates.
func TestCheckpointsIdleTruncationYieldsToReaders(t *testing.T) {
	ctx := context.Background()
	db, path := checkpointed(t)
	store.SetTruncateBytes(db, 1<<40) // not yet
	b := 0
	for ; walSize(path) < 2<<20; b++ {
		recordIgnored(t, db, b, 8, 2000)
	}
	// A reader's snapshot of the WAL as it ends: the checkpointer copies
	// every frame, finds the server idle and tries to truncate, which
	// must wait for the reader. A reader that begins on a fully copied
	// WAL reads the database file alone and would not hold the truncation
	// back: an earlier reader, holding the copying back, makes sure the
	// WAL has frames not yet copied when it begins.
	reader, err := store.Open(ctx, store.Options{Path: path, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })
	snapshot := func() *sql.Tx {
		t.Helper()
		tx, err := reader.SQL().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() })
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tb_webhook_event").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	earlier := snapshot()
	recordIgnored(t, db, b, 8, 2000)
	b++
	tx := snapshot()
	if err := earlier.Rollback(); err != nil {
		t.Fatal(err)
	}
	store.SetTruncateBytes(db, 1<<20)
	// Several attempts (one per 80 ms idle, each waiting up to 100 ms for
	// the reader), none of which may truncate.
	time.Sleep(300 * time.Millisecond)
	if s := walSize(path); s < 2<<20 {
		t.Fatalf("the WAL was truncated to %d bytes under a reader's snapshot", s)
	}
	// A commit now likely lands during an attempt, which holds the
	// writers off: it waits that attempt's 100 ms at most, far from a
	// stall of the busy timeout (5 s).
	start := time.Now()
	recordIgnored(t, db, b, 8, 2000)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a commit took %s while the checkpointer tried to truncate under a reader", d)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); walSize(path) > 1<<20; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is still %.1f MiB 5 s after the reader left, want it truncated", float64(walSize(path))/(1<<20))
		}
	}
}

// A server's writes all run on one connection, whose page cache stays
// within its bound however much is written, and which a second of idle
// time gives back: the memory of a server between bursts.
func TestWriterPageCacheIsBoundedAndGivenBackWhenIdle(t *testing.T) {
	ctx := context.Background()
	db, _ := checkpointed(t)
	// About 20 MiB of events, each batch's pages new to the cache.
	for b := 0; b < 80; b++ {
		recordIgnored(t, db, b, 64, 4000)
	}
	used, err := store.WriterCacheBytes(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if used < 1<<20 || used > 5<<20 {
		t.Fatalf("the writing connection holds %.1f MiB of pages after 20 MiB of writes, want 1 to 5", float64(used)/(1<<20))
	}
	deadline := time.Now().Add(5 * time.Second)
	for used > 256<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the writing connection still holds %.1f MiB of pages 5 s after the last write", float64(used)/(1<<20))
		}
		time.Sleep(50 * time.Millisecond)
		if used, err = store.WriterCacheBytes(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
}

// StepsChanged wakes a live log in this process at each step change: a
// channel taken before a change is closed by it, one taken after is not.
func TestStepsChangedFiresOnStepWrites(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "f", Environment: "e"}, Trigger: store.TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	var step int64
	writes := []struct {
		name  string
		write func() error
	}{
		{"StartStep", func() (err error) { step, err = db.StartStep(ctx, id, "install"); return err }},
		{"AppendStepOutput", func() error { return db.AppendStepOutput(ctx, step, []byte("line\n")) }},
		{"FinishStep", func() error { return db.FinishStep(ctx, step, store.StepSucceeded, nil, "") }},
		{"FinishDeployment", func() error {
			return db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
		}},
	}
	for _, w := range writes {
		changed := db.StepsChanged()
		select {
		case <-changed:
			t.Fatalf("before %s: the channel is already closed", w.name)
		default:
		}
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		select {
		case <-changed:
		default:
			t.Fatalf("%s did not close the channel taken before it", w.name)
		}
	}
}
