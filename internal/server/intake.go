package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/store"
)

// Outcomes of a request that are not stored outcomes, for metrics and
// logs: the request never became a recorded delivery.
const (
	outcomeRateLimited = "rate_limited"
	outcomeBadRequest  = "bad_request"
	outcomeUnavailable = "unavailable"
	outcomeQueueFull   = "queue_full"
)

// forgeKeys is how one forge's deliveries are authenticated: every
// accepted secret, and for each the fraise it is restricted to ("" for the
// forge's own secrets, which cover every fraise).
type forgeKeys struct {
	configured    bool
	allowUnsigned bool
	secrets       [][]byte
	owners        []string
}

func buildKeys(cfg *config.Config) map[forge.Kind]forgeKeys {
	sections := map[forge.Kind]*config.Forge{
		forge.GitHub: cfg.Git.GitHub, forge.GitLab: cfg.Git.GitLab, forge.Gitea: cfg.Git.Gitea,
		forge.Bitbucket: cfg.Git.Bitbucket, forge.BitbucketServer: cfg.Git.BitbucketServer,
	}
	keys := map[forge.Kind]forgeKeys{}
	for kind, sec := range sections {
		if sec == nil {
			continue
		}
		k := forgeKeys{configured: true, allowUnsigned: sec.AllowUnsigned}
		for _, s := range sec.AcceptedSecrets() {
			k.secrets = append(k.secrets, []byte(s.Reveal()))
			k.owners = append(k.owners, "")
		}
		for _, name := range cfg.FraiseNames() {
			for _, s := range cfg.Fraises[name].Webhook.AcceptedSecrets() {
				k.secrets = append(k.secrets, []byte(s.Reveal()))
				k.owners = append(k.owners, name)
			}
		}
		keys[kind] = k
	}
	return keys
}

// answer is the JSON body of every /webhook response.
type answer struct {
	Outcome        string         `json:"outcome"`
	Reason         string         `json:"reason,omitempty"`
	WebhookEventID int64          `json:"webhook_event_id,omitempty"`
	Forge          string         `json:"forge,omitempty"`
	DeliveryID     string         `json:"delivery_id,omitempty"`
	Duplicate      bool           `json:"duplicate,omitempty"`
	Deployments    []queuedAnswer `json:"deployments,omitempty"`
}

