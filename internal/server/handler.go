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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/store"
)

// Outcomes of a request that are not stored outcomes, for metrics and
// logs: the request never became a recorded delivery.
const (
	outcomeRateLimited store.Outcome = "rate_limited"
	outcomeBadRequest  store.Outcome = "bad_request"
	outcomeUnavailable store.Outcome = "unavailable"
	outcomeQueueFull   store.Outcome = "queue_full"
	// outcomeReplay is a push delivered before under another delivery id,
	// recorded ignored.
	outcomeReplay store.Outcome = "replay"
)

// answer is the JSON body of every /webhook response.
type answer struct {
	Outcome        store.Outcome  `json:"outcome"`
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
	// HeldForChecks is the hold that keeps this push until the forge
	// reports its commit's checks (trigger: checks); DeploymentID is 0.
	HeldForChecks int64 `json:"held_for_checks,omitempty"`
	// RolloutID is the rollout across the environment's hosts that
	// carries this push (an environment with hosts:); DeploymentID is 0.
	RolloutID int64 `json:"rollout_id,omitempty"`
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handleWebhook takes a delivery as far as its body: the rate limit, the
// forge, the content type and the body's size; intake does the rest.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	client := s.clientAddr(r)
	if !s.limits.allow(sourceOf(client), start) {
		s.metrics.webhook("unknown", outcomeRateLimited, time.Since(start))
		w.Header().Set("Retry-After", "1")
		s.reply(w, http.StatusTooManyRequests, answer{Outcome: outcomeRateLimited, Reason: "too many requests: rate limit"})
		return
	}

	kind, ok := s.forgeOf(w, r, start)
	if !ok {
		return
	}
	kindName := string(kind)
	// From here every path but an unreadable body ends in record, whose
	// submit takes the delivery off the count of those on their way to
	// the writer.
	s.writer.coming.Add(1)

	ct := r.Header.Get("Content-Type")
	form, ok := formEncoded(kind, ct)
	if !ok {
		s.refuse(w, r, kindName, start, rejected(kind, r, client, start,
			fmt.Sprintf("content type %q: send application/json", clip(ct, 80))), http.StatusUnsupportedMediaType, refusedContentType)
		return
	}

	// A body announced larger than the limit is refused without reading a
	// byte of it: under attack that is where the memory and CPU would go.
	if r.ContentLength > s.bodyLimit {
		s.refuse(w, r, kindName, start, rejected(kind, r, client, start,
			fmt.Sprintf("body of %d bytes over the limit of %d bytes (server.body_limit)", r.ContentLength, s.bodyLimit)), http.StatusRequestEntityTooLarge, refusedTooLarge)
		return
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	if !s.readBody(w, r, kind, client, start, buf) {
		return
	}
	s.intake(w, r, kind, client, start, buf.Bytes(), form)
}

// intake authenticates a delivery whose body has been read, parses and
// routes it, then records it and answers.
func (s *Server) intake(w http.ResponseWriter, r *http.Request, kind forge.Kind, client string, start time.Time, body []byte, form bool) {
	kindName := string(kind)
	// One configuration from authentication to routing, whatever a reload
	// does meanwhile.
	table := s.table.Load()
	keys := table.keys[kind]
	event := rejected(kind, r, client, start, "").Event
	if !keys.configured {
		event.Outcome, event.Reason = store.OutcomeRejected, fmt.Sprintf("%s is not configured: add a git.%s section to accept its webhooks", kind, kind)
		s.refuse(w, r, kindName, start, store.Intake{Event: event}, http.StatusForbidden, refusedNotConfigured)
		return
	}
	who, err := keys.authenticate(kind, r.Header, body, client, start)
	if err != nil {
		// Not with its delivery id: a forged request must not take the id
		// of a real delivery and make it look like a redelivery.
		reason := err.Error()
		if id := forge.DeliveryID(kind, r.Header); id != "" {
			reason += " (claimed delivery id " + id + ")"
		}
		event.Outcome, event.Reason = store.OutcomeRejected, reason
		s.refuse(w, r, kindName, start, store.Intake{Event: event}, http.StatusUnauthorized, authRefusal(err))
		return
	}
	event.DeliveryID = forge.DeliveryID(kind, r.Header)

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
	it := table.route(ev, who)
	it.Event.RemoteAddr, it.Event.ReceivedAt = client, start
	status := http.StatusOK
	if len(it.Requests) > 0 {
		status = http.StatusAccepted
	}
	s.record(w, r, kindName, start, it, status)
}

// forgeOf is the forge a delivery names in its path, or else by its
// headers; when there is none it answers the request itself (ok false).
func (s *Server) forgeOf(w http.ResponseWriter, r *http.Request, start time.Time) (kind forge.Kind, ok bool) {
	var err error
	if name := r.PathValue("forge"); name != "" {
		if kind, err = forge.ParseKind(name); err != nil {
			s.metrics.webhook("unknown", outcomeBadRequest, time.Since(start))
			s.reply(w, http.StatusNotFound, answer{Outcome: outcomeBadRequest,
				Reason: fmt.Sprintf("unknown forge %q in the path: use one of %s", clip(name, 40), kindList())})
			return "", false
		}
		return kind, true
	}
	if kind, err = forge.Detect(r.Header); err != nil {
		s.metrics.webhook("unknown", outcomeBadRequest, time.Since(start))
		s.reply(w, http.StatusBadRequest, answer{Outcome: outcomeBadRequest,
			Reason: "no forge's event headers: post to /webhook/{forge} or send the forge's own headers"})
		return "", false
	}
	return kind, true
}

// formEncoded says whether a delivery of content type ct carries its JSON
// in a form's payload field (GitHub's default) rather than as the body;
// ok is false for a content type fraisier does not read.
func formEncoded(kind forge.Kind, ct string) (form, ok bool) {
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err != nil:
		return false, false
	case mt == "application/json":
		return false, true
	case mt == "application/x-www-form-urlencoded" && kind == forge.GitHub:
		return true, true
	}
	return false, false
}

