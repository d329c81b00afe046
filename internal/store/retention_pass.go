package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"
)

// protectedByTarget are protectedDeployments' lookups for one target
// (fraise, environment); the last also takes how many releases.
var protectedByTarget = [...]string{
	"SELECT MAX(id) FROM tb_deployment WHERE fraise = ? AND environment = ? AND status = 'succeeded'",
	"SELECT deployment_id FROM tb_release WHERE fraise = ? AND environment = ? AND state = 'current'",
	"SELECT deployment_id FROM tb_release WHERE fraise = ? AND environment = ? ORDER BY created_at DESC, id DESC LIMIT ?",
}

// protectedDeployments are the finished deployments Retention keeps
// whatever their age: those a target's state names, each target's newest
// succeeded one, and those that made its current release or one of its
// newest keepReleases. Read once per pass, a few index lookups per target.
func (db *DB) protectedDeployments(ctx context.Context, q querier, keepReleases int) (map[int64]bool, error) {
	ids := map[int64]bool{}
	targets, err := db.targetsAndTheirDeployments(ctx, q, ids)
	if err != nil {
		return nil, fmt.Errorf("read the deployments kept whatever their age: %w", err)
	}
	for _, t := range targets {
		for i, query := range protectedByTarget {
			args := []any{t.Fraise, t.Environment}
			if i == len(protectedByTarget)-1 {
				args = append(args, keepReleases)
			}
			if err := db.collectIDs(ctx, q, ids, query, args...); err != nil {
				return nil, fmt.Errorf("read the deployments of %s kept whatever their age: %w", t, err)
			}
		}
	}
	return ids, nil
}

// targetsAndTheirDeployments lists the targets, adding to ids the
// deployments their state names.
func (db *DB) targetsAndTheirDeployments(ctx context.Context, q querier, ids map[int64]bool) ([]Target, error) {
	rows, err := q.QueryContext(ctx, "SELECT fraise, environment, last_deployment_id, broken_deployment_id FROM tb_fraise_state")
	if err != nil {
		return nil, err
	}
	var targets []Target
	err = eachRow(rows, func() error {
		var (
			t            Target
			last, broken sql.NullInt64
		)
		if err := rows.Scan(&t.Fraise, &t.Environment, &last, &broken); err != nil {
			return err
		}
		targets = append(targets, t)
		for _, id := range []sql.NullInt64{last, broken} {
			if id.Valid {
				ids[id.Int64] = true
			}
		}
		return nil
	})
	return targets, err
}

// collectIDs adds to ids the non-null ids the query selects.
func (db *DB) collectIDs(ctx context.Context, q querier, ids map[int64]bool, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return err
	}
	return eachRow(rows, func() error {
		var id sql.NullInt64
		err := rows.Scan(&id)
		if id.Valid {
			ids[id.Int64] = true
		}
		return err
	})
}

// protectedList is the protected ids for an IN list: "NULL" (which
// matches nothing) when there are none.
func (p *pruner) protectedList() (string, []any) {
	if len(p.protected) == 0 {
		return "NULL", nil
	}
	ids := make([]int64, 0, len(p.protected))
	for id := range p.protected {
		ids = append(ids, id)
	}
	return idList(ids)
}

// keyset is a position in (finished_at, id) order, which
// ix_deployment_finished gives without a sort.
type keyset struct{ at, id int64 }

// sqlFinishedPage is the next page of deployments finished in [?, ?)
// after the keyset position (finished_at, id) given by the 3rd and 4th
// arguments.
const sqlFinishedPage = `SELECT id, finished_at, webhook_event_id FROM tb_deployment
	WHERE finished_at >= ? AND finished_at < ? AND (finished_at > ? OR id > ?)
	ORDER BY finished_at, id LIMIT ?`

