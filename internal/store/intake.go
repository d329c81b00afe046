package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The statements of the intake's hot path, prepared once (see stmt).
const (
	eventInsertHead = `INSERT INTO tb_webhook_event
		(forge, delivery_id, event_type, repository, ref, sha, sender, outcome, reason, remote_addr, received_at)`
	eventInsertTail = `
		ON CONFLICT (forge, delivery_id) WHERE delivery_id <> '' DO NOTHING`
	eventCols      = 11
	linkInsertHead = `INSERT INTO tb_webhook_deployment (webhook_event_id, deployment_id, fraise)`
	linkInsertTail = `
		ON CONFLICT (webhook_event_id, deployment_id) DO NOTHING`
	linkCols          = 3
	sqlEventReplanned = `UPDATE tb_webhook_event SET outcome = ?, reason = ? WHERE id = ?`
)

// chunkSizes are the row counts of the multi-row INSERTs the intake keeps
// prepared: a batch's rows go in chunks of these sizes, largest first, so
// seven statement shapes serve every batch in at most a few statements,
// and no statement is prepared for one batch only.
var chunkSizes = [...]int{64, 32, 16, 8, 4, 2, 1}

var (
	// The event INSERTs return the delivery id with the row id: neither
	// SQLite nor PostgreSQL promises RETURNING rows in VALUES order, and a
	// row that conflicted with an earlier delivery returns nothing.
	eventInserts = multiRowStatements(eventInsertHead, eventCols, eventInsertTail+" RETURNING id, forge, delivery_id")
	linkInserts  = multiRowStatements(linkInsertHead, linkCols, linkInsertTail)
)

func multiRowStatements(head string, cols int, tail string) [len(chunkSizes)]string {
	var out [len(chunkSizes)]string
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	for k, n := range chunkSizes {
		out[k] = head + "\n\t\tVALUES " + strings.Repeat(row+", ", n-1) + row + tail
	}
	return out
}

// chunk is the largest of chunkSizes not over n (n > 0), and its index.
func chunk(n int) (size, k int) {
	for k, size := range chunkSizes {
		if size <= n {
			return size, k
		}
	}
	panic("chunk of no rows")
}

// intakeRef is one request of a batch: item i's request j.
type intakeRef struct{ item, req int }

// intakeBatch is RecordIntake's plan of one batch.
type intakeBatch struct {
	items   []Intake
	results []IntakeResult
	// dup marks a delivery seen before, in an earlier transaction or
	// earlier in this batch: it queues nothing and is answered as before.
	dup []bool
	// stands is, per target, the request of the batch that is queued: the
	// newest one. The others for that target are folded into it.
	stands map[Target]intakeRef
	// marks are the events whose waiting requests the batch replaced,
	// marked after every target is locked (see markWebhookSuperseded).
	marks []supersededMark
}

// plan decides, per target, which request of the batch stands.
func (b *intakeBatch) plan() {
	b.stands = make(map[Target]intakeRef, 1)
	for i, it := range b.items {
		if b.dup[i] {
			continue
		}
		for j, r := range it.Requests {
			b.stands[r.Target] = intakeRef{i, j}
		}
	}
}

// folded reports whether item i's request j was replaced by a newer
// request of the batch.
func (b *intakeBatch) folded(i, j int) bool {
	return b.stands[b.items[i].Requests[j].Target] != intakeRef{i, j}
}

// fate is the outcome and reason item i is recorded with under the plan:
// its own, unless every request it made was folded into a newer one, in
// which case it never queued anything and is superseded.
func (b *intakeBatch) fate(i int) (outcome Outcome, reason string) {
	it := b.items[i]
	if len(it.Requests) == 0 {
		return it.Event.Outcome, it.Event.Reason
	}
	var by []string
	for j, r := range it.Requests {
		s := b.stands[r.Target]
		if s.item == i {
			return it.Event.Outcome, it.Event.Reason
		}
		newer := b.items[s.item]
		d := "a newer delivery"
		if newer.Event.DeliveryID != "" {
			d = "delivery " + newer.Event.DeliveryID
		}
		d += " (commit " + short12(newer.Requests[s.req].SHA) + ")"
		if len(it.Requests) > 1 {
			d += " for " + it.Requests[j].Target.String()
		}
		by = append(by, d)
	}
	return OutcomeSuperseded, "replaced before it was queued by " + strings.Join(by, ", ") + ", newer in the same recording batch"
}

