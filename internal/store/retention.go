package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"time"
)

// Retention says how long the state database keeps what grows with every
// delivery and deployment. A zero duration keeps that kind forever.
//
// What refers to what decides what stays however old it is:
//   - a deployment still queued or running is never removed, nor one that
//     a target's state names (its last deployment, the one that broke it),
//     nor a target's newest succeeded deployment, nor one that made its
//     current release or one of its KeepReleases newest releases: the next
//     deployment asks which ref the running release came from (its replay
//     check), and a rollback may return to a release still on disk. An
//     older release keeps its row, its deployment unknown;
//   - a webhook event stays as long as a deployment it triggered
//     (tb_deployment.webhook_event_id) or one still queued or running it is
//     linked to: a deployment kept keeps the delivery that asked for it.
//     Events only folded into a deployment, superseded, ignored, rejected
//     or duplicates go at their age, with their links;
//   - a removed deployment takes its steps and links with it; its
//     triggering event goes too once older than Events;
//   - the stats rollups are never touched: they already count every
//     finished deployment (see Stats for windows starting on a pruned day).
type Retention struct {
	Events      time.Duration // webhook events, by when they were received
	StepOutput  time.Duration // the output of finished deployments' steps, by their finish
	Deployments time.Duration // finished deployments, by their finish, in whole UTC days
	// KeepReleases is how many of each target's newest releases keep the
	// deployment that made them: as many as can still be on disk
	// (keep_releases plus the current and previous ones). At least 1.
	KeepReleases int
}

// PruneKind names a kind of record Prune removes.
type PruneKind string

const (
	PruneDeployments PruneKind = "deployments"
	PruneEvents      PruneKind = "events"
	PruneStepOutput  PruneKind = "step_output"
)

// PruneOptions says how Prune goes about it.
type PruneOptions struct {
	// DryRun counts what would go and removes nothing.
	DryRun bool
	// MaxHold is how long one batch should hold the write lock; the batch
	// size follows it, halving after a slower batch and doubling after a
	// much quicker one. Zero means DefaultMaxHold.
	MaxHold time.Duration
	// Share, between 0 and 1, is the fraction of the time Prune may hold
	// the write lock: after a batch that held it for d it waits
	// d × (1 − Share) / Share, so that other writers (serve's intake) have
	// the database the rest of the time, and ten times as long after a
	// batch that had to wait for the lock: others are busy writing, and
	// pruning can wait for a quieter moment. 0 or 1: no wait.
	Share float64
}

// DefaultMaxHold is PruneOptions.MaxHold when unset.
const DefaultMaxHold = 20 * time.Millisecond

// Pruned is what Prune removed, or would remove, of one kind.
type Pruned struct {
	Kind      PruneKind     `json:"kind"`
	Retention time.Duration `json:"-"`
	// Cutoff: records older than it go (for deployments a UTC midnight).
	// Nil when the kind is kept forever.
	Cutoff *time.Time `json:"cutoff"`
	// Removed counts events, deployments, or steps whose output went.
	Removed int64 `json:"removed"`
	// Bytes is the step output removed (step_output only).
	Bytes int64 `json:"bytes"`
	// OldestKept is when the oldest record left was received (events) or
	// finished (deployments, and deployments whose output is left); nil
	// when none is left.
	OldestKept *time.Time `json:"oldest_kept"`
}

// PruneReport is what one Prune did.
type PruneReport struct {
	DryRun bool
	// Kinds are deployments, events and step output, in that order: the
	// order Prune works in, since removing a deployment frees its event.
	// A pass that failed or was cancelled says what it did until then.
	Kinds []Pruned
	// Batches is how many write transactions Prune ran, Held how long
	// they took in all, MaxHeld the longest: as long as any other writer
	// waited behind one.
	Batches int
	Held    time.Duration
	MaxHeld time.Duration
}

// Prune removes from db what r says is too old, in short transactions
// (see PruneOptions), or with opts.DryRun counts what it would remove. It
// is safe to run beside fraisier serve, and on PostgreSQL on several nodes
// at once: each batch first locks tb_retention's rows, so batches of two
// pruners take turns, and every deletion re-checks its conditions. Like
// Populate, it is maintenance rather than one of the store's operations.
func Prune(ctx context.Context, db *DB, r Retention, opts PruneOptions) (PruneReport, error) {
	rep, err := db.prune(ctx, r, opts)
	if err != nil {
		return rep, fmt.Errorf("prune the state database: %w", err)
	}
	return rep, nil
}

