package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// Store is what notifications need of the state database.
type Store interface {
	Deployment(ctx context.Context, id int64) (store.Deployment, error)
	Steps(ctx context.Context, deploymentID int64) ([]store.Step, error)
	Locks(ctx context.Context) ([]store.Lock, error)
	QueuedDeployments(ctx context.Context) ([]store.Deployment, error)
	EnqueueOutbox(ctx context.Context, msgs ...store.OutboxMessage) ([]int64, error)
	ClaimOutbox(ctx context.Context, kind store.OutboxKind, limit int, lease time.Duration) ([]store.OutboxMessage, error)
	RecordOutboxAttempt(ctx context.Context, id int64, a store.OutboxAttempt) error
	OutboxCounts(ctx context.Context, kind store.OutboxKind) (map[store.OutboxState]int64, error)
	PruneOutbox(ctx context.Context, keep time.Duration) (int64, error)
}

// Subjects returns the subject of each commit it can find, by SHA, for
// fraise/environment's repository. It may return fewer, or none.
type Subjects func(ctx context.Context, fraise, environment string, shas ...string) map[string]string

// Notifier turns what happened into outbox messages, one per target a
// route sends the event to. Its methods only write to the state database,
// and never return an error: a message that cannot be queued is logged
// and counted, and whatever reported it carries on.
type Notifier struct {
	Store Store
	// Config returns the configuration in use (serve swaps it on reload).
	Config   func() *config.Config
	Subjects Subjects
	Log      *slog.Logger
	Metrics  *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	pending sync.WaitGroup
	refused map[string]time.Time
	// seen keys the lock_held and queue_stuck messages already sent.
	seen map[string]bool
}

// refusedEvery is how often a bad-signature refusal is reported per forge:
// anyone can send them, as fast as the rate limit lets.
const refusedEvery = 10 * time.Minute

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Notifier) log() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Log
}

// Deployment queues the messages for deployment id, which has just ended.
// A status no event stands for (queued, running, superseded) sends nothing.
func (n *Notifier) Deployment(ctx context.Context, id int64, took time.Duration) {
	ctx = context.WithoutCancel(ctx)
	d, err := n.Store.Deployment(ctx, id)
	if err != nil {
		n.dropped(fmt.Errorf("read deployment %d to notify: %w", id, err))
		return
	}
	event := deploymentEvent(d.Status)
	if event == "" {
		return
	}
	cfg := n.Config()
	targets := cfg.Notify.TargetsFor(event, d.Fraise, d.Environment)
	if len(targets) == 0 {
		return
	}
	m := n.deploymentMessage(ctx, cfg, d, event, took)
	n.enqueue(ctx, m, targets, &d.ID)
}

func (n *Notifier) deploymentMessage(ctx context.Context, cfg *config.Config, d store.Deployment, event string, took time.Duration) Message {
	scrub := scrubber(cfg.SecretValues())
	m := Message{
		Version: 1, Event: event, Fraise: d.Fraise, Environment: d.Environment, Deployment: d.ID,
		Status: string(d.Status), Trigger: string(d.Trigger), Actor: scrub(d.Actor),
		DurationMS: d.DurationMS, Error: clip(scrub(d.Error), maxError),
		Show: fmt.Sprintf("fraisier show %d", d.ID), At: n.now().UTC(),
	}
	if m.DurationMS == 0 {
		m.DurationMS = took.Milliseconds()
	}
	if d.NewSHA != "" {
		m.To = &Commit{SHA: d.NewSHA}
		if d.OldSHA != "" {
			m.From = &Commit{SHA: d.OldSHA}
		}
		if n.Subjects != nil {
			subjects := n.Subjects(ctx, d.Fraise, d.Environment, d.OldSHA, d.NewSHA)
			m.To.Subject = scrub(subjects[d.NewSHA])
			if m.From != nil {
				m.From.Subject = scrub(subjects[d.OldSHA])
			}
		}
	}
	if event != EventSucceeded && event != EventSkipped {
		steps, err := n.Store.Steps(ctx, d.ID)
		if err != nil {
			n.log().Warn("read the steps of a deployment to notify", "deployment", d.ID, "err", scrub(err.Error()))
		}
		m.FailedStep = failedStep(steps, scrub)
	}
	return m
}

// Refused reports a webhook refused for a bad signature, at most once per
// forge every refusedEvery. It never blocks: the message is queued in the
// background.
func (n *Notifier) Refused(forge, reason string) {
	now := n.now()
	n.mu.Lock()
	if n.refused == nil {
		n.refused = map[string]time.Time{}
	}
	last, ok := n.refused[forge]
	if ok && now.Sub(last) < refusedEvery {
		n.mu.Unlock()
		return
	}
	n.refused[forge] = now
	n.pending.Add(1)
	n.mu.Unlock()
	go n.refusedEvent(forge, reason, now)
}

func (n *Notifier) refusedEvent(forge, reason string, now time.Time) {
	defer n.pending.Done()
	n.event(context.Background(), Message{Version: 1, Event: EventRefused, At: now.UTC(),
		Detail: fmt.Sprintf("A request to the %s webhook was refused (%s); fraisier reports this at most every %s. "+
			"Run fraisier webhooks to see the refused deliveries.", forge, strings.ReplaceAll(reason, "_", " "), refusedEvery)})
}

// Wait waits for the messages Refused is queueing in the background.
func (n *Notifier) Wait() { n.pending.Wait() }

// event queues m for the targets of its event (and its environment, when
// it has one).
func (n *Notifier) event(ctx context.Context, m Message) {
	targets := n.Config().Notify.TargetsFor(m.Event, m.Fraise, m.Environment)
	if len(targets) > 0 {
		n.enqueue(ctx, m, targets, nil)
	}
}

func (n *Notifier) enqueue(ctx context.Context, m Message, targets []string, deployment *int64) {
	payload, err := json.Marshal(m)
	if err != nil {
		n.dropped(fmt.Errorf("encode %s message: %w", m.Event, err))
		return
	}
	msgs := make([]store.OutboxMessage, len(targets))
	for i, t := range targets {
		msgs[i] = store.OutboxMessage{Kind: store.OutboxNotification, Target: t, Event: m.Event,
			DeploymentID: deployment, Payload: string(payload)}
	}
	if _, err := n.Store.EnqueueOutbox(ctx, msgs...); err != nil {
		n.dropped(err)
		return
	}
	n.Metrics.enqueued(len(msgs))
}

// dropped logs and counts a message that could not be queued.
func (n *Notifier) dropped(err error) {
	n.log().Error("notification not queued", "err", err)
	n.Metrics.outcome("enqueue_failed")
}
