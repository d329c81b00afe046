package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestIntakeReplays: a signed push, or pull request, delivered again
// under a new delivery id (a captured delivery replayed) is answered 200
// ignored, queues nothing, and names the delivery it replays and how to
// deploy its commit on purpose. Under its own id it is a redelivery,
// answered as the first time; the same commit pushed to another branch is
// a push of its own.
func TestIntakeReplays(t *testing.T) {
	f := newIntakeWith(t, pullRequestConfig)
	to := func(branch string) []byte {
		return bytes.Replace(payload(t, "github_push"), []byte(`"refs/heads/main"`), []byte(`"refs/heads/`+branch+`"`), 1)
	}
	pr, err := os.ReadFile(filepath.Join("..", "forge", "testdata", "github_pull_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		pushed = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
		head   = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
		secret = "gh-secret-0123456789"
	)
	events := map[string]int64{}
	for _, tc := range []struct {
		name      string
		d         delivery
		status    int
		outcome   store.Outcome
		queued    string // fraise/environment, or ""
		duplicate bool
		replays   string // the delivery whose event the reason names
		sha       string // the commit the reason says to deploy by hand
	}{
		{"a push", githubDelivery("push", "push-1", secret, to("master")), 202, store.OutcomeAccepted, "hello/production", false, "", ""},
		{"the push under a new id", githubDelivery("push", "push-2", secret, to("master")), 200, store.OutcomeIgnored, "", false, "push-1", pushed},
		{"the push under its own id", githubDelivery("push", "push-1", secret, to("master")), 202, store.OutcomeAccepted, "hello/production", true, "", ""},
		{"the push under a third id", githubDelivery("push", "push-3", secret, to("master")), 200, store.OutcomeIgnored, "", false, "push-1", pushed},
		{"the same commit to another branch", githubDelivery("push", "push-4", secret, to("preview")), 202, store.OutcomeAccepted, "hello/preview", false, "", ""},
		{"a pull request", githubDelivery("pull_request", "pr-1", secret, pr), 202, store.OutcomeAccepted, "hello/preview", false, "", ""},
		{"the pull request under a new id", githubDelivery("pull_request", "pr-2", secret, pr), 200, store.OutcomeIgnored, "", false, "pr-1", head},
	} {
		status, a := f.send(tc.d)
		var queued []string
		for _, d := range a.Deployments {
			queued = append(queued, d.Fraise+"/"+d.Environment)
		}
		if status != tc.status || a.Outcome != tc.outcome || a.Duplicate != tc.duplicate || strings.Join(queued, ",") != tc.queued {
			t.Errorf("%s: %d %s duplicate %v queued %v (%s); want %d %s duplicate %v queued %q",
				tc.name, status, a.Outcome, a.Duplicate, queued, a.Reason, tc.status, tc.outcome, tc.duplicate, tc.queued)
		}
		if tc.replays == "" {
			events[tc.d.headers["X-GitHub-Delivery"]] = a.WebhookEventID
			continue
		}
		target := "hello production"
		if tc.sha == head {
			target = "hello preview"
		}
		for _, says := range []string{"replay", fmt.Sprintf("webhook event %d (delivery %s", events[tc.replays], tc.replays),
			"fraisier deploy " + target + " --ref " + tc.sha, "fraisier rollback " + target} {
			if !strings.Contains(a.Reason, says) {
				t.Errorf("%s: reason %q does not say %q", tc.name, a.Reason, says)
			}
		}
	}
	q, err := f.db.QueuedDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range q {
		got = append(got, d.Target.String()+"@"+d.NewSHA)
	}
	sort.Strings(got)
	if want := []string{"hello/preview@" + head, "hello/production@" + pushed}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("queued %v, want %v", got, want)
	}
	_, metrics := f.get("/metrics", "")
	if !strings.Contains(metrics, `fraisier_webhooks_total{forge="github",outcome="replay"} 3`) {
		t.Errorf("/metrics does not count the 3 replays:\n%s", grepLines(metrics, "fraisier_webhooks_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
