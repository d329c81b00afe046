package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// Sender sends the outbox's notification messages in the background. Set
// the fields, then call Run once.
type Sender struct {
	Store Store
	// Config returns the configuration in use: targets are resolved from
	// it, by name, at each attempt.
	Config  func() *config.Config
	Log     *slog.Logger
	Metrics *Metrics
	// Client sends webhook+ messages; nil means a client with no timeout
	// of its own (each attempt is bounded by notify.timeout).
	Client *http.Client
	// Poll is how often the outbox is read (default 2s); Wake reads it at once.
	Poll time.Duration
	// BackoffBase is the wait after a first failed attempt, doubled after
	// each further one up to BackoffMax (defaults 30s and 1h), with a
	// random ±20%.
	BackoffBase, BackoffMax time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	wake chan struct{}
}

// claimBatch is how many messages a round claims.
const claimBatch = 16

func (s *Sender) setup() {
	if s.Poll <= 0 {
		s.Poll = 2 * time.Second
	}
	if s.BackoffBase <= 0 {
		s.BackoffBase = 30 * time.Second
	}
	if s.BackoffMax <= 0 {
		s.BackoffMax = time.Hour
	}
	if s.Client == nil {
		s.Client = &http.Client{}
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
}

// Run sends due messages until ctx is done, and prunes sent and given-up
// ones past notify.retention once an hour.
func (s *Sender) Run(ctx context.Context) {
	s.setup()
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	var pruned time.Time
	for {
		for s.Round(ctx) == claimBatch && ctx.Err() == nil {
		}
		if s.Now().Sub(pruned) > time.Hour {
			pruned = s.Now()
			if n, err := s.Store.PruneOutbox(ctx, s.Config().Notify.Keep()); err != nil {
				s.Log.Warn("prune the outbox", "err", err)
			} else if n > 0 {
				s.Log.Info("outbox pruned", "removed", n)
			}
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
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Round claims the due messages, sends them, records each attempt and
// returns how many it claimed.
func (s *Sender) Round(ctx context.Context) int {
	s.setup()
	cfg := s.Config()
	timeout := cfg.Notify.AttemptTimeout()
	msgs, err := s.Store.ClaimOutbox(ctx, store.OutboxNotification, claimBatch, 2*timeout+time.Minute)
	if err != nil {
		s.Log.Error("claim due notifications", "err", err)
		return 0
	}
	for _, m := range msgs {
		s.sendOne(ctx, cfg, m, timeout)
	}
	s.count(ctx)
	return len(msgs)
}

func (s *Sender) count(ctx context.Context) {
	counts, err := s.Store.OutboxCounts(ctx, store.OutboxNotification)
	if err != nil {
		return
	}
	s.Metrics.counts(counts[store.OutboxPending]+counts[store.OutboxFailed], counts[store.OutboxGivenUp])
}

// sendOne makes one attempt at m and records it.
func (s *Sender) sendOne(ctx context.Context, cfg *config.Config, m store.OutboxMessage, timeout time.Duration) {
	scrub := scrubber(cfg.SecretValues())
	start := s.Now()
	res, err := s.deliver(ctx, cfg, m, timeout)
	rec := store.OutboxAttempt{At: start, HTTPStatus: res.status, Duration: s.Now().Sub(start), Outcome: store.OutboxSent}
	log := s.Log.With("notification", m.ID, "target", m.Target, "event", m.Event, "attempt", m.Attempts+1)
	var permanent *permanentError
	switch {
	case err == nil:
		log.Info("notification sent", "http_status", res.status)
	case errors.As(err, &permanent) || m.Attempts+1 >= cfg.Notify.Attempts():
		rec.Outcome, rec.Error = store.OutboxGivenUp, clip(scrub(err.Error()), maxError)
		log.Error("notification given up", "err", rec.Error)
	default:
		wait := max(s.backoff(m.Attempts+1), min(res.retryAfter, s.BackoffMax))
		rec.Outcome, rec.Error, rec.Next = store.OutboxFailed, clip(scrub(err.Error()), maxError), start.Add(wait)
		log.Warn("notification not sent; it will be retried", "err", rec.Error, "retry_in", wait.Round(time.Millisecond).String())
	}
	if err := s.Store.RecordOutboxAttempt(context.WithoutCancel(ctx), m.ID, rec); err != nil {
		log.Error("record the notification attempt", "err", scrub(err.Error()))
	}
	switch rec.Outcome {
	case store.OutboxSent:
		s.Metrics.outcome("sent")
	case store.OutboxFailed:
		s.Metrics.outcome("retry")
	case store.OutboxGivenUp:
		s.Metrics.outcome("given_up")
	}
}

// permanentError is a failure no retry can mend: the target is gone from
// the configuration, or the payload is unreadable.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

func (s *Sender) deliver(ctx context.Context, cfg *config.Config, m store.OutboxMessage, timeout time.Duration) (attempt, error) {
	t := cfg.Notify.Targets[m.Target]
	if t == nil || t.URL == "" {
		return attempt{}, &permanentError{fmt.Sprintf("no target %q in the configuration any more", m.Target)}
	}
	var msg Message
	if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil {
		return attempt{}, &permanentError{"unreadable payload: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if strings.HasPrefix(strings.ToLower(t.URL.Reveal()), "webhook+") {
		res, err := sendWebhook(ctx, s.Client, t, m.ID, &msg, s.Now())
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		return res, err
	}
	return sendShoutrrr(ctx, t, &msg, timeout)
}

// backoff is the wait after the nth failed attempt: BackoffBase doubled
// n-1 times, at most BackoffMax, ±20%.
func (s *Sender) backoff(n int) time.Duration {
	d := s.BackoffBase
	for i := 1; i < n && d < s.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.BackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
