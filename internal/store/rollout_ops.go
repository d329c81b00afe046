package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNotWaiting means a rollout is not waiting for what was asked of it:
// a resume, or its canary's health check.
var ErrNotWaiting = errors.New("rollout is not waiting for that")

// ResumeRollout lets a rollout held after its canary (canary_wait:
// manual) go on: its next batch is queued at once. actor is who resumed
// it, for the changes' record.
func (db *DB) ResumeRollout(ctx context.Context, id int64, actor string) error {
	err := db.changeRollout(ctx, id, func(a *advance) error {
		if a.r.Status != RolloutRunning || !a.r.WaitingResume {
			return fmt.Errorf("%w: it is %s, not waiting to be resumed", ErrNotWaiting, a.r.Status)
		}
		a.r.WaitingResume, a.canaryChecked, a.dirty = false, true, true
		a.change(a.r.Hosts[0].Host, "resumed by "+actor)
		return nil
	})
	if err != nil {
		return fmt.Errorf("resume rollout %d: %w", id, err)
	}
	return nil
}

// RolloutVerified records the health check the canary's node made at the
// end of the canary window (canary_wait: a duration): healthy, the
// rollout goes on; not, why says what failed and the rollout stops and
// rolls the canary back.
func (db *DB) RolloutVerified(ctx context.Context, id int64, host string, healthy bool, why string) error {
	err := db.changeRollout(ctx, id, func(a *advance) error {
		if !a.canaryWaiting() || a.r.NextAt == nil || a.r.Hosts[0].Host != host {
			return fmt.Errorf("%w: it is %s, not waiting for a health check of %s", ErrNotWaiting, a.r.Status, host)
		}
		if healthy {
			a.canaryChecked, a.r.NextAt, a.dirty = true, nil, true
			a.change(host, "canary healthy at the end of its window")
			return nil
		}
		h := &a.r.Hosts[0]
		h.Error, a.hostDirty[0] = "unhealthy at the end of the canary window: "+why, true
		return a.stop(ctx, "canary "+host+" "+h.Error)
	})
	if err != nil {
		return fmt.Errorf("record the canary check of rollout %d: %w", id, err)
	}
	return nil
}

// changeRollout applies fn to rollout id, locked, then moves it on as
// AdvanceRollouts would (without judging liveness) and saves it.
func (db *DB) changeRollout(ctx context.Context, id int64, fn func(a *advance) error) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		a, found, err := db.loadRollout(ctx, tx, id, db.d.forUpdate, false)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		a.now = db.now()
		a.liveSince = a.now
		// Resumed or checked by hand: every node looks again.
		a.wakeAll = true
		if err := a.loadSteps(ctx); err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
		return a.settleAndSave(ctx)
	})
}