// recordIntake is RecordIntake's transaction. A busy server hands it many
// deliveries at once, often several for one target. Per target only the
// newest request of the batch is queued; the older ones never waited
// durably, so they are not deployments of their own: their deliveries
// are recorded superseded and linked to the deployment that replaced
// them. Outcomes are decided before the events are inserted, so a burst
// costs a few multi-row statements and, per target, one deployment row.
func (db *DB) recordIntake(ctx context.Context, tx *sql.Tx, items []Intake) ([]IntakeResult, error) {
	now := db.nowMS()
	b := newIntakeBatch(items)
	if err := db.markReplays(ctx, tx, b); err != nil {
		return nil, err
	}
	b.plan()
	replan, err := db.insertEvents(ctx, tx, b, now)
	if err != nil {
		return nil, err
	}
	if replan {
		if err := db.replan(ctx, tx, b); err != nil {
			return nil, err
		}
	}
	targets, queued, err := db.queueStanding(ctx, tx, b, now)
	if err != nil {
		return nil, err
	}
	if err := db.applyChecks(ctx, tx, b, now); err != nil {
		return nil, err
	}
	if err := db.recordOrder(ctx, tx, b, targets, queued); err != nil {
		return nil, err
	}
	if err := db.linkEvents(ctx, tx, b, queued); err != nil {
		return nil, err
	}
	// Last, so that a delivery repeated within the batch is answered with
	// what its first copy queued.
	for i, it := range b.items {
		if !b.dup[i] {
			continue
		}
		r, err := db.duplicateIntake(ctx, tx, it.Event)
		if err != nil {
			return nil, fmt.Errorf("record webhook %s %s: %w", it.Event.Forge, it.Event.DeliveryID, err)
		}
		b.results[i] = r
	}
	return b.results, nil
}

// newIntakeBatch is the batch of items, a delivery seen twice in it
// marked as a redelivery of the first.
func newIntakeBatch(items []Intake) *intakeBatch {
	b := &intakeBatch{items: items, results: make([]IntakeResult, len(items)), dup: make([]bool, len(items))}
	seen := make(map[[2]string]bool, len(items))
	for i, it := range items {
		if it.Event.DeliveryID == "" {
			continue
		}
		k := [2]string{it.Event.Forge, it.Event.DeliveryID}
		b.dup[i] = seen[k]
		seen[k] = true
	}
	return b
}

// replan plans the batch again after insertEvents found that a request
// planned to stand came from a delivery recorded before: it queues
// nothing, and the requests folded into it stand or fold into another.
// Rare; only the events whose fate changed are updated.
// fate is a delivery's recorded outcome and its reason.
type fate struct {
	outcome Outcome
	reason  string
}

func (db *DB) replan(ctx context.Context, tx *sql.Tx, b *intakeBatch) error {
	before := make([]fate, len(b.items))
	for i := range b.items {
		if !b.dup[i] {
			before[i] = fate{b.results[i].Event.Outcome, b.results[i].Event.Reason}
		}
	}
	b.plan()
	for i := range b.items {
		if b.dup[i] {
			continue
		}
		e := &b.results[i].Event
		if e.Outcome, e.Reason = b.fate(i); (fate{e.Outcome, e.Reason}) == before[i] {
			continue
		}
		upd, err := db.stmt(ctx, tx, sqlEventReplanned)
		if err != nil {
			return err
		}
		if _, err := upd.ExecContext(ctx, e.Outcome, e.Reason, e.ID); err != nil {
			return fmt.Errorf("record webhook %s %s: %w", e.Forge, e.DeliveryID, err)
		}
	}
	return nil
}

// queueStanding queues, target by target, the request of the batch that
// stands, then marks the events whose waiting requests it replaced. It
// returns the targets in the order it locked them.
func (db *DB) queueStanding(ctx context.Context, tx *sql.Tx, b *intakeBatch, now int64) ([]Target, map[Target]Queued, error) {
	targets := make([]Target, 0, len(b.stands))
	for t := range b.stands {
		targets = append(targets, t)
	}
	// A fixed order: two PostgreSQL nodes queueing for the same targets
	// lock them in the same order and cannot deadlock. The targets whose
	// held pushes the batch's check results may release are locked in
	// the same pass.
	sort.Slice(targets, func(a, c int) bool { return targets[a].String() < targets[c].String() })
	locks := append(checkTargets(b), targets...)
	sort.Slice(locks, func(a, c int) bool { return locks[a].String() < locks[c].String() })
	queued := make(map[Target]Queued, len(targets))
	for _, t := range locks {
		if _, done := queued[t]; done {
			continue
		}
		if _, ok := b.stands[t]; !ok {
			if err := db.lockTarget(ctx, tx, t); err != nil {
				return nil, nil, err
			}
			continue
		}
		q, err := db.queueTarget(ctx, tx, t, b, now)
		if err != nil {
			return nil, nil, fmt.Errorf("queue %s: %w", t, err)
		}
		queued[t] = q
	}
	if err := db.markSuperseded(ctx, tx, b.marks); err != nil {
		return nil, nil, err
	}
	return targets, queued, nil
}

