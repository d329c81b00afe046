package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/notify"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestE2ETellTheTeam is the team's whole view of two pushes, on real
// parts (serve, a git origin, a systemd user manager) with a loopback
// webhook receiver and a loopback GitHub: the environment deploys on
// checks (trigger: checks), notifies a signed webhook target of every
// event, and reports to GitHub's Deployments API. Each push is held,
// saying nothing to anyone, until its check_suite succeeds; the healthy
// commit then deploys, GitHub hears in_progress then success and the
// receiver a succeeded message; the unhealthy one is rolled back, GitHub
// hears in_progress then failure and the receiver a rolled_back message
// naming the failing step.
func TestE2ETellTheTeam(t *testing.T) {
	const token = "ghp_e2eteam0123456789abcdefabcdef"
	gh := newFakeGitHub(t, token)
	rc := newNotifyReceiver(t)
	f := newE2E(t, e2eOptions{githubStatus: gh.srv.URL, checks: map[string]string{"production": ""}})
	key := testenv.RandomHex(16)
	f.env = append(f.env, "E2E_STATUS_TOKEN="+token, "E2E_NOTIFY_KEY="+key, "E2E_NOTIFY_URL=webhook+"+rc.srv.URL+"/hooks/fraisier")
	cfg, err := os.OpenFile(f.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(cfg, "notify:\n  targets:\n    team:\n      url: ${E2E_NOTIFY_URL}\n      secret: ${E2E_NOTIFY_KEY}\n  default:\n    events: [all]\n    targets: [team]\n")
	cfg.Close()
	serve := f.serve()

	good := f.pushBehaving("main", "healthy")[0]
	f.held("", good)
	// A held push deploys nothing, so nobody hears of it yet.
	time.Sleep(time.Second)
	f.nothingDeployed("held for its checks")
	if calls, got := gh.count(), rc.count(); calls != 0 || got != 0 {
		t.Fatalf("a held push made %d GitHub calls and %d notifications, want none", calls, got)
	}

	f.check(good, "success")
	f.waitDeployed("production", good, version("main", 1), 30*time.Second)
	ok := rc.event(t, "succeeded", 30*time.Second)
	testenv.WaitFor(t, "GitHub to hear in_progress then success", 30*time.Second, func() bool {
		return strings.Join(gh.statuses(1), ",") == "in_progress,success"
	})

	bad := f.pushBehaving("main", "unhealthy")[0]
	f.held(good, bad)
	f.check(bad, "success")
	rolled := rc.event(t, "rolled_back", 60*time.Second)
	testenv.WaitFor(t, "GitHub to hear in_progress then failure", 60*time.Second, func() bool {
		return strings.Join(gh.statuses(2), ",") == "in_progress,failure"
	})
	if ds := f.deployments("production"); len(ds) != 2 || ds[1].Status != store.StatusRolledBack || ds[1].NewSHA != bad {
		t.Fatalf("deployments %+v, want the second rolled back", ds)
	}

	var okMsg, rbMsg struct {
		notify.Message
		Text string `json:"text"`
	}
	for _, m := range []struct {
		d   notifyDelivery
		out any
	}{{ok, &okMsg}, {rolled, &rbMsg}} {
		if err := json.Unmarshal(m.d.body, m.out); err != nil {
			t.Fatal(err)
		}
		if want := notify.Sign([]byte(key), m.d.header.Get(notify.HeaderTimestamp), m.d.body); m.d.header.Get(notify.HeaderSignature) != want {
			t.Errorf("%s message's signature does not verify", m.d.header.Get(notify.HeaderEvent))
		}
	}
	if okMsg.To == nil || okMsg.To.SHA != good || rbMsg.To == nil || rbMsg.To.SHA != bad || rbMsg.FailedStep == nil || rbMsg.FailedStep.Name != "health" {
		t.Errorf("messages:\n%s\n%s", ok.body, rolled.body)
	}
	gh.mu.Lock()
	calls := strings.Join(gh.calls, "\n")
	gh.mu.Unlock()
	t.Logf("succeeded, as a chat target shows it:\n%s", okMsg.Text)
	t.Logf("rolled_back, as a chat target shows it:\n%s", rbMsg.Text)
	t.Logf("rolled_back, the signed webhook's JSON body:\n%s", rolled.body)
	t.Logf("GitHub's calls, in order:\n%s", calls)
	hooks, _ := f.cli("webhooks")
	t.Logf("fraisier webhooks:\n%s", hooks)
	if strings.Contains(serve.Out.String(), token) || strings.Contains(serve.Out.String(), key) {
		t.Errorf("serve's log shows a secret")
	}
}

// count is how many calls GitHub received.
func (g *fakeGitHub) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

// count is how many messages the receiver got.
func (rc *notifyReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}
