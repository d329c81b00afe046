package grow

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

const dayMS = 24 * 60 * 60 * 1000

// Populate fills db with a year of synthetic history ending at db's clock:
// deployments over ~10 fraises × 3 environments, mostly succeeded, and
// webhook events, most of them linked to the webhook-triggered
// deployments. Rows already in db are kept. The rows go in, in one
// transaction, with the secondary indexes dropped and built again after;
// the targets' state and the statistics are then derived from them by
// store.RebuildStats, in a second transaction.
func Populate(ctx context.Context, db *store.DB, deployments, webhooks int, seed int64) error {
	if deployments < 0 || webhooks < 0 {
		return fmt.Errorf("populate: negative counts %d, %d", deployments, webhooks)
	}
	now := time.Now
	if db.Options().Now != nil {
		now = db.Options().Now
	}
	g := &generator{
		rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		now: now().UnixMilli(),
		sha: map[store.Target]string{},
	}
	if err := g.insert(ctx, db, deployments, webhooks); err != nil {
		return fmt.Errorf("populate %d deployments and %d webhook events: %w", deployments, webhooks, err)
	}
	if err := db.RebuildStats(ctx); err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	return nil
}

// Cached returns the path of a SQLite state database in dir grown to the
// given history, making it unless a copy made by the same schema and
// generator is there already (its name carries their digest). Run from the
// repository's root.
func Cached(ctx context.Context, dir string, deployments, webhooks int) (string, error) {
	key, err := Key()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("state-%d-%d-%s.db", deployments, webhooks, key))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Printf("generating %s (%d deployments, %d webhook events)...\n", path, deployments, webhooks)
	start := time.Now()
	if err := File(ctx, path+".tmp", deployments, webhooks); err != nil {
		return "", err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return "", err
	}
	fmt.Printf("generated in %s\n", time.Since(start).Round(100*time.Millisecond))
	return path, nil
}

// File makes a SQLite state database at path, replacing any file there,
// holding the given history.
func File(ctx context.Context, path string, deployments, webhooks int) error {
	_ = os.Remove(path)
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		return err
	}
	if deployments > 0 || webhooks > 0 {
		if err := Populate(ctx, db, deployments, webhooks, 1); err != nil {
			db.Close()
			return fmt.Errorf("grow %s: %w", path, err)
		}
	}
	return db.Close()
}

// Key digests the store's SQLite schema and this generator, read from the
// repository root (the working directory of the benchmarks), for naming
// a kept database so that an edit of either makes it again.
func Key() (string, error) {
	migrations, err := filepath.Glob("internal/store/migrations/sqlite/*.sql")
	if err != nil || len(migrations) == 0 {
		return "", fmt.Errorf("find the store's migrations (run from the repository root): %v", err)
	}
	sources, err := filepath.Glob("bench/grow/*.go")
	if err != nil || len(sources) == 0 {
		return "", fmt.Errorf("find the generator's sources (run from the repository root): %v", err)
	}
	h := sha256.New()
	for _, f := range append(migrations, sources...) {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// insert adds the rows in one transaction on a connection of its own,
// set up for a bulk load (see backendOf).
func (g *generator) insert(ctx context.Context, db *store.DB, deployments, webhooks int) error {
	be, err := backendOf(db)
	if err != nil {
		return err
	}
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	for _, q := range []struct {
		query string
		dst   *int64
	}{
		{"SELECT COALESCE(MAX(id), 0) + 1 FROM tb_deployment", &g.nextD},
		{"SELECT COALESCE(MAX(id), 0) + 1 FROM tb_webhook_event", &g.nextW},
	} {
		if err := conn.QueryRowContext(ctx, q.query).Scan(q.dst); err != nil {
			return fmt.Errorf("read next id: %w", err)
		}
	}
	return be.session(ctx, conn, func(tx *sql.Tx) error {
		// Building an index once over all rows is several times faster
		// than maintaining it row by row.
		indexes, err := be.dropIndexes(ctx, tx)
		if err != nil {
			return err
		}
		g.begin(tx, be)
		if err := g.history(ctx, deployments, webhooks); err != nil {
			return err
		}
		if err := g.flush(ctx); err != nil {
			return err
		}
		return be.finish(ctx, tx, indexes)
	})
}