type queuedAnswer struct {
	Fraise       string `json:"fraise"`
	Environment  string `json:"environment"`
	DeploymentID int64  `json:"deployment_id"`
	// Superseded is the waiting deployment this request superseded: one
	// that no webhook queued (a requeue, the CLI).
	Superseded int64 `json:"superseded,omitempty"`
	// ReplacedEvent is the webhook event whose waiting request this one
	// replaced in place: DeploymentID, which carried it, deploys this
	// push's commit now.
	ReplacedEvent int64 `json:"replaced_webhook_event_id,omitempty"`
	// Folded: a newer push recorded in the same batch replaced this one
	// before it was queued; DeploymentID is the newer push's deployment.
	Folded bool `json:"folded,omitempty"`
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	kindName := "unknown"
	outcome := func(o string) {
		s.metrics.webhook(kindName, o, time.Since(start))
	}
	client := s.clientAddr(r)
	if !s.limits.allow(client, start) {
		outcome(outcomeRateLimited)
		w.Header().Set("Retry-After", "1")
		s.reply(w, http.StatusTooManyRequests, answer{Outcome: outcomeRateLimited, Reason: "too many requests: rate limit"})
		return
	}

	var (
		kind forge.Kind
		err  error
	)
	if name := r.PathValue("forge"); name != "" {
		kind, err = forge.ParseKind(name)
		if err != nil {
			outcome(outcomeBadRequest)
			s.reply(w, http.StatusNotFound, answer{Outcome: outcomeBadRequest,
				Reason: fmt.Sprintf("unknown forge %q in the path: use one of %s", clip(name, 40), kindList())})
			return
		}
	} else if kind, err = forge.Detect(r.Header); err != nil {
		outcome(outcomeBadRequest)
		s.reply(w, http.StatusBadRequest, answer{Outcome: outcomeBadRequest,
			Reason: "no forge's event headers: post to /webhook/{forge} or send the forge's own headers"})
		return
	}
	kindName = string(kind)
	keys := s.keys[kind]
	// From here every path but an unreadable body ends in record, whose
	// submit takes the delivery off the count of those on their way to
	// the writer.
	s.writer.coming.Add(1)

	form := false
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == "application/json":
	case err == nil && mt == "application/x-www-form-urlencoded" && kind == forge.GitHub:
		// GitHub's default content type: the JSON is the payload field.
		form = true
	default:
		s.record(w, r, kindName, start, rejected(kind, r, client, start,
			fmt.Sprintf("content type %q: send application/json", clip(ct, 80))), http.StatusUnsupportedMediaType)
		return
	}

	// A body announced larger than the limit is refused without reading a
	// byte of it: under attack that is where the memory and CPU would go.
	if r.ContentLength > s.bodyLimit {
		s.record(w, r, kindName, start, rejected(kind, r, client, start,
			fmt.Sprintf("body of %d bytes over the limit of %d bytes (server.body_limit)", r.ContentLength, s.bodyLimit)), http.StatusRequestEntityTooLarge)
		return
	}
	// Bodies being read share a byte budget, so that many slow or large
	// requests at once cannot take the memory: one whose size is unknown
	// (chunked) reserves the whole limit.
	reserve := s.bodyLimit
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if !s.bodyBudget.take(reserve) {
		s.writer.coming.Add(-1)
		outcome(outcomeQueueFull)
		w.Header().Set("Retry-After", "1")
		s.reply(w, http.StatusTooManyRequests, answer{Outcome: outcomeQueueFull, Forge: kindName,
			Reason: "fraisier is busy: too many request bodies being read at once; retry"})
		return
	}
	defer s.bodyBudget.give(reserve)
	buf := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bodyPool.Put(buf)
		}
	}()
	buf.Reset()
	if r.ContentLength > 0 {
		// One allocation of the announced size, not doublings up to it.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.bodyLimit)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.record(w, r, kindName, start, rejected(kind, r, client, start,
				fmt.Sprintf("body over the limit of %d bytes (server.body_limit)", s.bodyLimit)), http.StatusRequestEntityTooLarge)
			return
		}
		s.writer.coming.Add(-1)
		outcome(outcomeBadRequest)
		s.reply(w, http.StatusBadRequest, answer{Outcome: outcomeBadRequest, Forge: kindName, Reason: "could not read the body"})
		return
	}
	body := buf.Bytes()

	event := rejected(kind, r, client, start, "").Event
	if !keys.configured {
		event.Outcome, event.Reason = store.OutcomeRejected, fmt.Sprintf("%s is not configured: add a git.%s section to accept its webhooks", kind, kind)
		s.record(w, r, kindName, start, store.Intake{Event: event}, http.StatusForbidden)
		return
	}
	matched, err := forge.Authenticate(kind, r.Header, body, keys.secrets, keys.allowUnsigned, start)
	if err != nil {
		// Not with its delivery id: a forged request must not take the id
		// of a real delivery and make it look like a redelivery.
		reason := err.Error()
		if id := forge.DeliveryID(kind, r.Header); id != "" {
			reason += " (claimed delivery id " + id + ")"
		}
		event.Outcome, event.Reason = store.OutcomeRejected, reason
		s.record(w, r, kindName, start, store.Intake{Event: event}, http.StatusUnauthorized)
		return
	}
	event.DeliveryID = forge.DeliveryID(kind, r.Header)
	owner := ""
	if matched >= 0 {
		owner = keys.owners[matched]
	}

	payload := body
	if form {
		v, err := url.ParseQuery(string(body))
		if err != nil || v.Get("payload") == "" {
			event.Outcome, event.Reason = store.OutcomeRejected, "form-encoded delivery without a payload field"
			s.record(w, r, kindName, start, store.Intake{Event: event}, http.StatusBadRequest)
			return
		}
		payload = []byte(v.Get("payload"))
	}
	ev, err := forge.Parse(kind, r.Header, payload)
	if err != nil {
		event.Outcome, event.Reason = store.OutcomeRejected, clip(err.Error(), 300)
		s.record(w, r, kindName, start, store.Intake{Event: event}, http.StatusBadRequest)
		return
	}
	it := s.route(ev, owner)
	it.Event.RemoteAddr, it.Event.ReceivedAt = client, start
	status := http.StatusOK
	if len(it.Requests) > 0 {
		status = http.StatusAccepted
	}
	s.record(w, r, kindName, start, it, status)
}

