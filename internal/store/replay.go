package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// earlierPushStatements are the intake's lookups of the deliveries of a
// batch's pushes that were acted upon (accepted, or superseded by a newer
// push), by commit: one statement per chunk of commits, each commit a
// lookup in ix_webhook_event_pushed, which holds only those rows. hint
// follows the table's name (see dialect.earlierPushes).
func earlierPushStatements(hint string) [len(chunkSizes)]string {
	var out [len(chunkSizes)]string
	for k, n := range chunkSizes {
		out[k] = `SELECT sha, ref, repository, forge, event_type, id, delivery_id, outcome
	FROM tb_webhook_event` + hint + `
	WHERE outcome IN ('accepted', 'superseded') AND sha IN (` + strings.Repeat("?, ", n-1) + "?)"
	}
	return out
}

// pushKey is what makes two deliveries the same push.
type pushKey struct {
	forge, eventType, repository, ref, sha string
}

func pushKeyOf(e WebhookEvent) pushKey {
	return pushKey{e.Forge, e.EventType, e.Repository, e.Ref, e.SHA}
}

// markReplays turns every delivery of the batch that would queue a push
// already delivered, by an earlier delivery acted upon or by an earlier
// one of the batch, into an ignored one that queues nothing. A forge sends
// a push once, and again only under the same delivery id, which the
// duplicate check answers first; the same push under a new delivery id is
// a captured delivery sent again, and deploying it could take a target
// back to an older commit. The batch's items are copied before the first
// change: they are the caller's.
func (db *DB) markReplays(ctx context.Context, tx *sql.Tx, b *intakeBatch) error {
	var shas []any
	for i, it := range b.items {
		if !b.dup[i] && len(it.Requests) > 0 {
			shas = append(shas, it.Event.SHA)
		}
	}
	if len(shas) == 0 {
		return nil
	}
	earlier, err := db.earlierPushes(ctx, tx, shas)
	if err != nil {
		return fmt.Errorf("record webhooks: look for earlier deliveries of their pushes: %w", err)
	}
	copied := false
	for i, it := range b.items {
		if b.dup[i] || len(it.Requests) == 0 {
			continue
		}
		k := pushKeyOf(it.Event)
		e, ok := earlier[k]
		if !ok {
			// The first of the batch: a later one is its replay.
			earlier[k] = earlierPush{batch: true, delivery: it.Event.DeliveryID}
			continue
		}
		if !copied {
			b.items, copied = slices.Clone(b.items), true
		}
		b.items[i].Event.Outcome = OutcomeIgnored
		b.items[i].Event.Reason = replayReason(it, e.String())
		b.items[i].Requests = nil
		b.results[i].Replay = true
	}
	return nil
}

// earlierPush is the first delivery of a push acted upon: recorded, or
// earlier in the batch being recorded.
type earlierPush struct {
	batch             bool
	id                int64
	delivery, outcome string
}

func (e earlierPush) String() string {
	switch {
	case e.batch && e.delivery == "":
		return "a delivery recorded in the same batch"
	case e.batch:
		return "delivery " + e.delivery + ", recorded in the same batch"
	case e.delivery == "":
		return fmt.Sprintf("webhook event %d (%s)", e.id, e.outcome)
	}
	return fmt.Sprintf("webhook event %d (delivery %s, %s)", e.id, e.delivery, e.outcome)
}

// earlierPushes reads the first recorded delivery acted upon of every push
// of the given commits.
func (db *DB) earlierPushes(ctx context.Context, tx *sql.Tx, shas []any) (map[pushKey]earlierPush, error) {
	out := make(map[pushKey]earlierPush, len(shas))
	for len(shas) > 0 {
		n, k := chunk(len(shas))
		rows, err := db.queryTx(ctx, tx, db.d.earlierPushes[k], shas[:n]...)
		if err != nil {
			return nil, err
		}
		err = eachRow(rows, func() error {
			var (
				key pushKey
				e   earlierPush
			)
			if err := rows.Scan(&key.sha, &key.ref, &key.repository, &key.forge, &key.eventType, &e.id, &e.delivery, &e.outcome); err != nil {
				return err
			}
			if prev, ok := out[key]; !ok || e.id < prev.id {
				out[key] = e
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		shas = shas[n:]
	}
	return out, nil
}

// replayReason says why a replayed push queued nothing, and how to deploy
// its commit on purpose.
func replayReason(it Intake, earlier string) string {
	var how []string
	for _, r := range it.Requests {
		how = append(how, fmt.Sprintf("fraisier deploy %s %s --ref %s (or fraisier rollback %s %s)",
			r.Fraise, r.Environment, r.SHA, r.Fraise, r.Environment))
	}
	return fmt.Sprintf("replay: %s already delivered this push of %s at %s, and a push is delivered again only under its first delivery id: queued nothing. To deploy that commit again on purpose: %s",
		earlier, it.Event.Ref, short12(it.Event.SHA), strings.Join(how, "; "))
}