// linkEvents gives each new delivery of the batch what its requests
// queued, or were folded into, and links its event to those deployments.
func (db *DB) linkEvents(ctx context.Context, tx *sql.Tx, b *intakeBatch, queued map[Target]Queued) error {
	var links []any
	for i, it := range b.items {
		if b.dup[i] || len(it.Requests) == 0 {
			continue
		}
		res := &b.results[i]
		res.Queued = make([]Queued, len(it.Requests))
		for j, r := range it.Requests {
			q := queued[r.Target]
			if b.folded(i, j) {
				q.Superseded, q.Replaced, q.Folded = 0, 0, true
			}
			res.Queued[j] = q
			if q.DeploymentID != 0 && !slices.Contains(res.Event.DeploymentIDs, q.DeploymentID) {
				res.Event.DeploymentIDs = append(res.Event.DeploymentIDs, q.DeploymentID)
				links = append(links, res.Event.ID, q.DeploymentID, r.Fraise)
			}
		}
	}
	if err := db.insertRows(ctx, tx, &linkInserts, linkCols, links); err != nil {
		return fmt.Errorf("link webhook events: %w", err)
	}
	return nil
}

// insertEvents inserts the batch's new deliveries with the outcome the
// plan gives them, and marks those that conflict with a delivery recorded
// before as duplicates. replan reports whether one of those carried a
// request the plan had standing.
func (db *DB) insertEvents(ctx context.Context, tx *sql.Tx, b *intakeBatch, now int64) (replan bool, err error) {
	keyed := make([]int, 0, len(b.items))
	for i, it := range b.items {
		if b.dup[i] {
			continue
		}
		e := &b.results[i].Event
		*e = it.Event
		if e.ReceivedAt.IsZero() {
			e.ReceivedAt = fromMS(now)
		}
		e.ReceivedAt = fromMS(e.ReceivedAt.UnixMilli())
		e.Outcome, e.Reason = b.fate(i)
		if e.DeliveryID != "" {
			keyed = append(keyed, i)
			continue
		}
		// Without a delivery id a row cannot be told from another in a
		// multi-row RETURNING; such deliveries (refused ones, mostly) are
		// rare enough to insert alone.
		ins, err := db.stmt(ctx, tx, eventInserts[len(chunkSizes)-1])
		if err != nil {
			return false, err
		}
		var forge, delivery string
		if err := ins.QueryRowContext(ctx, eventArgs(nil, e)...).Scan(&e.ID, &forge, &delivery); err != nil {
			return false, fmt.Errorf("record webhook %s: insert: %w", e.Forge, err)
		}
	}
	args := make([]any, 0, eventCols*min(len(keyed), chunkSizes[0]))
	row := make(map[[2]string]int, min(len(keyed), chunkSizes[0]))
	for len(keyed) > 0 {
		n, k := chunk(len(keyed))
		part := keyed[:n]
		keyed = keyed[n:]
		if args, err = db.insertKeyed(ctx, tx, b, part, eventInserts[k], args[:0], row); err != nil {
			return false, err
		}
		// A delivery the insert returned nothing for was recorded before.
		for _, i := range part {
			if b.results[i].Event.ID != 0 {
				continue
			}
			b.dup[i] = true
			b.results[i] = IntakeResult{}
			for j := range b.items[i].Requests {
				if !b.folded(i, j) {
					replan = true
				}
			}
		}
	}
	return replan, nil
}

// insertKeyed inserts the events of part, deliveries with an id, in one
// statement, and gives each inserted event its row id. args and row are
// buffers reused across calls; args is returned for the next.
func (db *DB) insertKeyed(ctx context.Context, tx *sql.Tx, b *intakeBatch, part []int, stmt string, args []any, row map[[2]string]int) ([]any, error) {
	clear(row)
	for _, i := range part {
		e := &b.results[i].Event
		args = eventArgs(args, e)
		row[[2]string{e.Forge, e.DeliveryID}] = i
	}
	ins, err := db.stmt(ctx, tx, stmt)
	if err != nil {
		return args, err
	}
	rows, err := ins.QueryContext(ctx, args...)
	if err != nil {
		return args, fmt.Errorf("record webhooks: insert: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			id  int64
			key [2]string
		)
		if err := rows.Scan(&id, &key[0], &key[1]); err != nil {
			return err
		}
		i, ok := row[key]
		if !ok {
			return fmt.Errorf("insert returned delivery %s %s, not one of the batch", key[0], key[1])
		}
		b.results[i].Event.ID = id
		return nil
	})
	if err != nil {
		return args, fmt.Errorf("record webhooks: insert: %w", err)
	}
	return args, nil
}

func eventArgs(args []any, e *WebhookEvent) []any {
	return append(args, e.Forge, e.DeliveryID, e.EventType, e.Repository, e.Ref, e.SHA, e.Sender,
		e.Outcome, e.Reason, e.RemoteAddr, e.ReceivedAt.UnixMilli())
}

