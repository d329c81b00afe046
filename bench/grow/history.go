package grow

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

var (
	fraises = []string{"api", "web", "worker", "billing", "auth", "search", "mailer", "reports", "gateway", "admin"}
	forges  = []string{"github", "github", "github", "gitlab", "gitlab", "gitea"}
	people  = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
)

// generator makes the rows of one Populate.
type generator struct {
	rng   *rand.Rand
	now   int64
	nextD int64 // next deployment id
	nextW int64 // next webhook event id
	// sha is each target's current commit, as its succeeded deployments
	// leave it.
	sha  map[store.Target]string
	dep  *inserter
	hook *inserter
	link *inserter
}

func (g *generator) begin(tx *sql.Tx, b *backend) {
	g.hook = b.inserter(tx, "tb_webhook_event", "id", "forge", "delivery_id", "event_type",
		"repository", "ref", "sha", "sender", "outcome", "reason", "remote_addr", "received_at")
	g.dep = b.inserter(tx, "tb_deployment", "id", "fraise", "environment", "trigger", "actor",
		"requested_ref", "old_sha", "new_sha", "release", "status", "started_at", "finished_at", "duration_ms",
		"error", "webhook_event_id", "host", "pid")
	g.link = b.inserter(tx, "tb_webhook_deployment", "webhook_event_id", "deployment_id", "fraise")
}

func (g *generator) flush(ctx context.Context) error {
	for _, in := range []*inserter{g.hook, g.dep, g.link} {
		if err := in.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// history spreads the deployments over the year, six in ten of them made
// by a webhook event while events remain, and the other events among them.
func (g *generator) history(ctx context.Context, deployments, webhooks int) error {
	linked := min(webhooks, deployments*6/10)
	extra := webhooks - linked
	start := g.now - 365*dayMS
	span := float64(g.now - start)
	if deployments == 0 {
		for i := range extra {
			if err := g.extraWebhook(ctx, start+int64(span*float64(i)/float64(extra))); err != nil {
				return err
			}
		}
	}
	for i := range deployments {
		at := start + int64(span*(float64(i)+g.rng.Float64()*0.5)/float64(deployments))
		for range share(i, extra, deployments) {
			if err := g.extraWebhook(ctx, at-g.rng.Int64N(60000)); err != nil {
				return err
			}
		}
		if err := g.deployment(ctx, at, share(i, linked, deployments) == 1); err != nil {
			return err
		}
	}
	return nil
}

// share spreads total items evenly over n slots: how many go in slot i.
func share(i, total, n int) int {
	return (i+1)*total/n - i*total/n
}

func (g *generator) hex(n int) string {
	b := make([]byte, n/2)
	for i := 0; i < len(b); i += 8 {
		v := g.rng.Uint64()
		for j := i; j < min(i+8, len(b)); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return hex.EncodeToString(b)
}

func (g *generator) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *generator) target() store.Target {
	env := "production"
	switch r := g.rng.IntN(10); {
	case r < 4:
		env = "staging"
	case r < 6:
		env = "dev"
	}
	return store.Target{Fraise: g.pick(fraises), Environment: env}
}

func (g *generator) webhook(ctx context.Context, at int64, t store.Target, sha string, outcome store.Outcome, reason string) (int64, error) {
	id := g.nextW
	g.nextW++
	delivery := g.hex(32)
	if outcome == store.OutcomeDuplicate {
		delivery = "" // the first delivery holds the id; a copy is kept without it
	}
	err := g.hook.add(ctx, id, g.pick(forges), delivery, "push", "acme/"+t.Fraise, "refs/heads/"+t.Environment,
		sha, g.pick(people), outcome, reason, fmt.Sprintf("192.0.2.%d", g.rng.IntN(254)+1), at)
	return id, err
}

// extraWebhook is an event that led to no deployment.
func (g *generator) extraWebhook(ctx context.Context, at int64) error {
	outcome, reason := store.OutcomeIgnored, "branch not deployed"
	switch r := g.rng.IntN(100); {
	case r < 15:
		outcome, reason = store.OutcomeRejected, "bad signature"
	case r < 20:
		outcome, reason = store.OutcomeDuplicate, "delivery already processed"
	case r < 30:
		outcome, reason = store.OutcomeSuperseded, "a newer push replaced it"
	}
	_, err := g.webhook(ctx, at, g.target(), g.hex(40), outcome, reason)
	return err
}

// outcome draws how a deployment of t ended: its status, how long it took
// and its error.
func (g *generator) outcome(t store.Target) (status store.Status, duration int64, errText string) {
	status = store.StatusSucceeded
	switch r := g.rng.IntN(1000); {
	case r < 40:
		status = store.StatusFailed
	case r < 70:
		status = store.StatusRolledBack
	case r < 75:
		status = store.StatusRollbackFailed
	case r < 80:
		status = store.StatusInterrupted
	case r < 120:
		status = store.StatusSkipped
	case r < 140:
		status = store.StatusSuperseded
	}
	// Durations are log-normal around a per-fraise typical time.
	typical := 20000.0 + 15000.0*float64(len(t.Fraise))
	duration = int64(typical * math.Exp(0.5*g.rng.NormFloat64()))
	switch status {
	case store.StatusSkipped:
		duration = 200 + g.rng.Int64N(1500)
	case store.StatusSuperseded:
		duration = g.rng.Int64N(100)
	case store.StatusRolledBack, store.StatusRollbackFailed:
		duration = duration * 3 / 2
		errText = "health check failed: GET /health returned 503"
	case store.StatusFailed:
		duration /= 2
		errText = "build failed: exit status 1"
	case store.StatusInterrupted:
		errText = "deploying process died"
	}
	return status, duration, errText
}

// deployment adds one finished deployment started at at, made by a
// webhook event of its own when fromWebhook.
func (g *generator) deployment(ctx context.Context, at int64, fromWebhook bool) error {
	t := g.target()
	id := g.nextD
	g.nextD++
	newSHA := g.hex(40)
	oldSHA := g.sha[t]
	status, duration, errText := g.outcome(t)
	if status == store.StatusSucceeded {
		g.sha[t] = newSHA
	}
	trigger, actor := store.TriggerCLI, g.pick(people)
	var webhookID sql.NullInt64
	if fromWebhook {
		trigger = store.TriggerWebhook
		wid, err := g.webhook(ctx, at-g.rng.Int64N(2000), t, newSHA, store.OutcomeAccepted, "")
		if err != nil {
			return err
		}
		webhookID = sql.NullInt64{Int64: wid, Valid: true}
	} else {
		switch r := g.rng.IntN(10); {
		case r < 4:
			trigger, actor = store.TriggerPoll, "fraisier"
		case r < 5:
			trigger = store.TriggerRollback
		case r < 6:
			trigger, actor = store.TriggerSchedule, "fraisier"
		}
	}
	release := time.UnixMilli(at).UTC().Format("20060102-150405") + "-" + newSHA[:7]
	if err := g.dep.add(ctx, id, t.Fraise, t.Environment, trigger, actor, "refs/heads/main", oldSHA, newSHA, release,
		status, at, at+duration, duration, errText, webhookID, "deploy-1", 1000+g.rng.IntN(60000)); err != nil {
		return err
	}
	if webhookID.Valid {
		return g.link.add(ctx, webhookID.Int64, id, t.Fraise)
	}
	return nil
}
