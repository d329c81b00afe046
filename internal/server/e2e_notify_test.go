package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/notify"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// notifyReceiver is a webhook receiver on loopback that keeps what it
// got, as a team's endpoint would.
type notifyReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []notifyDelivery
	path string
}

type notifyDelivery struct {
	header http.Header
	body   []byte
}

func newNotifyReceiver(t *testing.T) *notifyReceiver {
	rc := &notifyReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, notifyDelivery{header: r.Header.Clone(), body: b})
		rc.path = r.URL.Path
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// event waits for a delivery of event and returns it.
func (rc *notifyReceiver) event(t *testing.T, event string, d time.Duration) notifyDelivery {
	t.Helper()
	var found notifyDelivery
	testenv.WaitFor(t, "a "+event+" notification at the receiver", d, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, g := range rc.got {
			if g.header.Get(notify.HeaderEvent) == event {
				found = g
				return true
			}
		}
		return false
	})
	return found
}

// TestE2ENotifications: fraisier serve with a notify section and a signed
// webhook target. A signed push that deploys sends a succeeded message,
// one whose release is unhealthy a rolled_back message naming the failing
// step with its last lines; both are signed so the receiver can verify
// them, listed by fraisier notifications, and the token in the target's
// URL is in none of: the output, serve's log, the database.
func TestE2ENotifications(t *testing.T) {
	const token = "e2e-notify-token-5c4b3a29"
	rc := newNotifyReceiver(t)
	f := newE2E(t, e2eOptions{})
	key := testenv.RandomHex(16)
	f.env = append(f.env, "E2E_NOTIFY_KEY="+key, "E2E_NOTIFY_URL=webhook+"+rc.srv.URL+"/hooks/fraisier?token="+token)
	cfg, err := os.OpenFile(f.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(cfg, `notify:
  targets:
    team:
      url: ${E2E_NOTIFY_URL}
      secret: ${E2E_NOTIFY_KEY}
  default:
    events: [all]
    targets: [team]
`)
	cfg.Close()
	serve := f.serve()

	good := f.pushBehaving("main", "healthy")[0]
	f.hook("main", "", good)
	f.waitDeployed("production", good, version("main", 1), 30*time.Second)
	ok := rc.event(t, "succeeded", 30*time.Second)

	bad := f.pushBehaving("main", "unhealthy")[0]
	a := f.hook("main", good, bad)
	rolled := rc.event(t, "rolled_back", 60*time.Second)
	if d := f.deployment(a.Deployments[0].DeploymentID); d.Status != store.StatusRolledBack {
		t.Fatalf("the unhealthy release's deployment: %s %q, want rolled_back", d.Status, d.Error)
	}

	for _, g := range []notifyDelivery{ok, rolled} {
		if want := notify.Sign([]byte(key), g.header.Get(notify.HeaderTimestamp), g.body); g.header.Get(notify.HeaderSignature) != want {
			t.Errorf("%s: signature %q does not verify with the shared key", g.header.Get(notify.HeaderEvent), g.header.Get(notify.HeaderSignature))
		}
	}
	var okMsg, rbMsg struct {
		notify.Message
		Text string `json:"text"`
	}
	if err := json.Unmarshal(ok.body, &okMsg); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rolled.body, &rbMsg); err != nil {
		t.Fatal(err)
	}
	if okMsg.Fraise != "hello" || okMsg.Environment != "production" || okMsg.To == nil || okMsg.To.SHA != good ||
		okMsg.To.Subject != version("main", 1) || !strings.Contains(okMsg.Actor, "alice") {
		t.Errorf("succeeded message: %s", ok.body)
	}
	if rbMsg.From == nil || rbMsg.From.SHA != good || rbMsg.To.SHA != bad || rbMsg.To.Subject != version("main", 2) ||
		rbMsg.FailedStep == nil || rbMsg.FailedStep.Name == "" || rbMsg.Show != fmt.Sprintf("fraisier show %d", a.Deployments[0].DeploymentID) {
		t.Errorf("rolled_back message: %s", rolled.body)
	}
	t.Logf("succeeded, as a chat target shows it:\n%s\n\nJSON body:\n%s", okMsg.Text, ok.body)
	t.Logf("rolled_back, as a chat target shows it:\n%s\n\nJSON body:\n%s", rbMsg.Text, rolled.body)

	out, code := f.cli("notifications", "--json", "--attempts")
	if code != 0 {
		t.Fatalf("notifications: exit %d\n%s", code, out)
	}
	var list struct {
		Notifications []struct {
			Event string            `json:"event"`
			State store.OutboxState `json:"state"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("notifications --json: %v\n%s", err, out)
	}
	events := map[string]store.OutboxState{}
	for _, n := range list.Notifications {
		events[n.Event] = n.State
	}
	if events["succeeded"] != store.OutboxSent || events["rolled_back"] != store.OutboxSent {
		t.Errorf("notifications: %s", out)
	}
	// A delivery with a bad signature is refused, and reported once.
	forged := f.delivery("main", good, bad)
	forged.sig = "sha256=" + strings.Repeat("0", 64)
	for range 3 {
		if status, _, err := f.send(&httpClient, f.base(), forged); err != nil || status != http.StatusUnauthorized {
			t.Fatalf("forged delivery: %d %v, want 401", status, err)
		}
	}
	refused := rc.event(t, "webhook_refused", 30*time.Second)
	t.Logf("webhook_refused body:\n%s", refused.body)
	// The sender records the attempt once the receiver has answered.
	testenv.WaitFor(t, "/metrics to count three notifications sent", 10*time.Second, func() bool {
		metrics := getMetrics(t, f.base())
		for _, want := range []string{`fraisier_notifications_total{outcome="sent"} 3`, "fraisier_notifications_pending 0", "fraisier_notifications_failed 0"} {
			if !strings.Contains(metrics, want) {
				return false
			}
		}
		return true
	})
	rc.mu.Lock()
	n := 0
	for _, g := range rc.got {
		if g.header.Get(notify.HeaderEvent) == "webhook_refused" {
			n++
		}
	}
	rc.mu.Unlock()
	if n != 1 {
		t.Errorf("%d webhook_refused messages for 3 forged deliveries, want 1", n)
	}

	table, _ := f.cli("notifications")
	t.Logf("fraisier notifications:\n%s", table)
	for what, text := range map[string]string{"notifications --json": out, "notifications": table, "serve's log": serve.Out.String()} {
		if strings.Contains(text, token) || strings.Contains(text, key) {
			t.Errorf("%s shows a secret of the target:\n%s", what, text)
		}
	}
	rows, err := f.store().SQL().Query(`SELECT target || event || payload || last_error FROM tb_outbox
		UNION ALL SELECT error FROM tb_outbox_attempt`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s, token) || strings.Contains(s, key) {
			t.Errorf("the state database holds a secret of the target: %s", s)
		}
	}
}

func getMetrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