// deployments removes the finished deployments older than the cutoff that
// nothing keeps, with their steps and links, and the events that asked
// for them once those are old enough to go too (counted in ev).
func (p *pruner) deployments(ctx context.Context, res, ev *Pruned) error {
	if p.opts.DryRun {
		return p.countDeployments(ctx, res)
	}
	cur := keyset{at: math.MinInt64}
	return p.batches(ctx, func(tx *sql.Tx, limit int) (bool, error) {
		rows, err := tx.QueryContext(ctx, p.db.q(sqlFinishedPage), cur.at, p.cut.deployments, cur.at, cur.id, limit)
		if err != nil {
			return false, fmt.Errorf("read finished deployments: %w", err)
		}
		var ids, hooks []int64
		n := 0
		err = eachRow(rows, func() error {
			var hook sql.NullInt64
			if err := rows.Scan(&cur.id, &cur.at, &hook); err != nil {
				return err
			}
			n++
			if !p.protected[cur.id] {
				ids = append(ids, cur.id)
				if hook.Valid {
					hooks = append(hooks, hook.Int64)
				}
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("read finished deployments: %w", err)
		}
		if len(ids) > 0 {
			// In the transaction of the first removal: from its commit on,
			// stats knows the days before the cutoff may be incomplete.
			if err := p.db.setPrunedBefore(ctx, tx, PruneDeployments, p.cut.deployments, p.now); err != nil {
				return false, err
			}
			removed, err := p.db.deleteDeployments(ctx, tx, ids)
			if err != nil {
				return false, err
			}
			res.Removed += removed
		}
		if len(hooks) > 0 && p.cut.events != math.MinInt64 {
			removed, err := p.db.deleteEvents(ctx, tx, `e.id IN (`+placeholders(len(hooks))+`)`, int64Args(hooks), p.cut.events, len(hooks))
			if err != nil {
				return false, err
			}
			ev.Removed += int64(len(removed))
		}
		return n < limit, nil
	})
}

func int64Args(ids []int64) []any {
	_, args := idList(ids)
	return args
}

// deleteDeployments removes finished deployments with their steps and
// links; the releases they made forget them. A release made current
// meanwhile keeps its deployment's row referenced, which fails the
// transaction (a foreign key) rather than lose it.
func (db *DB) deleteDeployments(ctx context.Context, tx *sql.Tx, ids []int64) (int64, error) {
	list, args := idList(ids)
	for _, s := range []struct{ what, query string }{
		{"links", "DELETE FROM tb_webhook_deployment WHERE deployment_id IN (" + list + ")"},
		{"steps", "DELETE FROM tb_deployment_step WHERE deployment_id IN (" + list + ")"},
		{"releases", "UPDATE tb_release SET deployment_id = NULL WHERE deployment_id IN (" + list + ") AND state <> 'current'"},
	} {
		if _, err := tx.ExecContext(ctx, db.q(s.query), args...); err != nil {
			return 0, fmt.Errorf("remove the %s of deployments %d…%d: %w", s.what, ids[0], ids[len(ids)-1], err)
		}
	}
	res, err := tx.ExecContext(ctx, db.q("DELETE FROM tb_deployment WHERE id IN ("+list+")"), args...)
	if err != nil {
		return 0, fmt.Errorf("remove deployments %d…%d: %w", ids[0], ids[len(ids)-1], err)
	}
	return res.RowsAffected()
}

// eventKept is true of an event a deployment keeps: one it triggered, or
// one still queued or running it is linked to.
const eventKept = `(EXISTS (SELECT 1 FROM tb_deployment d WHERE d.webhook_event_id = e.id)
	OR EXISTS (SELECT 1 FROM tb_webhook_deployment l JOIN tb_deployment d ON d.id = l.deployment_id
	    WHERE l.webhook_event_id = e.id AND d.finished_at IS NULL))`

// deleteEvents removes, of the events that cond (on alias e, with args)
// selects, up to limit received before cut that no deployment keeps,
// lowest ids first, with their links, and returns their ids.
func (db *DB) deleteEvents(ctx context.Context, tx *sql.Tx, cond string, args []any, cut int64, limit int) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, db.q(`SELECT e.id FROM tb_webhook_event e
		WHERE `+cond+` AND e.received_at < ? AND NOT `+eventKept+` ORDER BY e.id LIMIT ?`), append(args, cut, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read old webhook events: %w", err)
	}
	var ids []int64
	err = eachRow(rows, func() error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read old webhook events: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	list, idArgs := idList(ids)
	if _, err := tx.ExecContext(ctx, db.q("DELETE FROM tb_webhook_deployment WHERE webhook_event_id IN ("+list+")"), idArgs...); err != nil {
		return nil, fmt.Errorf("remove the links of webhook events %d…%d: %w", ids[0], ids[len(ids)-1], err)
	}
	if _, err := tx.ExecContext(ctx, db.q("DELETE FROM tb_webhook_event WHERE id IN ("+list+")"), idArgs...); err != nil {
		return nil, fmt.Errorf("remove webhook events %d…%d: %w", ids[0], ids[len(ids)-1], err)
	}
	return ids, nil
}

// The statements of an events batch: the events in an id range received
// before a cutoff that no deployment keeps, their links, then the events.
// One shape whatever the batch, so they are prepared once.
const (
	sqlOldEventsInRange = `SELECT e.id FROM tb_webhook_event e
		WHERE e.id > ? AND e.id <= ? AND e.received_at < ? AND NOT ` + eventKept
	sqlDeleteRangeLinks  = `DELETE FROM tb_webhook_deployment WHERE webhook_event_id IN (` + sqlOldEventsInRange + `)`
	sqlDeleteRangeEvents = `DELETE FROM tb_webhook_event WHERE id IN (` + sqlOldEventsInRange + `)`
)

// events removes the events received before the cutoff that no
// deployment keeps. There is no index on received_at (every delivery
// would pay for it): ids follow reception, so the pass walks the ids up
// to the last one received before the cutoff (eventsBound), a range of
// the primary key per batch, and checks each row's time.
func (p *pruner) events(ctx context.Context, res, _ *Pruned) error {
	first, bound, err := p.db.eventsBound(ctx, p.conn, p.cut.events)
	if err != nil || bound == 0 {
		return err
	}
	if p.opts.DryRun {
		return p.countEvents(ctx, res, bound)
	}
	cur := first - 1
	return p.batches(ctx, func(tx *sql.Tx, limit int) (bool, error) {
		upper := min(cur+int64(limit), bound)
		args := []any{cur, upper, p.cut.events}
		if _, err := p.db.execTx(ctx, tx, sqlDeleteRangeLinks, args...); err != nil {
			return false, fmt.Errorf("remove the links of webhook events %d…%d: %w", cur+1, upper, err)
		}
		r, err := p.db.execTx(ctx, tx, sqlDeleteRangeEvents, args...)
		if err != nil {
			return false, fmt.Errorf("remove webhook events %d…%d: %w", cur+1, upper, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return false, err
		}
		res.Removed += n
		if cur = upper; cur < bound {
			return false, nil
		}
		if err := p.db.pruneCheckRecords(ctx, tx, p.cut.events); err != nil {
			return false, err
		}
		return true, p.db.setPrunedBefore(ctx, tx, PruneEvents, p.cut.events, p.now)
	})
}

// eventsBound is the lowest event id, and the highest id up to which
// events were received before cut, taking ids to follow reception times
// (they do, give or take a clock set back); bound is 0 when no event is
// that old. A binary search over the primary key: a few dozen lookups.
func (db *DB) eventsBound(ctx context.Context, q querier, cut int64) (first, bound int64, err error) {
	var lo, hi sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT MIN(id) FROM tb_webhook_event").Scan(&lo); err != nil {
		return 0, 0, fmt.Errorf("find the oldest webhook event: %w", err)
	}
	if err := q.QueryRowContext(ctx, "SELECT MAX(id) FROM tb_webhook_event").Scan(&hi); err != nil {
		return 0, 0, fmt.Errorf("find the newest webhook event: %w", err)
	}
	if !lo.Valid {
		return 0, 0, nil
	}
	// old reports whether the first event at or after id was received
	// before cut.
	old := func(id int64) (bool, error) {
		var at int64
		err := q.QueryRowContext(ctx, db.q("SELECT received_at FROM tb_webhook_event WHERE id >= ? ORDER BY id LIMIT 1"), id).Scan(&at)
		if notFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("find the last webhook event received before the cutoff: %w", err)
		}
		return at < cut, nil
	}
	a, b := lo.Int64, hi.Int64
	if ok, err := old(a); err != nil || !ok {
		return a, 0, err
	}
	if ok, err := old(b); err != nil || ok {
		return a, b, err
	}
	// old(a) and not old(b): narrow down to neighbours.
	for b-a > 1 {
		mid := a + (b-a)/2
		ok, err := old(mid)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			a = mid
		} else {
			b = mid
		}
	}
	return lo.Int64, a, nil
}