// record stores the delivery, then answers: nothing is answered before it
// is durable. A duplicate delivery gets the answer the first one got.
func (s *Server) record(w http.ResponseWriter, r *http.Request, kind string, start time.Time, it store.Intake, status int) {
	res, err := s.writer.submit(r.Context(), it)
	switch {
	case errors.Is(err, errQueueFull):
		s.metrics.webhook(kind, outcomeQueueFull, time.Since(start))
		w.Header().Set("Retry-After", "1")
		s.reply(w, http.StatusTooManyRequests, answer{Outcome: outcomeQueueFull, Forge: kind,
			Reason: "fraisier is busy: too many deliveries waiting to be recorded; retry"})
		return
	case err != nil:
		s.log.Error("record webhook", "forge", kind, "delivery", it.Event.DeliveryID, "err", err)
		s.metrics.webhook(kind, outcomeUnavailable, time.Since(start))
		s.reply(w, http.StatusServiceUnavailable, answer{Outcome: outcomeUnavailable, Forge: kind,
			Reason: "the delivery could not be recorded; retry"})
		return
	}
	ev := res.Event
	a := answer{Outcome: ev.Outcome, Reason: ev.Reason, WebhookEventID: ev.ID, Forge: kind, DeliveryID: ev.DeliveryID, Duplicate: res.Duplicate}
	for _, q := range res.Queued {
		a.Deployments = append(a.Deployments, queuedAnswer{Fraise: q.Fraise, Environment: q.Environment,
			DeploymentID: q.DeploymentID, Superseded: q.Superseded, ReplacedEvent: q.Replaced, Folded: q.Folded})
	}
	if res.Duplicate {
		status = http.StatusOK
		switch ev.Outcome {
		case store.OutcomeAccepted, store.OutcomeSuperseded:
			status = http.StatusAccepted
		case store.OutcomeRejected:
			status = http.StatusBadRequest
		}
		s.metrics.webhook(kind, store.OutcomeDuplicate, time.Since(start))
	} else {
		s.metrics.webhook(kind, ev.Outcome, time.Since(start))
	}
	level := slog.LevelInfo
	switch ev.Outcome {
	case store.OutcomeRejected:
		level = slog.LevelWarn
	case store.OutcomeSuperseded:
		// A burst's replaced pushes: each is recorded (fraisier webhooks)
		// and the push that replaced them is logged; a line each would
		// cost more than recording them.
		level = slog.LevelDebug
	}
	if s.log.Enabled(context.Background(), level) {
		s.log.Log(context.Background(), level, "webhook", "forge", kind, "delivery", ev.DeliveryID, "event", ev.EventType,
			"repository", ev.Repository, "ref", ev.Ref, "sha", ev.SHA, "outcome", ev.Outcome, "reason", ev.Reason,
			"duplicate", res.Duplicate, "deployments", ev.DeploymentIDs, "remote", ev.RemoteAddr, "status", status)
	}
	s.reply(w, status, a)
}

// rejected is the record of a delivery refused before it was parsed. It
// never carries the delivery id: the request is not known to come from
// the forge, and must not take the id of a real delivery.
func rejected(kind forge.Kind, r *http.Request, client string, received time.Time, reason string) store.Intake {
	return store.Intake{Event: store.WebhookEvent{Forge: string(kind), EventType: printable(eventHeader(kind, r.Header), 128),
		Outcome: store.OutcomeRejected, Reason: reason, RemoteAddr: client, ReceivedAt: received}}
}

