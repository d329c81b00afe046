package store_test

import (
	"context"
	"fmt"
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
// lets the WAL rewind: it stays bounded. (Without the second, writer-held
// pass a commit landed during every checkpoint, the WAL was never fully
// copied when a writer began, and it grew by tens of MiB a second.)
func TestCheckpointsBoundTheWALUnderSteadyWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fraisier.db")
	db, err := store.Open(ctx, store.Options{Path: path, CheckpointEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// 4 MiB of frames rather than 256: the same mechanism, seen in seconds.
	store.SetRewindFrames(db, 1024)
	const limit = 48 << 20
	var peak int64
	deadline := time.Now().Add(3 * time.Second)
	for b := 0; time.Now().Before(deadline); b++ {
		items := make([]store.Intake, 4)
		for i := range items {
			items[i] = store.Intake{Event: store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprintf("d-%d-%d", b, i),
				EventType: "push", Repository: "acme/app", Ref: "refs/heads/main", Sender: "s",
				Outcome: store.OutcomeIgnored, Reason: strings.Repeat("r", 500)}}
		}
		if _, err := db.RecordIntake(ctx, items); err != nil {
			t.Fatal(err)
		}
		if b%50 == 0 {
			if fi, err := os.Stat(path + "-wal"); err == nil {
				peak = max(peak, fi.Size())
			}
		}
	}
	if peak > limit {
		t.Fatalf("the WAL reached %.1f MiB under steady writes, want it bounded under %d MiB", float64(peak)/(1<<20), limit>>20)
	}
	t.Logf("WAL peak %.1f MiB", float64(peak)/(1<<20))
	// Idle, the checkpointer gives the disk back.
	store.SetTruncateBytes(db, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fi, err := os.Stat(path + "-wal")
		if err != nil || fi.Size() <= 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is still %.1f MiB after 5 s idle, want it truncated", float64(fi.Size())/(1<<20))
		}
	}
}