// The statements of a step output batch, over the page of finished
// deployments sqlFinishedPage selects (its arguments first): the last of
// the page, where the next batch starts; the output left, counted; the
// output removed.
const (
	sqlPageIDs     = `SELECT id FROM (` + sqlFinishedPage + `) p`
	sqlPageLast    = `SELECT id, finished_at FROM (` + sqlFinishedPage + `) p ORDER BY finished_at DESC, id DESC LIMIT 1`
	sqlOutputWhere = ` WHERE deployment_id IN (` + sqlPageIDs + `) AND output_pruned_at IS NULL AND length(output) > 0`
	sqlOutputLeft  = `SELECT COUNT(*), COALESCE(SUM(length(output)), 0) FROM tb_deployment_step` + sqlOutputWhere
	sqlClearOutput = `UPDATE tb_deployment_step SET output = ?, output_pruned_at = ?` + sqlOutputWhere
)

// stepOutput empties the output of the steps of deployments finished
// before the cutoff and marks it removed; a step that printed nothing is
// left as it is, which says so truthfully. The pass resumes where the
// last one stopped (tb_retention), so that each deployment's output is
// visited once however many deployments are kept.
func (p *pruner) stepOutput(ctx context.Context, res, _ *Pruned) error {
	from, err := p.db.prunedBefore(ctx, p.conn, PruneStepOutput)
	if err != nil || from >= p.cut.stepOutput {
		return err
	}
	if p.opts.DryRun {
		return p.countStepOutput(ctx, res, from)
	}
	cur := keyset{at: from}
	return p.batches(ctx, func(tx *sql.Tx, limit int) (bool, error) {
		page := []any{cur.at, p.cut.stepOutput, cur.at, cur.id, limit}
		var last keyset
		err := p.db.queryRowTx(ctx, tx, sqlPageLast, page...).Scan(&last.id, &last.at)
		if notFound(err) {
			return true, p.db.setPrunedBefore(ctx, tx, PruneStepOutput, p.cut.stepOutput, p.now)
		}
		if err != nil {
			return false, fmt.Errorf("read finished deployments: %w", err)
		}
		var steps, bytes int64
		if err := p.db.queryRowTx(ctx, tx, sqlOutputLeft, page...).Scan(&steps, &bytes); err != nil {
			return false, fmt.Errorf("measure the output of deployments finished from %s: %w", fromMS(cur.at), err)
		}
		if steps > 0 {
			if _, err := p.db.execTx(ctx, tx, sqlClearOutput, append([]any{[]byte{}, p.now}, page...)...); err != nil {
				return false, fmt.Errorf("remove the output of deployments finished from %s: %w", fromMS(cur.at), err)
			}
		}
		res.Removed += steps
		res.Bytes += bytes
		cur = last
		// Where the next pass resumes, should this one stop here.
		return false, p.db.setPrunedBefore(ctx, tx, PruneStepOutput, cur.at, p.now)
	})
}

