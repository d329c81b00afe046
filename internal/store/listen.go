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

// Topics say what a notification is about, so that each node wakes only
// what it concerns: waking every node at every host step would cost a
// rollout a pass per node per step.
const (
	// TopicRollout: a rollout was queued, started, stopped or ended, or
	// resumed by hand; every node's rollout loop looks again.
	TopicRollout = "rollout"
	// TopicAll is what Listen passes after a (re)connection: anything may
	// have happened meanwhile.
	TopicAll = ""
)

// TopicNode is the topic of deployments queued for node to run; "" is any
// node's work (a deployment no node is named for), which every runner
// reads, and a deployment that ended, which requests on any node may
// wait for.
func TopicNode(node string) string { return "node:" + node }

// Listen calls wake with the topic whenever another node (or this one)
// queued work or changed a rollout, until ctx ends. On PostgreSQL it
// listens on a connection of its own, opened again with a backoff (100 ms
// doubling to 5 s) whenever it is lost, and calls wake(TopicAll) after
// each (re)connection, since a notification sent while it was away is
// lost. On SQLite it returns nil at once: one process writes the
// database, and its runner wakes itself. It returns nil when ctx ends; an
// error only for a URL it cannot use.
func (db *DB) Listen(ctx context.Context, wake func(topic string)) error {
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
func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, wake func(topic string)) (listened bool) {
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
	wake(TopicAll)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		wake(n.Payload)
	}
}
