package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the channel every write that queues work or changes a
// rollout notifies (PostgreSQL), and Listen listens on.
const notifyChannel = "fraisier_queue"

// The reconnection backoff of Listen.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// Listen calls wake whenever another node (or this one) queued work or
// changed a rollout, until ctx ends. On PostgreSQL it listens on a
// connection of its own, opened again with a backoff (100 ms doubling to
// 5 s) whenever it is lost, and calls wake once after each (re)connection
// too, since a notification sent while it was away is lost. On SQLite it
// returns nil at once: one process writes the database, and its runner
// wakes itself. It returns nil when ctx ends; an error only for a URL it
// cannot use.
func (db *DB) Listen(ctx context.Context, wake func()) error {
	if db.d != postgresDialect {
		return nil
	}
	cfg, err := pgx.ParseConfig(db.opts.URL)
	if err != nil {
		// pgx's message can quote the URL, password included.
		return errors.New("listen: invalid PostgreSQL URL")
	}
	cfg.RuntimeParams["application_name"] = "fraisier listen"
	backoff := listenBackoffMin
	for ctx.Err() == nil {
		if listened := listenOnce(ctx, cfg, wake); listened {
			backoff = listenBackoffMin
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
	return nil
}

// listenOnce connects, listens, and calls wake until the connection or
// ctx ends; listened reports whether it got as far as listening.
func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, wake func()) (listened bool) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		wake()
	}
}