func (db *DB) prune(ctx context.Context, r Retention, opts PruneOptions) (PruneReport, error) {
	conn, err := db.pruneConn(ctx)
	if err != nil {
		return PruneReport{DryRun: opts.DryRun}, err
	}
	defer discardConn(conn)
	now := db.nowMS()
	p := &pruner{db: db, conn: conn, r: r, opts: opts, rows: startBatch, now: now}
	p.rep.DryRun = opts.DryRun
	p.cut = cutoffs{deployments: math.MinInt64, events: math.MinInt64, stepOutput: math.MinInt64}
	if r.Deployments > 0 {
		p.cut.deployments = dayOf(now-r.Deployments.Milliseconds()) * dayMS
	}
	if r.Events > 0 {
		p.cut.events = now - r.Events.Milliseconds()
	}
	if r.StepOutput > 0 {
		p.cut.stepOutput = now - r.StepOutput.Milliseconds()
	}
	if r.Deployments > 0 {
		if p.protected, err = db.protectedDeployments(ctx, conn, max(1, r.KeepReleases)); err != nil {
			return p.rep, err
		}
	}
	p.rep.Kinds = []Pruned{
		{Kind: PruneDeployments, Retention: r.Deployments},
		{Kind: PruneEvents, Retention: r.Events},
		{Kind: PruneStepOutput, Retention: r.StepOutput},
	}
	dep, ev, out := &p.rep.Kinds[0], &p.rep.Kinds[1], &p.rep.Kinds[2]
	for _, k := range []struct {
		res *Pruned
		cut int64
		run func(context.Context, *Pruned, *Pruned) error
	}{
		{dep, p.cut.deployments, p.deployments},
		{ev, p.cut.events, p.events},
		{out, p.cut.stepOutput, p.stepOutput},
	} {
		if k.cut == math.MinInt64 {
			continue
		}
		c := fromMS(k.cut)
		k.res.Cutoff = &c
		if err := k.run(ctx, k.res, ev); err != nil {
			return p.rep, fmt.Errorf("%s: %w", k.res.Kind, err)
		}
	}
	if err := p.oldestKept(ctx, dep, ev, out); err != nil {
		return p.rep, err
	}
	return p.rep, nil
}

// cutoffs are the times before which each kind goes, unix ms;
// math.MinInt64 for a kind kept forever.
type cutoffs struct{ deployments, events, stepOutput int64 }

// Batch sizes, in rows: where a pass starts (small, so that its first
// batch, on a cold cache, is short too), and the bounds it adapts within.
const (
	startBatch = 32
	minBatch   = 16
	maxBatch   = 1024
)

// pruner is one Prune pass.
type pruner struct {
	db *DB
	// conn is the pass's own connection (see pruneConn).
	conn *sql.Conn
	r    Retention
	opts PruneOptions
	now  int64
	cut  cutoffs
	// protected are the finished deployments kept whatever their age
	// (see Retention), read once at the start of the pass; the deletions
	// re-check what can change meanwhile.
	protected map[int64]bool
	rows      int // the next batch's size
	rep       PruneReport
}

// batches runs fn in write transactions, one batch each, until it reports
// done, pacing them as opts say.
func (p *pruner) batches(ctx context.Context, fn func(tx *sql.Tx, limit int) (done bool, err error)) error {
	for {
		var (
			done  bool
			start time.Time
		)
		asked := time.Now()
		err := p.db.writeOn(ctx, p.conn, func(tx *sql.Tx) error {
			start = time.Now()
			if err := p.db.lockRetention(ctx, tx); err != nil {
				return err
			}
			var err error
			done, err = fn(tx, p.rows)
			return err
		})
		var held time.Duration
		if !start.IsZero() {
			held = time.Since(start)
			p.rep.Batches++
			p.rep.Held += held
			p.rep.MaxHeld = max(p.rep.MaxHeld, held)
		}
		if err != nil || done {
			return err
		}
		if err := p.pace(ctx, held, start.Sub(asked)); err != nil {
			return err
		}
	}
}