// insertRows runs the multi-row statements of stmts over args, cols
// values a row.
func (db *DB) insertRows(ctx context.Context, tx *sql.Tx, stmts *[len(chunkSizes)]string, cols int, args []any) error {
	for len(args) > 0 {
		n, k := chunk(len(args) / cols)
		ins, err := db.stmt(ctx, tx, stmts[k])
		if err != nil {
			return err
		}
		if _, err := ins.ExecContext(ctx, args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	return nil
}

// queueTarget queues the request of the batch that stands for t.
func (db *DB) queueTarget(ctx context.Context, tx *sql.Tx, t Target, b *intakeBatch, now int64) (Queued, error) {
	ref := b.stands[t]
	r := b.items[ref.item].Requests[ref.req]
	sha, err := normSHA(r.SHA)
	if err != nil {
		return Queued{}, err
	}
	if r.Hold {
		return db.holdRequest(ctx, tx, newerRequest{QueueRequest: r, sha: sha, hook: b.results[ref.item].Event.ID}, b.items[ref.item].Event, now, &b.marks)
	}
	return db.queueRequest(ctx, tx, newerRequest{QueueRequest: r, sha: sha, hook: b.results[ref.item].Event.ID}, now, false, &b.marks)
}

// recordOrder stamps, for each request of the batch that stands and
// lists targets to run after, the deployments that carry its delivery's
// requests for those targets: the deployment waits for them (see
// SettleQueue). They may carry a newer delivery's commit, folded or taken
// over: that is what deploys there next. A target the delivery queued
// nothing for is not waited for.
func (db *DB) recordOrder(ctx context.Context, tx *sql.Tx, b *intakeBatch, targets []Target, queued map[Target]Queued) error {
	for _, t := range targets {
		ref := b.stands[t]
		it := b.items[ref.item]
		r := it.Requests[ref.req]
		for _, u := range r.After {
			after := queued[u].DeploymentID
			if after == 0 || queued[t].DeploymentID == 0 || after == queued[t].DeploymentID ||
				!slices.ContainsFunc(it.Requests, func(o QueueRequest) bool { return o.Target == u }) {
				continue
			}
			ins, err := db.stmt(ctx, tx, sqlOrderInsert)
			if err != nil {
				return err
			}
			if _, err := ins.ExecContext(ctx, queued[t].DeploymentID, b.results[ref.item].Event.ID, after); err != nil {
				return fmt.Errorf("order %s after %s: %w", t, u, err)
			}
		}
	}
	return nil
}

// duplicateIntake answers a delivery seen before: the earlier event and
// the deployments it led to or was folded into. The lookup repeats the
// unique index's condition (a delivery id that is not empty), without
// which neither SQLite nor PostgreSQL can use that partial index.
func (db *DB) duplicateIntake(ctx context.Context, tx *sql.Tx, e WebhookEvent) (IntakeResult, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, db.q("SELECT id FROM tb_webhook_event WHERE forge = ? AND delivery_id = ? AND delivery_id <> ''"),
		e.Forge, e.DeliveryID).Scan(&id); err != nil {
		return IntakeResult{}, fmt.Errorf("read earlier delivery: %w", err)
	}
	evs, err := db.queryWebhooks(ctx, tx, " WHERE id = ?", []any{id})
	if err != nil {
		return IntakeResult{}, err
	}
	if len(evs) != 1 {
		return IntakeResult{}, fmt.Errorf("webhook event %d vanished", id)
	}
	res := IntakeResult{Event: evs[0], Duplicate: true}
	for _, did := range res.Event.DeploymentIDs {
		q := Queued{DeploymentID: did}
		var hook sql.NullInt64
		if err := tx.QueryRowContext(ctx, db.q("SELECT fraise, environment, webhook_event_id FROM tb_deployment WHERE id = ?"), did).
			Scan(&q.Fraise, &q.Environment, &hook); err != nil {
			return IntakeResult{}, fmt.Errorf("read deployment %d: %w", did, err)
		}
		// Linked to a deployment another delivery queued: folded into it.
		q.Folded = !hook.Valid || hook.Int64 != id
		res.Queued = append(res.Queued, q)
	}
	rows, err := db.queryTx(ctx, tx, "SELECT id, fraise, environment FROM tb_rollout WHERE webhook_event_id = ? ORDER BY id", id)
	if err != nil {
		return IntakeResult{}, fmt.Errorf("read the rollouts of webhook event %d: %w", id, err)
	}
	err = eachRow(rows, func() error {
		var q Queued
		err := rows.Scan(&q.RolloutID, &q.Fraise, &q.Environment)
		res.Queued = append(res.Queued, q)
		return err
	})
	if err != nil {
		return IntakeResult{}, fmt.Errorf("read the rollouts of webhook event %d: %w", id, err)
	}
	return res, nil
}