// keptAfter is true of a deployment d that the pass keeps: unfinished,
// finished since the cutoff, or protected. With its arguments.
func (p *pruner) keptAfter() (string, []any) {
	list, args := p.protectedList()
	return "(d.finished_at IS NULL OR d.finished_at >= ? OR d.id IN (" + list + "))",
		append([]any{p.cut.deployments}, args...)
}

// countDeployments is deployments for a dry run.
func (p *pruner) countDeployments(ctx context.Context, res *Pruned) error {
	kept, args := p.keptAfter()
	err := p.conn.QueryRowContext(ctx, p.db.q(`SELECT COUNT(*) FROM tb_deployment d
		WHERE d.finished_at < ? AND NOT `+kept), append([]any{p.cut.deployments}, args...)...).Scan(&res.Removed)
	if err != nil {
		return fmt.Errorf("count old deployments: %w", err)
	}
	return nil
}

// countEvents is events for a dry run: the events that would be old
// enough once the deployments that go are gone.
func (p *pruner) countEvents(ctx context.Context, res *Pruned, bound int64) error {
	cond, args := p.eventWouldGo()
	err := p.conn.QueryRowContext(ctx, p.db.q(`SELECT COUNT(*) FROM tb_webhook_event e
		WHERE e.id <= ? AND `+cond), append([]any{bound}, args...)...).Scan(&res.Removed)
	if err != nil {
		return fmt.Errorf("count old webhook events: %w", err)
	}
	return nil
}

