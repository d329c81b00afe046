package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Lock events, recorded whenever a lock leaves its owner other than by
// ReleaseLock.
const (
	LockExpired    = "expired"     // taken over after its expiry
	LockHolderDead = "holder_dead" // taken over because its process was gone
	LockForced     = "forced"      // removed by ForceUnlock
)

// LockEvent records a lock taken from its owner.
type LockEvent struct {
	ID       int64     `json:"id"`
	Event    string    `json:"event"`
	Lock     Lock      `json:"lock"`      // the lock as its owner held it
	NewOwner string    `json:"new_owner"` // empty for LockForced
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

const lockCols = "fraise, environment, owner, host, pid, reason, acquired_at, expires_at"

func scanLock(s scanner) (Lock, error) {
	var (
		l                 Lock
		acquired, expires int64
	)
	if err := s.Scan(&l.Fraise, &l.Environment, &l.Owner, &l.Host, &l.PID, &l.Reason, &acquired, &expires); err != nil {
		return l, err
	}
	l.AcquiredAt, l.ExpiresAt = fromMS(acquired), fromMS(expires)
	return l, nil
}

// AcquireLock takes the lock on l.Target for l.Owner until now+ttl. It
// succeeds when the target is unlocked, when l.Owner already holds it (its
// expiry is extended), when the lock has expired, or when holderDead
// reports its holder dead; liveness is the caller's call (typically: same
// host, pid not running). When it took the lock over it returns the
// previous holder, and records the takeover. Otherwise it returns an error
// wrapping a *LockedError naming the holder (errors.Is(err, ErrLocked)).
// The check and the take happen in one transaction, so of many concurrent
// acquirers exactly one wins.
func (db *DB) AcquireLock(ctx context.Context, l Lock, ttl time.Duration, holderDead func(Lock) bool) (Lock, error) {
	prev, err := db.acquireLock(ctx, l, ttl, holderDead)
	if err != nil {
		return Lock{}, fmt.Errorf("acquire lock on %s for %s: %w", l.Target, l.Owner, err)
	}
	return prev, nil
}

func (db *DB) acquireLock(ctx context.Context, l Lock, ttl time.Duration, holderDead func(Lock) bool) (Lock, error) {
	if err := checkTarget(l.Target); err != nil {
		return Lock{}, err
	}
	if l.Owner == "" {
		return Lock{}, errors.New("a lock needs an owner")
	}
	if ttl <= 0 {
		return Lock{}, fmt.Errorf("lock ttl %s is not positive", ttl)
	}
	var prev Lock
	err := db.write(ctx, func(tx *sql.Tx) error {
		now := db.nowMS()
		expires := now + ttl.Milliseconds()
		// On PostgreSQL the row can vanish between the insert and the
		// select (its owner released it); then the insert is worth retrying.
		for range 3 {
			res, err := tx.ExecContext(ctx, db.q(`INSERT INTO tb_lock (`+lockCols+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fraise, environment) DO NOTHING`),
				l.Fraise, l.Environment, l.Owner, l.Host, l.PID, l.Reason, now, expires)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				return nil
			}
			cur, err := scanLock(tx.QueryRowContext(ctx, db.q("SELECT "+lockCols+
				" FROM tb_lock WHERE fraise = ? AND environment = ?"+db.d.forUpdate), l.Fraise, l.Environment))
			if notFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			var event string
			switch {
			case cur.Owner == l.Owner:
				_, err := db.execTx(ctx, tx, `UPDATE tb_lock SET host = ?, pid = ?, reason = ?, expires_at = ?
					WHERE fraise = ? AND environment = ?`, l.Host, l.PID, l.Reason, expires, l.Fraise, l.Environment)
				return err
			case cur.ExpiresAt.UnixMilli() <= now:
				event = LockExpired
			case holderDead != nil && holderDead(cur):
				event = LockHolderDead
			default:
				return &LockedError{Holder: cur}
			}
			if _, err := db.execTx(ctx, tx, `UPDATE tb_lock
				SET owner = ?, host = ?, pid = ?, reason = ?, acquired_at = ?, expires_at = ?
				WHERE fraise = ? AND environment = ?`,
				l.Owner, l.Host, l.PID, l.Reason, now, expires, l.Fraise, l.Environment); err != nil {
				return err
			}
			if err := db.recordLockEvent(ctx, tx, event, cur, l.Owner, "", now); err != nil {
				return err
			}
			prev = cur
			return nil
		}
		return errors.New("the lock kept changing hands")
	})
	return prev, err
}

func (db *DB) recordLockEvent(ctx context.Context, tx *sql.Tx, event string, l Lock, newOwner, reason string, at int64) error {
	_, err := db.execTx(ctx, tx, `INSERT INTO tb_lock_event
		(fraise, environment, event, owner, host, pid, acquired_at, expires_at, new_owner, reason, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.Fraise, l.Environment, event, l.Owner, l.Host, l.PID, l.AcquiredAt.UnixMilli(), l.ExpiresAt.UnixMilli(),
		newOwner, reason, at)
	if err != nil {
		return fmt.Errorf("record lock event: %w", err)
	}
	return nil
}

// RefreshLock extends owner's lock on t to now+ttl. ErrNotFound means owner
// no longer holds it: it was taken over or forced, and the owner should stop.
func (db *DB) RefreshLock(ctx context.Context, t Target, owner string, ttl time.Duration) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if ttl <= 0 {
			return fmt.Errorf("lock ttl %s is not positive", ttl)
		}
		res, err := db.execTx(ctx, tx, "UPDATE tb_lock SET expires_at = ? WHERE fraise = ? AND environment = ? AND owner = ?",
			db.nowMS()+ttl.Milliseconds(), t.Fraise, t.Environment, owner)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("refresh lock on %s for %s: %w", t, owner, err)
	}
	return nil
}

// ReleaseLock gives up owner's lock on t. It returns ErrNotFound when owner
// does not hold it, and leaves another owner's lock alone.
func (db *DB) ReleaseLock(ctx context.Context, t Target, owner string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := db.execTx(ctx, tx, "DELETE FROM tb_lock WHERE fraise = ? AND environment = ? AND owner = ?",
			t.Fraise, t.Environment, owner)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("release lock on %s for %s: %w", t, owner, err)
	}
	return nil
}

// ForceUnlock removes the lock on t whoever holds it, records why, and
// returns the lock removed, or ErrNotFound if t was not locked.
func (db *DB) ForceUnlock(ctx context.Context, t Target, reason string) (Lock, error) {
	var removed Lock
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := scanLock(tx.QueryRowContext(ctx, db.q("SELECT "+lockCols+
			" FROM tb_lock WHERE fraise = ? AND environment = ?"+db.d.forUpdate), t.Fraise, t.Environment))
		if notFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := db.execTx(ctx, tx, "DELETE FROM tb_lock WHERE fraise = ? AND environment = ?", t.Fraise, t.Environment); err != nil {
			return err
		}
		removed = cur
		return db.recordLockEvent(ctx, tx, LockForced, cur, "", reason, db.nowMS())
	})
	if err != nil {
		return Lock{}, fmt.Errorf("force unlock %s: %w", t, err)
	}
	return removed, nil
}

