package notify

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Watch looks, every interval until ctx is done, for deploy locks held
// longer than notify.lock_held_limit and requests queued longer than
// notify.queue_stuck_after, and reports each once.
func (n *Notifier) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.CheckStuck(ctx)
		}
	}
}

// CheckStuck reports the locks held and requests queued too long that it
// has not reported yet.
func (n *Notifier) CheckStuck(ctx context.Context) {
	nc := &n.Config().Notify
	now := n.now()
	current := map[string]bool{}
	locks, err := n.Store.Locks(ctx)
	if err != nil {
		n.log().Warn("read the deploy locks to watch them", "err", err)
		return
	}
	for _, l := range locks {
		held := now.Sub(l.AcquiredAt)
		key := "lock/" + l.Target.String() + "/" + l.Owner + "/" + strconv.FormatInt(l.AcquiredAt.UnixMilli(), 10)
		current[key] = true
		if held < nc.LockLimit() || !n.first(key) {
			continue
		}
		n.event(ctx, Message{Version: 1, Event: EventLockHeld, Fraise: l.Fraise, Environment: l.Environment, At: now.UTC(),
			Detail: fmt.Sprintf("The deploy lock has been held for %s by %s (host %s, pid %d, %s). "+
				"Run fraisier status %s; fraisier unlock %s %s once nothing deploys.",
				held.Round(time.Second), l.Owner, l.Host, l.PID, l.Reason, l.Fraise, l.Fraise, l.Environment)})
	}
	queued, err := n.Store.QueuedDeployments(ctx)
	if err != nil {
		n.log().Warn("read the deploy queue to watch it", "err", err)
		return
	}
	defer n.forgetGone(current)
	for _, d := range queued {
		waited := now.Sub(d.StartedAt)
		key := "queued/" + strconv.FormatInt(d.ID, 10)
		current[key] = true
		if waited < nc.StuckAfter() || !n.first(key) {
			continue
		}
		n.event(ctx, Message{Version: 1, Event: EventQueueStuck, Fraise: d.Fraise, Environment: d.Environment,
			Deployment: d.ID, At: now.UTC(), Show: "fraisier status " + d.Fraise + " " + d.Environment,
			Detail: fmt.Sprintf("Deployment %d of %s has waited in the queue for %s. Is fraisier serve running its workers, or a lock held?",
				d.ID, short(d.NewSHA), waited.Round(time.Second))})
	}
}

// first reports whether key is seen for the first time.
func (n *Notifier) first(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	if n.seen[key] {
		return false
	}
	n.seen[key] = true
	return true
}

// forgetGone drops what was reported of locks and requests no longer
// there, so that the set stays as small as what is stuck now.
func (n *Notifier) forgetGone(current map[string]bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.seen {
		if !current[k] {
			delete(n.seen, k)
		}
	}
}