// route decides what a parsed, authenticated delivery deploys. owner is
// the fraise whose own secret signed it, or "" for a forge secret.
func (s *Server) route(ev forge.Event, owner string) store.Intake {
	rec := store.WebhookEvent{Forge: string(ev.Forge), DeliveryID: ev.DeliveryID, EventType: ev.EventType,
		Repository: ev.Repository.FullName, Sender: ev.Sender}
	ignore := func(reason string) store.Intake {
		rec.Outcome, rec.Reason = store.OutcomeIgnored, reason
		return store.Intake{Event: rec}
	}
	switch ev.Type {
	case forge.Ping:
		return ignore("ping: " + string(ev.Forge) + " reaches fraisier")
	case forge.PullRequest:
		return s.routePullRequest(ev, owner, rec)
	case forge.Push:
	default:
		return ignore(fmt.Sprintf("%q events are not deployed", ev.EventType))
	}
	if len(ev.Changes) == 0 {
		return ignore("a push that moved no ref")
	}
	first := ev.Changes[0]
	rec.Ref, rec.SHA = first.Ref, first.After

	names := append([]string{ev.Repository.FullName}, ev.Repository.CloneURLs...)
	byTarget := map[store.Target]store.QueueRequest{}
	var reasons []string
	for _, c := range ev.Changes {
		if c.Deleted {
			reasons = append(reasons, "deletion of "+c.Ref+" never deploys")
			continue
		}
		envs := s.router.Match(names, c.Ref)
		if len(envs) == 0 {
			switch {
			case c.IsTag:
				reasons = append(reasons, fmt.Sprintf("no environment deploys tag %s of %s (tags deploy only where an environment sets tags:)", c.Name, ev.Repository.FullName))
			default:
				reasons = append(reasons, fmt.Sprintf("no environment deploys branch %s of %s", c.Name, ev.Repository.FullName))
			}
			continue
		}
		for _, e := range envs {
			if why := notCovered(owner, e); why != "" {
				reasons = append(reasons, why)
				continue
			}
			fraise, envName := e.Target()
			t := store.Target{Fraise: fraise, Environment: envName}
			// Several refs of one push routed to one target: the last wins,
			// as it would had they been pushed one after the other.
			byTarget[t] = store.QueueRequest{Target: t, SHA: c.After, Ref: c.Ref, Trigger: store.TriggerWebhook,
				Actor: actorOf(ev)}
			rec.Ref, rec.SHA = c.Ref, c.After
		}
	}
	if len(byTarget) == 0 {
		return ignore(strings.Join(dedupe(reasons), "; "))
	}
	reqs := make([]store.QueueRequest, 0, len(byTarget))
	for _, q := range byTarget {
		reqs = append(reqs, q)
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].Target.String() < reqs[j].Target.String() })
	rec.Outcome = store.OutcomeAccepted
	if len(reasons) > 0 {
		rec.Reason = strings.Join(dedupe(reasons), "; ")
	}
	return store.Intake{Event: rec, Requests: reqs}
}

// routePullRequest queues the head of a pull request opened, reopened or
// updated against a branch that an environment's pull_requests matches;
// every other pull request event is recorded and ignored, with the reason.
func (s *Server) routePullRequest(ev forge.Event, owner string, rec store.WebhookEvent) store.Intake {
	ignore := func(reason string) store.Intake {
		rec.Outcome, rec.Reason = store.OutcomeIgnored, reason
		return store.Intake{Event: rec}
	}
	pr := ev.PullRequest
	if pr == nil {
		return ignore("a pull request event without a pull request")
	}
	rec.Ref, rec.SHA = "refs/heads/"+pr.SourceBranch, pr.HeadSHA
	what := fmt.Sprintf("pull request #%d %s", pr.Number, pr.Action)
	names := append([]string{ev.Repository.FullName}, ev.Repository.CloneURLs...)
	envs := s.router.MatchPullRequest(names, pr.TargetBranch)
	if len(envs) == 0 {
		return ignore(fmt.Sprintf("%s: no environment deploys pull requests against %s of %s (pull requests deploy only where an environment sets pull_requests:)",
			what, pr.TargetBranch, ev.Repository.FullName))
	}
	ref := forge.PullRequestRef(ev.Forge, pr.Number)
	switch {
	case !forge.HeadUpdated(ev.Forge, pr.Action):
		return ignore(what + ": only a pull request opened, reopened or updated deploys its head")
	case pr.HeadSHA == "":
		return ignore(what + ": the forge sent no full commit for its head")
	case !pr.SameRepository:
		// On a public repository anyone can open one: deploying it would
		// run anyone's code, with the environment's secrets.
		return ignore(what + ": its head is in a fork, or the forge did not say where; pull requests from forks never deploy")
	case ref == "":
		return ignore(what + ": " + string(ev.Forge) + " keeps no ref of the head in the repository to fetch it from")
	}
	var reqs []store.QueueRequest
	var reasons []string
	for _, e := range envs {
		if why := notCovered(owner, e); why != "" {
			reasons = append(reasons, why)
			continue
		}
		fraise, envName := e.Target()
		t := store.Target{Fraise: fraise, Environment: envName}
		reqs = append(reqs, store.QueueRequest{Target: t, SHA: pr.HeadSHA, Ref: ref, Trigger: store.TriggerWebhook, Actor: actorOf(ev)})
	}
	if len(reqs) == 0 {
		return ignore(strings.Join(dedupe(reasons), "; "))
	}
	rec.Outcome, rec.Reason = store.OutcomeAccepted, strings.Join(dedupe(reasons), "; ")
	return store.Intake{Event: rec, Requests: reqs}
}