// Locks returns every lock, expired ones included, sorted by target.
func (db *DB) Locks(ctx context.Context) ([]Lock, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT "+lockCols+" FROM tb_lock")
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	defer rows.Close()
	locks := []Lock{}
	for rows.Next() {
		l, err := scanLock(rows)
		if err != nil {
			return nil, fmt.Errorf("list locks: %w", err)
		}
		locks = append(locks, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	sort.Slice(locks, func(i, j int) bool { return targetLess(locks[i].Target, locks[j].Target) })
	return locks, nil
}

// LockEvents returns the takeovers and forced unlocks of t's lock, newest
// first (at most limit; <= 0 means 20).
func (db *DB) LockEvents(ctx context.Context, t Target, limit int) ([]LockEvent, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT id, event, fraise, environment, owner, host, pid,
		acquired_at, expires_at, new_owner, reason, at
		FROM tb_lock_event WHERE fraise = ? AND environment = ? ORDER BY id DESC LIMIT ?`),
		t.Fraise, t.Environment, limit)
	if err != nil {
		return nil, fmt.Errorf("list lock events of %s: %w", t, err)
	}
	defer rows.Close()
	evs := []LockEvent{}
	for rows.Next() {
		var (
			e                     LockEvent
			acquired, expires, at int64
		)
		if err := rows.Scan(&e.ID, &e.Event, &e.Lock.Fraise, &e.Lock.Environment, &e.Lock.Owner, &e.Lock.Host,
			&e.Lock.PID, &acquired, &expires, &e.NewOwner, &e.Reason, &at); err != nil {
			return nil, fmt.Errorf("list lock events of %s: %w", t, err)
		}
		e.Lock.AcquiredAt, e.Lock.ExpiresAt, e.At = fromMS(acquired), fromMS(expires), fromMS(at)
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list lock events of %s: %w", t, err)
	}
	return evs, nil
}