// eventWouldGo is true of an event e the pass removes, counting the
// deployments it removes as gone already.
func (p *pruner) eventWouldGo() (string, []any) {
	kept, args := p.keptAfter()
	k := strings.Replace(eventKept, "WHERE d.webhook_event_id = e.id)", "WHERE d.webhook_event_id = e.id AND "+kept+")", 1)
	return "e.received_at < ? AND NOT " + k, append([]any{p.cut.events}, args...)
}

// countStepOutput is stepOutput for a dry run, leaving out the
// deployments the pass removes whole.
func (p *pruner) countStepOutput(ctx context.Context, res *Pruned, from int64) error {
	kept, args := p.keptAfter()
	err := p.conn.QueryRowContext(ctx, p.db.q(`SELECT COUNT(*), COALESCE(SUM(length(s.output)), 0)
		FROM tb_deployment d JOIN tb_deployment_step s ON s.deployment_id = d.id
		WHERE d.finished_at >= ? AND d.finished_at < ? AND s.output_pruned_at IS NULL AND length(s.output) > 0
		  AND `+kept), append([]any{from, p.cut.stepOutput}, args...)...).Scan(&res.Removed, &res.Bytes)
	if err != nil {
		return fmt.Errorf("count old step output: %w", err)
	}
	return nil
}

// oldestKept fills in each kind's oldest record left, or that a dry run
// would leave: the first kept in the order the pass walks, which a real
// pass has just cleared of everything older.
func (p *pruner) oldestKept(ctx context.Context, dep, ev, out *Pruned) error {
	kept, args := p.keptAfter()
	first := func(what, query string, args ...any) (*time.Time, error) {
		var at int64
		err := p.conn.QueryRowContext(ctx, p.db.q(query), args...).Scan(&at)
		switch {
		case notFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("find the oldest %s kept: %w", what, err)
		}
		t := fromMS(at)
		return &t, nil
	}
	var err error
	if dep.OldestKept, err = first("deployment", `SELECT d.finished_at FROM tb_deployment d
		WHERE d.finished_at IS NOT NULL AND `+kept+` ORDER BY d.finished_at LIMIT 1`, args...); err != nil {
		return err
	}
	if out.OldestKept, err = first("step output", `SELECT d.finished_at FROM tb_deployment d
		WHERE d.finished_at >= ? AND `+kept+` ORDER BY d.finished_at LIMIT 1`, append([]any{p.cut.stepOutput}, args...)...); err != nil {
		return err
	}
	goes, goArgs := p.eventWouldGo()
	ev.OldestKept, err = first("webhook event", `SELECT e.received_at FROM tb_webhook_event e
		WHERE NOT (`+goes+`) ORDER BY e.id LIMIT 1`, goArgs...)
	return err
}