// notCovered says why a delivery signed with fraise owner's own secret
// ("" for a forge secret, which covers every fraise) may not deploy e, or
// is "" when it may.
func notCovered(owner string, e *config.Environment) string {
	if fraise, _ := e.Target(); owner != "" && fraise != owner {
		return fmt.Sprintf("signed with fraise %s's own secret, which does not cover %s", owner, e.ID())
	}
	return ""
}

func actorOf(ev forge.Event) string {
	if ev.Sender == "" {
		return string(ev.Forge)
	}
	return ev.Sender + " via " + string(ev.Forge)
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// eventHeader is the event type a forge's headers claim, for the record of
// a delivery that is refused before it is parsed.
func eventHeader(k forge.Kind, h http.Header) string {
	switch k {
	case forge.GitHub:
		return h.Get("X-GitHub-Event")
	case forge.GitLab:
		return h.Get("X-Gitlab-Event")
	case forge.Gitea:
		if v := h.Get("X-Forgejo-Event"); v != "" {
			return v
		}
		return h.Get("X-Gitea-Event")
	}
	return h.Get("X-Event-Key")
}

func kindList() string {
	var names []string
	for _, k := range forge.Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// printable keeps a header value fit for a record: printable ASCII, capped.
func printable(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	return s
}

// clip caps a string from a request for an answer or a log line.
func clip(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// errQueueFull is returned by submit when more deliveries wait to be
// recorded than the writer holds.
var errQueueFull = errors.New("intake queue full")

// intakeLinger bounds how long the writer waits for deliveries on their
// way in before it writes a batch. A transaction costs about a
// millisecond however few deliveries it carries; on a busy server the
// writer that commits whatever has arrived writes small batches, and its
// fixed costs take the CPU the handlers need to bring the next ones: a
// short wait for them makes the batches, and the rate, several times
// larger. A delivery alone is never held: the writer waits only while
// others are being received, or while the server is busy (below).
const intakeLinger = 2 * time.Millisecond

// Group commit under load. Deliveries being received are not all the
// ones coming: under load, senders whose last delivery was just answered
// send their next one while the writer commits, and a writer that starts
// as soon as nobody is being received writes a few at a time (4 to 5 on
// the benchmark's 32 connections), its commits' fixed cost, a few hundred
// microseconds, carried by each. So while deliveries arrive faster than
// gatherRate a second (faster than commits of one each could keep up
// with; counted over the last rateWindow or more, an idle pause
// included), a batch that follows a commit of several deliveries waits up
// to intakeGather for gatherBatch: measured on 2 cores against the
// benchmark's baseline in the same period, batches of 15 instead of 4.6,
// 0.79 of the baseline's rate instead of 0.67 (medians of 3 rounds), and
// a p99 of 12 ms instead of 17. Below that rate nothing waits: at 1,000 a second,
// waiting after every commit of several added 3 ms to the median and
// saved nothing.
const (
	intakeGather = time.Millisecond
	gatherBatch  = 16
	gatherRate   = 2000
	// rateWindow is how long the arrival rate is counted over.
	rateWindow = 100 * time.Millisecond
)

// intakeWriter is the single writer of deliveries. It commits everything
// waiting in one transaction, so that under load each commit carries many
// deliveries instead of each delivery paying for its own.
type intakeWriter struct {
	store    Store
	mu       sync.RWMutex
	closed   bool
	in       chan *pendingIntake
	maxBatch int
	// gather, gatherBatch and gatherRate are the group commit's (the
	// constants of those names, but in tests).
	gather      time.Duration
	gatherBatch int
	gatherRate  float64
	// coming counts the deliveries being received that will be submitted:
	// past the forge's detection, not yet handed to the writer.
	coming atomic.Int64
	wake   func()
	log    interface {
		Error(msg string, args ...any)
	}
}

type pendingIntake struct {
	item  store.Intake
	reply chan intakeReply
}

type intakeReply struct {
	res store.IntakeResult
	err error
}

var pendingPool = sync.Pool{New: func() any { return &pendingIntake{reply: make(chan intakeReply, 1)} }}

func (w *intakeWriter) submit(ctx context.Context, it store.Intake) (store.IntakeResult, error) {
	// Off the count before the send: after it, the writer could see a
	// delivery it already holds as one still on its way, and wait for it.
	w.coming.Add(-1)
	p := pendingPool.Get().(*pendingIntake)
	p.item = it
	// Read-locked so that close cannot close in while a handler that
	// outlived the shutdown's deadline sends on it.
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		pendingPool.Put(p)
		return store.IntakeResult{}, errClosed
	}
	select {
	case w.in <- p:
		w.mu.RUnlock()
	default:
		w.mu.RUnlock()
		pendingPool.Put(p)
		return store.IntakeResult{}, errQueueFull
	}
	// The writer always replies, even if the client went away: the
	// delivery may be recorded, and the reply channel is reused.
	r := <-p.reply
	p.item = store.Intake{}
	pendingPool.Put(p)
	return r.res, r.err
}

// errClosed is returned by submit once the server is shutting down.
var errClosed = errors.New("the server is shutting down")

// close stops taking deliveries; run returns once the ones taken are
// written.
func (w *intakeWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.in)
	}
}