// pace sizes the next batch after one that held the write lock for held,
// having waited for it for waited, and leaves the other writers their
// share of the time.
func (p *pruner) pace(ctx context.Context, held, waited time.Duration) error {
	target := p.opts.MaxHold
	if target <= 0 {
		target = DefaultMaxHold
	}
	switch {
	case held > target && p.rows > minBatch:
		p.rows /= 2
	case held < target/4 && p.rows < maxBatch:
		p.rows *= 2
	}
	if s := p.opts.Share; s > 0 && s < 1 {
		wait := time.Duration(float64(held) * (1 - s) / s)
		if waited > target/4 {
			wait *= 10
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}

// pruneCacheKiB is the page cache of a pass's connection. A pass reads
// and rewrites pages all over the tables it prunes, once each: a cache as
// large as the other connections' would fill up with them for nothing,
// and stay in the process's memory.
const pruneCacheKiB = 2048

// pruneConn is a connection of the pool for one pass, with a small page
// cache on SQLite. The pass discards it when done (discardConn), so that
// what it cached leaves with it.
func (db *DB) pruneConn(ctx context.Context) (*sql.Conn, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if db.d == sqliteDialect {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", pruneCacheKiB)); err != nil {
			discardConn(conn)
			return nil, fmt.Errorf("set up the connection: %w", err)
		}
	}
	return conn, nil
}

// discardConn closes conn for good rather than return it to the pool.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// lockRetention makes pruning batches take turns across PostgreSQL nodes.
// On SQLite the transaction already holds the only write lock.
func (db *DB) lockRetention(ctx context.Context, tx *sql.Tx) error {
	if db.d.forUpdate == "" {
		return nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT kind FROM tb_retention ORDER BY kind"+db.d.forUpdate)
	if err != nil {
		return fmt.Errorf("lock tb_retention: %w", err)
	}
	return eachRow(rows, func() error { return nil })
}

// prunedBefore reads how far pruning of kind has gone (see tb_retention).
func (db *DB) prunedBefore(ctx context.Context, q querier, kind PruneKind) (int64, error) {
	var at int64
	err := q.QueryRowContext(ctx, db.q("SELECT pruned_before FROM tb_retention WHERE kind = ?"), string(kind)).Scan(&at)
	if notFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read how far %s were pruned: %w", kind, err)
	}
	return at, nil
}

// setPrunedBefore records how far pruning of kind has gone; it only moves
// forward.
func (db *DB) setPrunedBefore(ctx context.Context, tx *sql.Tx, kind PruneKind, at, now int64) error {
	_, err := db.execTx(ctx, tx, "UPDATE tb_retention SET pruned_before = ?, updated_at = ? WHERE kind = ? AND pruned_before < ?",
		at, now, string(kind), at)
	if err != nil {
		return fmt.Errorf("record how far %s were pruned: %w", kind, err)
	}
	return nil
}

// statsSince is where a stats window starting at since (unix ms) can be
// counted exactly from: since itself, unless its day is one whose
// deployments may have been pruned, in which case the window starts at
// that day's midnight, where the daily rollups are exact without them.
func (db *DB) statsSince(ctx context.Context, since int64) (int64, error) {
	day := dayOf(since) * dayMS
	if day == since {
		return since, nil
	}
	pruned, err := db.prunedBefore(ctx, db.sql, PruneDeployments)
	if err != nil {
		return 0, err
	}
	if day < pruned {
		return day, nil
	}
	return since, nil
}

// deploymentsPrunedBefore is the UTC midnight before which finished
// deployments may have been removed by retention; zero when none ever
// were. RebuildStats cannot count what is no longer there.
func (db *DB) deploymentsPrunedBefore(ctx context.Context) (time.Time, error) {
	at, err := db.prunedBefore(ctx, db.sql, PruneDeployments)
	if err != nil || at == 0 {
		return time.Time{}, err
	}
	return fromMS(at), nil
}

// idList is "?, ?, ?" for ids and the ids as arguments.
func idList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return placeholders(len(ids)), args
}
