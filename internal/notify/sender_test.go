package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/notify"
	"github.com/fraiseql/fraisier/internal/store"
)

const signingKey = "receiver-shared-key-0123456789"

// receiver is a local HTTP receiver whose answers the test scripts.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(n, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// setup opens a real SQLite state database and a configuration whose
// notify section is section.
func setup(t *testing.T, section string) (*store.DB, *config.Config) {
	t.Helper()
	yaml := "fraises:\n  api:\n    type: api\n    repository: https://github.com/acme/api.git\n    environments:\n" +
		"      production: {branch: main, app_path: /srv/api}\nnotify:\n" + section
	cfg, err := config.Parse("fraises.yaml", []byte(yaml), config.Options{
		LookupEnv: func(string) (string, bool) { return "", false },
		ReadFile:  func(name string) ([]byte, error) { return nil, os.ErrNotExist },
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, cfg
}

func webhookTarget(url string, extra string) string {
	return fmt.Sprintf("  targets:\n    hook: {url: %q, secret: %s}\n  default: {events: [all], targets: [hook]}\n%s",
		"webhook+"+url, signingKey, extra)
}

func enqueue(t *testing.T, db *store.DB, m notify.Message) int64 {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := db.EnqueueOutbox(context.Background(), store.OutboxMessage{Kind: store.OutboxNotification, Target: "hook",
		Event: m.Event, Payload: string(b)})
	if err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

func sender(db *store.DB, cfg *config.Config) *notify.Sender {
	return &notify.Sender{Store: db, Config: func() *config.Config { return cfg }, Metrics: notify.NewMetrics(),
		BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second}
}

func message(t *testing.T, db *store.DB, id int64) store.OutboxMessage {
	t.Helper()
	all, err := db.Outbox(context.Background(), store.OutboxFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %d not in the outbox", id)
	return store.OutboxMessage{}
}

var failedMsg = notify.Message{Version: 1, Event: notify.EventFailed, Fraise: "api", Environment: "production",
	Deployment: 7, Status: "failed", Error: "health check: 503", Show: "fraisier show 7",
	FailedStep: &notify.Step{Name: "health", Output: "GET /health\n503 Service Unavailable"}}

// TestWebhookSignedAndSent: the receiver gets the JSON message with a
// signature it can verify with the shared key, and the attempt is recorded.
func TestWebhookSignedAndSent(t *testing.T) {
	rc := newReceiver(t, nil)
	db, cfg := setup(t, webhookTarget(rc.URL+"/hook", ""))
	id := enqueue(t, db, failedMsg)
	if n := sender(db, cfg).Round(context.Background()); n != 1 {
		t.Fatalf("round claimed %d, want 1", n)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	h, body := reqs[0].header, reqs[0].body
	if want := notify.Sign([]byte(signingKey), h.Get(notify.HeaderTimestamp), body); h.Get(notify.HeaderSignature) != want {
		t.Errorf("signature %q, want %q", h.Get(notify.HeaderSignature), want)
	}
	if notify.Sign([]byte("another key, not the receiver's"), h.Get(notify.HeaderTimestamp), body) == h.Get(notify.HeaderSignature) {
		t.Error("a signature with another key verifies")
	}
	if h.Get(notify.HeaderEvent) != "failed" || h.Get(notify.HeaderDelivery) != strconv.FormatInt(id, 10) || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got["fraise"] != "api" || got["event"] != "failed" || got["show"] != "fraisier show 7" ||
		!strings.Contains(got["text"].(string), "Failed step: health") {
		t.Errorf("body %s", body)
	}
	m := message(t, db, id)
	if m.State != store.OutboxSent || m.Attempts != 1 || m.SentAt == nil {
		t.Errorf("after sending: %+v", m)
	}
}

// TestRetryAfterServerError: a 500 is retried after a backoff, and the
// second attempt's success is recorded beside the first's failure.
func TestRetryAfterServerError(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	})
	db, cfg := setup(t, webhookTarget(rc.URL, ""))
	id := enqueue(t, db, failedMsg)
	s := sender(db, cfg)
	ctx := context.Background()
	s.Round(ctx)
	m := message(t, db, id)
	if m.State != store.OutboxFailed || !strings.Contains(m.LastError, "500") {
		t.Fatalf("after a 500: %+v", m)
	}
	wait := m.NextAttemptAt.Sub(time.Now())
	if wait < 0 || wait > 60*time.Millisecond {
		t.Errorf("next attempt in %s, want the first backoff (50ms ±20%%)", wait)
	}
	if n := s.Round(ctx); n != 0 {
		t.Errorf("claimed %d before the backoff ran out", n)
	}
	time.Sleep(wait + 10*time.Millisecond)
	if n := s.Round(ctx); n != 1 {
		t.Fatalf("claimed %d after the backoff", n)
	}
	m = message(t, db, id)
	attempts, _ := db.OutboxAttempts(ctx, id)
	if m.State != store.OutboxSent || m.Attempts != 2 || len(attempts) != 2 ||
		attempts[0].HTTPStatus != 500 || attempts[1].HTTPStatus != 200 {
		t.Errorf("after the retry: %+v, attempts %+v", m, attempts)
	}
}

// TestRetryAfterHeader: a 429 with Retry-After waits as long as asked.
func TestRetryAfterHeader(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	db, cfg := setup(t, webhookTarget(rc.URL, ""))
	id := enqueue(t, db, failedMsg)
	s := sender(db, cfg)
	s.BackoffMax = time.Minute
	start := time.Now()
	s.Round(context.Background())
	m := message(t, db, id)
	if wait := m.NextAttemptAt.Sub(start); m.State != store.OutboxFailed || wait < 5*time.Second-10*time.Millisecond || wait > 6*time.Second {
		t.Errorf("after a 429 with Retry-After: 5, next attempt in %s: %+v", wait, m)
	}
}

// TestHangingReceiverTimesOut: a receiver that never answers costs one
// attempt of notify.timeout, recorded as a failure to retry.
func TestHangingReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	db, cfg := setup(t, webhookTarget(rc.URL, "  timeout: 300ms\n"))
	id := enqueue(t, db, failedMsg)
	start := time.Now()
	sender(db, cfg).Round(context.Background())
	took := time.Since(start)
	m := message(t, db, id)
	if m.State != store.OutboxFailed || !strings.Contains(m.LastError, "no answer within 300ms") {
		t.Errorf("after a hang: %+v", m)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("the attempt took %s, want about the 300ms timeout", took)
	}
}

// TestGivenUpAfterMaxAttempts: a receiver that always fails gets
// max_attempts attempts, then the message is given up and counted.
func TestGivenUpAfterMaxAttempts(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	db, cfg := setup(t, webhookTarget(rc.URL, "  max_attempts: 3\n"))
	id := enqueue(t, db, failedMsg)
	s := sender(db, cfg)
	s.BackoffBase, s.BackoffMax = time.Millisecond, 5*time.Millisecond
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.Round(ctx)
		if message(t, db, id).State == store.OutboxGivenUp {
			break
		}
	}
	m := message(t, db, id)
	if m.State != store.OutboxGivenUp || m.Attempts != 3 || len(rc.requests()) != 3 {
		t.Errorf("after 3 failures: %+v, %d requests", m, len(rc.requests()))
	}
	failed, _ := db.Outbox(ctx, store.OutboxFilter{States: []store.OutboxState{store.OutboxFailed, store.OutboxGivenUp}})
	if len(failed) != 1 {
		t.Errorf("--failed lists %d", len(failed))
	}
	if n := s.Round(ctx); n != 0 {
		t.Errorf("a given-up message was claimed again")
	}
}

// TestTargetGoneIsGivenUp: a message whose target left the configuration
// is given up at once, saying why.
func TestTargetGoneIsGivenUp(t *testing.T) {
	rc := newReceiver(t, nil)
	db, cfg := setup(t, webhookTarget(rc.URL, ""))
	b, _ := json.Marshal(failedMsg)
	ids, err := db.EnqueueOutbox(context.Background(), store.OutboxMessage{Kind: store.OutboxNotification, Target: "removed", Payload: string(b)})
	if err != nil {
		t.Fatal(err)
	}
	sender(db, cfg).Round(context.Background())
	if m := message(t, db, ids[0]); m.State != store.OutboxGivenUp || !strings.Contains(m.LastError, `no target "removed"`) {
		t.Errorf("%+v", m)
	}
}

// TestSecretsInTargetURLNeverStored: a target URL with a token, whose
// receiver is unreachable, leaves no trace of the token in the outbox's
// readable columns, its attempts or the sender's log.
func TestSecretsInTargetURLNeverStored(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a39281706"
	rc := newReceiver(t, nil)
	url := rc.URL
	rc.Close() // nothing listens there any more
	db, cfg := setup(t, webhookTarget(url+"/hook/"+token+"?token="+token, ""))
	id := enqueue(t, db, failedMsg)
	var logs strings.Builder
	s := sender(db, cfg)
	s.Log = newTextLogger(&logs)
	s.Round(context.Background())
	m := message(t, db, id)
	if m.State != store.OutboxFailed || m.LastError == "" {
		t.Fatalf("after an unreachable receiver: %+v", m)
	}
	rows, err := db.SQL().Query(`SELECT kind || target || event || payload || last_error FROM tb_outbox
		UNION ALL SELECT outcome || error FROM tb_outbox_attempt`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s, token) {
			t.Errorf("the database holds the token: %s", s)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "will be retried") {
		t.Errorf("log:\n%s", logs.String())
	}
}