// readBody reads the body of a delivery from client into buf, within the
// body deadline, the body limit and the byte budget, and answers the
// request itself when it cannot: ok is false then.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, kind forge.Kind, client string, start time.Time, buf *bytes.Buffer) (ok bool) {
	// The body must arrive soon: a client trickling it holds a connection
	// and budget. With a read timeout shorter than bodyTimeout, the
	// server's own deadline is already nearer and stays.
	if s.bodyTimeout > 0 {
		// Not every ResponseWriter can (a test recorder); the server's
		// read timeout then applies alone.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout))
	}
	buf.Reset()
	if r.ContentLength > 0 {
		// One allocation for the bodies forges send, but never the whole
		// announced size before it arrives.
		buf.Grow(int(min(r.ContentLength, bodyPrealloc)) + bytes.MinRead)
	}
	// Bodies being read share a byte budget, per source and in all, so
	// that many slow or large requests at once cannot take the memory, and
	// one source cannot take it from the others.
	in := &budgetedBody{r: http.MaxBytesReader(w, r.Body, s.bodyLimit), budget: s.bodyBudget, source: sourceOf(client)}
	defer in.release()
	if _, err := buf.ReadFrom(in); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			s.refuse(w, r, string(kind), start, rejected(kind, r, client, start,
				fmt.Sprintf("body over the limit of %d bytes (server.body_limit)", s.bodyLimit)), http.StatusRequestEntityTooLarge, refusedTooLarge)
		case errors.Is(err, errBodyBudget):
			s.writer.coming.Add(-1)
			s.metrics.webhook(string(kind), outcomeQueueFull, time.Since(start))
			w.Header().Set("Retry-After", "1")
			s.reply(w, http.StatusTooManyRequests, answer{Outcome: outcomeQueueFull, Forge: string(kind),
				Reason: "fraisier is busy: too many request bodies being read at once (from this address, or in all); retry"})
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.writer.coming.Add(-1)
			s.metrics.webhook(string(kind), outcomeBadRequest, time.Since(start))
			s.reply(w, http.StatusRequestTimeout, answer{Outcome: outcomeBadRequest, Forge: string(kind),
				Reason: fmt.Sprintf("the body did not arrive within %s", s.bodyTimeout)})
		default:
			s.writer.coming.Add(-1)
			s.metrics.webhook(string(kind), outcomeBadRequest, time.Since(start))
			s.reply(w, http.StatusBadRequest, answer{Outcome: outcomeBadRequest, Forge: string(kind), Reason: "could not read the body"})
		}
		return false
	}
	return true
}

// putBody gives a body's buffer back, unless a large body grew it.
func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 {
		buf.Reset()
		bodyPool.Put(buf)
	}
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
			DeploymentID: q.DeploymentID, Superseded: q.Superseded, ReplacedEvent: q.Replaced, Folded: q.Folded, HeldForChecks: q.Held, RolloutID: q.RolloutID})
	}
	switch {
	case res.Duplicate:
		status = http.StatusOK
		switch ev.Outcome {
		case store.OutcomeAccepted, store.OutcomeSuperseded:
			status = http.StatusAccepted
		case store.OutcomeRejected:
			status = http.StatusBadRequest
		}
		s.metrics.webhook(kind, store.OutcomeDuplicate, time.Since(start))
	case res.Replay:
		// Routed, but the store found the push delivered before: nothing
		// was queued.
		status = http.StatusOK
		s.metrics.webhook(kind, outcomeReplay, time.Since(start))
	default:
		s.metrics.webhook(kind, ev.Outcome, time.Since(start))
	}
	level := slog.LevelInfo
	switch {
	case ev.Outcome == store.OutcomeRejected, res.Replay:
		level = slog.LevelWarn
	case ev.Outcome == store.OutcomeSuperseded:
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