// run writes until in is closed and drained.
func (w *intakeWriter) run() {
	batch := make([]*pendingIntake, 0, w.maxBatch)
	items := make([]store.Intake, 0, w.maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var (
		// The arrival rate, deliveries a second, counted over windows of
		// at least rateWindow.
		rate        float64
		windowStart = time.Now()
		windowCount int
		lastBatch   int
	)
	for p := range w.in {
		batch, items = append(batch[:0], p), append(items[:0], p.item)
		// Counted as the batch begins, so that an idle pause since the
		// last one lowers the rate before it decides anything.
		if d := time.Since(windowStart); d >= rateWindow {
			rate = float64(windowCount) / d.Seconds()
			windowStart, windowCount = time.Now(), 0
		}
		busy := lastBatch > 1 && rate >= w.gatherRate
		waiting := false
	more:
		for len(batch) < w.maxBatch {
			select {
			case p, ok := <-w.in:
				if !ok {
					break more
				}
				batch, items = append(batch, p), append(items, p.item)
				continue
			default:
			}
			// Nothing more has arrived: wait, a little, for the
			// deliveries being received and, when busy, for a batch
			// worth a commit.
			receiving := w.coming.Load() > 0
			gathering := busy && len(batch) < w.gatherBatch
			if !receiving && !gathering {
				break
			}
			if !waiting {
				// One deadline per batch: the longer wait of those that
				// apply now.
				waiting = true
				var wait time.Duration
				if receiving {
					wait = intakeLinger
				}
				if gathering {
					wait = max(wait, w.gather)
				}
				linger.Reset(wait)
			}
			select {
			case p, ok := <-w.in:
				if !ok {
					break more
				}
				batch, items = append(batch, p), append(items, p.item)
			case <-linger.C:
				waiting = false
				break more
			}
		}
		if waiting {
			linger.Stop() // since Go 1.23, no stale tick is left behind
		}
		lastBatch = len(batch)
		windowCount += len(batch)
		w.write(batch, items)
	}
}

func (w *intakeWriter) write(batch []*pendingIntake, items []store.Intake) {
	// The records must be written even while the server shuts down: the
	// deliveries were received and their senders wait for the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := w.store.RecordIntake(ctx, items)
	// One bad item fails the whole transaction: write them one by one so
	// that only that one fails. Not when the database itself failed (busy
	// past its timeout, unreachable, out of time): each item would wait as
	// long again, and the writer would stall for the batch's size times
	// that, with every sender waiting behind it.
	if err != nil && len(batch) > 1 && !store.IsUnavailable(err) && ctx.Err() == nil {
		for _, p := range batch {
			w.write([]*pendingIntake{p}, []store.Intake{p.item})
		}
		return
	}
	queued := false
	for i, p := range batch {
		if err != nil {
			p.reply <- intakeReply{err: err}
			continue
		}
		if len(res[i].Queued) > 0 && !res[i].Duplicate {
			queued = true
		}
		p.reply <- intakeReply{res: res[i]}
	}
	if queued && w.wake != nil {
		w.wake()
	}
}

// byteBudget bounds the bytes of request bodies held at once.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

func (b *byteBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *byteBudget) give(n int64) { b.used.Add(-n) }
