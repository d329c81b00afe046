package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/forgestatus"
	"github.com/fraiseql/fraisier/internal/store"
)

// ForgeStatus queues the report of deployment id's state on the forge of
// its fraise (running when it starts, then its end), when that forge's
// section has status: and the fraise names its repository. Like every
// Notifier method it only writes to the state database.
func (n *Notifier) ForgeStatus(ctx context.Context, id int64, state forgestatus.State) {
	cfg := n.Config()
	d, err := n.Store.Deployment(ctx, id)
	if err != nil {
		n.dropped(fmt.Errorf("forge status of deployment %d: %w", id, err))
		return
	}
	f := cfg.Fraises[d.Fraise]
	if f == nil || f.Repository == "" || !isFullSHA(d.NewSHA) {
		return
	}
	key := f.ForgeKind()
	if _, _, ok := cfg.Git.StatusOf(key); !ok {
		return
	}
	r := forgestatus.Report{
		Forge: forge.Kind(key), Repository: f.Repository, SHA: d.NewSHA, Ref: store.QueuedRef(d.RequestedRef),
		Environment: d.Fraise + "/" + d.Environment, State: state, DeploymentID: d.ID,
		Description: fmt.Sprintf("fraisier deployment %d: %s", d.ID, strings.ReplaceAll(string(state), "_", " ")),
	}
	payload, err := json.Marshal(r)
	if err != nil {
		n.dropped(err)
		return
	}
	msg := store.OutboxMessage{Kind: store.OutboxForgeStatus, Target: key, Event: string(state), DeploymentID: &d.ID, Payload: string(payload)}
	if _, err := n.Store.EnqueueOutbox(ctx, msg); err != nil {
		n.dropped(fmt.Errorf("queue the forge status of deployment %d: %w", id, err))
	}
}

// StatusSender sends the outbox's forge status reports in the background,
// one at a time and in the order they were queued, so that a deployment's
// running report reaches the forge before its end. Set the fields, then
// call Run once.
type StatusSender struct {
	Store  Store
	Config func() *config.Config
	Client *forgestatus.Client
	Log    *slog.Logger
	// Poll, BackoffBase and BackoffMax as Sender's.
	Poll, BackoffBase, BackoffMax time.Duration
	Now                           func() time.Time

	backoff *Sender // the same backoff and clock as notifications
	wake    chan struct{}
}

func (s *StatusSender) setup() {
	if s.backoff == nil {
		s.backoff = &Sender{Poll: s.Poll, BackoffBase: s.BackoffBase, BackoffMax: s.BackoffMax, Now: s.Now, Log: s.Log}
		s.backoff.setup()
		s.Poll, s.Now, s.Log = s.backoff.Poll, s.backoff.Now, s.backoff.Log
	}
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
}

// Run sends due reports until ctx is done.
func (s *StatusSender) Run(ctx context.Context) {
	s.setup()
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	for {
		for s.Round(ctx) == claimBatch && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// Wake makes Run read the outbox now. It never blocks.
func (s *StatusSender) Wake() {
	s.setup()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Round claims the due reports, sends them in order and returns how many
// it claimed. A deployment whose report must wait keeps its later reports
// waiting with it.
func (s *StatusSender) Round(ctx context.Context) int {
	s.setup()
	cfg := s.Config()
	timeout := cfg.Notify.AttemptTimeout()
	msgs, err := s.Store.ClaimOutbox(ctx, store.OutboxForgeStatus, claimBatch, 2*timeout+time.Minute)
	if err != nil {
		s.Log.Error("claim due forge status reports", "err", err)
		return 0
	}
	sortByID(msgs)
	held := map[int64]time.Time{} // deployment → when its waiting report is due
	for _, m := range msgs {
		if m.DeploymentID != nil {
			if due, ok := held[*m.DeploymentID]; ok {
				s.record(ctx, m, store.OutboxAttempt{At: s.Now(), Outcome: store.OutboxFailed, Error: "waits for an earlier report of its deployment", Next: due})
				continue
			}
		}
		if next, waits := s.sendOne(ctx, cfg, m, timeout); waits && m.DeploymentID != nil {
			held[*m.DeploymentID] = next
		}
	}
	return len(msgs)
}

// sendOne makes one attempt at m and records it; waits says the report
// is due again at next.
func (s *StatusSender) sendOne(ctx context.Context, cfg *config.Config, m store.OutboxMessage, timeout time.Duration) (next time.Time, waits bool) {
	scrub := scrubber(cfg.SecretValues())
	start := s.Now()
	rec := store.OutboxAttempt{At: start, Outcome: store.OutboxSent}
	log := s.Log.With("forge_status", m.ID, "forge", m.Target, "state", m.Event, "attempt", m.Attempts+1)
	var r forgestatus.Report
	err := json.Unmarshal([]byte(m.Payload), &r)
	apiURL, token, ok := cfg.Git.StatusOf(m.Target)
	switch {
	case err != nil:
		err = fmt.Errorf("read the report: %w", err)
	case !ok:
		err = fmt.Errorf("git.%s.status is no longer configured", m.Target)
	default:
		r.APIURL, r.Token = apiURL, token.Reveal()
		actx, cancel := context.WithTimeout(ctx, timeout)
		_, err = s.Client.Send(actx, r)
		cancel()
	}
	rec.Duration = s.Now().Sub(start)
	retry, after := forgestatus.Retry(err)
	switch {
	case err == nil:
		log.Info("forge status sent")
	case retry && m.Attempts+1 < cfg.Notify.Attempts():
		rec.Outcome, rec.Error = store.OutboxFailed, scrub(err.Error())
		rec.Next = start.Add(max(after, s.backoff.backoff(m.Attempts+1)))
		log.Warn("forge status not sent; will retry", "err", rec.Error, "next", rec.Next)
	default:
		rec.Outcome, rec.Error = store.OutboxGivenUp, scrub(err.Error())
		log.Error("forge status given up", "err", rec.Error)
	}
	s.record(ctx, m, rec)
	return rec.Next, rec.Outcome == store.OutboxFailed
}

func (s *StatusSender) record(ctx context.Context, m store.OutboxMessage, a store.OutboxAttempt) {
	if err := s.Store.RecordOutboxAttempt(ctx, m.ID, a); err != nil {
		s.Log.Error("record a forge status attempt", "id", m.ID, "err", err)
	}
}

func sortByID(msgs []store.OutboxMessage) {
	slices.SortFunc(msgs, func(a, b store.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
}

// isFullSHA reports whether s is a whole commit id, as the forges take.
func isFullSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}
