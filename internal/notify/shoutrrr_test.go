package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/notify"
	"github.com/fraiseql/fraisier/internal/store"
)

// TestNtfyThroughShoutrrr: an ntfy:// target, pointed at a local
// receiver (scheme=http), gets the message's text; a failing one is
// retried like a webhook.
func TestNtfyThroughShoutrrr(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, `{"code":50000,"error":"boom"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","time":1,"event":"message","topic":"deploys"}`)
	})
	host := strings.TrimPrefix(rc.URL, "http://")
	db, cfg := setup(t, fmt.Sprintf("  targets:\n    hook: {url: \"ntfy://%s/deploys?scheme=http\"}\n  default: {events: [all], targets: [hook]}\n", host))
	id := enqueue(t, db, failedMsg)
	s := sender(db, cfg)
	s.BackoffBase, s.BackoffMax = time.Millisecond, time.Millisecond
	s.Round(context.Background())
	if m := message(t, db, id); m.State != store.OutboxFailed || m.LastError == "" {
		t.Fatalf("after a 500: %+v", m)
	}
	for i := 0; i < 100 && message(t, db, id).State != store.OutboxSent; i++ {
		time.Sleep(2 * time.Millisecond)
		s.Round(context.Background())
	}
	m := message(t, db, id)
	reqs := rc.requests()
	if m.State != store.OutboxSent || len(reqs) != 2 {
		t.Fatalf("after the retry: %+v, %d requests", m, len(reqs))
	}
	body := string(reqs[1].body)
	for _, want := range []string{"api/production", "Failed step: health", "503 Service Unavailable", "fraisier show 7"} {
		if !strings.Contains(body, want) {
			t.Errorf("ntfy request misses %q:\n%s\nheaders %v", want, body, reqs[1].header)
		}
	}
	t.Logf("ntfy request: %s", body)
}

// TestCheckTargets: a shoutrrr URL shoutrrr refuses is reported by target
// name without its token; good ones and webhooks pass.
func TestCheckTargets(t *testing.T) {
	_, cfg := setup(t, "  targets:\n    good: {url: \"ntfy://ntfy.test/deploys\"}\n"+
		"    bad: {url: \"telegram://secrettokenvalue1234@telegram\"}\n"+
		"    hook: {url: \"webhook+https://example.test/h\", secret: "+signingKey+"}\n")
	errs := notify.CheckTargets(cfg)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "notify.targets.bad") || strings.Contains(errs[0].Error(), "secrettokenvalue1234") {
		t.Errorf("problems %v, want one naming bad, without its token", errs)
	}
}
