package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// The intake is tested through its HTTP handler on a real SQLite state
// database, with payloads the forges document (testdata/, copied from
// internal/forge's) and signatures computed here.

const intakeConfig = `
git:
  github: {secrets: [old-secret-0123456789, gh-secret-0123456789]}
  gitlab: {secret: gl-token-0123456789}
  gitea: {secret: gitea-secret-0123456789}
  bitbucket: {secret: bb-secret-0123456789}
  bitbucket_server: {secret: bbs-secret-0123456789}
server:
  body_limit: 65536
  rate_limit: {per_source: %s, global: 0, burst: %s}
  trusted_proxies: [10.9.0.0/16]
  api_token: %s
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    forge: github
    webhook: {secret: hello-only-0123456789}
    environments:
      production:
        branch: main
        tags: "v*"
        git_repo: /srv/git/hello.git
        app_path: /srv/hello
  diaspora:
    type: api
    repository: mike/diaspora
    forge: gitlab
    environments:
      production: {branch: master, git_repo: /srv/git/diaspora.git, app_path: /srv/diaspora}
  webhooks:
    type: api
    repository: gitea/webhooks
    forge: gitea
    environments:
      dev: {branch: develop, git_repo: /srv/git/webhooks.git, app_path: /srv/webhooks}
  projectx:
    type: api
    repository: team_name/project-x
    forge: bitbucket
    webhook: {secret: projectx-only-0123456789}
    environments:
      production: {branch: main, git_repo: /srv/git/px.git, app_path: /srv/px}
  bbs:
    type: api
    repository: PROJ/repository
    forge: bitbucket_server
    environments:
      production: {branch: master, git_repo: /srv/git/bbs.git, app_path: /srv/bbs}
`

type intakeFixture struct {
	t   *testing.T
	db  *store.DB
	srv *Server
	url string
}

func newIntake(t *testing.T, perSource, burst, token string) *intakeFixture {
	t.Helper()
	return newIntakeWith(t, fmt.Sprintf(intakeConfig, perSource, burst, token))
}

// newIntakeWith is the intake over the configuration text, on a real
// SQLite store and an httptest server.
func newIntakeWith(t *testing.T, text string) *intakeFixture {
	t.Helper()
	cfg, err := config.Parse("fraises.yaml", []byte(text),
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := New(Options{Config: cfg, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &intakeFixture{t: t, db: db, srv: srv, url: hs.URL}
}

func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexHMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// delivery is one request to send.
type delivery struct {
	path    string
	headers map[string]string
	body    []byte
}

func githubDelivery(event, id, secret string, body []byte) delivery {
	h := map[string]string{"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": id}
	if secret != "" {
		h["X-Hub-Signature-256"] = "sha256=" + hexHMAC(secret, body)
	}
	return delivery{path: "/webhook", headers: h, body: body}
}

func (f *intakeFixture) send(d delivery) (int, answer) {
	f.t.Helper()
	path := d.path
	if path == "" {
		path = "/webhook"
	}
	req, err := http.NewRequest(http.MethodPost, f.url+path, bytes.NewReader(d.body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		f.t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, a
}

func (f *intakeFixture) events() []store.WebhookEvent {
	f.t.Helper()
	evs, err := f.db.Webhooks(context.Background(), store.WebhookFilter{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

func TestIntakePerForge(t *testing.T) {
	gitlabPush := payload(t, "gitlab_push")
	giteaPush := payload(t, "gitea_push")
	bbPush := payload(t, "bitbucket_push")
	bbsPush := payload(t, "bitbucket_server_refs_changed")
	ghPush := payload(t, "github_push")
	// Each accepted push of main pushes a commit of its own: the same push
	// under another delivery id is a replay.
	ghPush2, ghPush3 := pushing(ghPush, 2), pushing(ghPush, 3)
	form := []byte("payload=" + url.QueryEscape(string(ghPush3)))

	tests := []struct {
		name    string
		d       delivery
		status  int
		outcome store.Outcome
		deploys []string // fraise/environment
		reason  string   // substring of the answer's reason
	}{
		{"github push", githubDelivery("push", "gh-1", "gh-secret-0123456789", ghPush), 202, "accepted", []string{"hello/production"}, ""},
		{"github push signed with the older of two secrets", githubDelivery("push", "gh-2", "old-secret-0123456789", ghPush2), 202, "accepted", []string{"hello/production"}, ""},
		{"github form-encoded", delivery{headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded",
			"X-GitHub-Event": "push", "X-GitHub-Delivery": "gh-form", "X-Hub-Signature-256": "sha256=" + hexHMAC("gh-secret-0123456789", form)}, body: form},
			202, "accepted", []string{"hello/production"}, ""},
		{"github tag push where tags are configured", githubDelivery("push", "gh-tag", "gh-secret-0123456789", payload(t, "github_push_tag")), 202, "accepted", []string{"hello/production"}, ""},
		{"github ping", githubDelivery("ping", "gh-ping", "gh-secret-0123456789", payload(t, "github_ping")), 200, "ignored", nil, "ping"},
		{"github pull request", githubDelivery("pull_request", "gh-pr", "gh-secret-0123456789", payload(t, "github_pull_request")), 200, "ignored", nil, "pull requests deploy only where an environment sets pull_requests"},
		{"github branch deletion", githubDelivery("push", "gh-del", "gh-secret-0123456789", payload(t, "github_push_delete")), 200, "ignored", nil, "never deploys"},
		{"gitlab push with its token", delivery{headers: map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
			"X-Gitlab-Event-UUID": "gl-1", "X-Gitlab-Token": "gl-token-0123456789"}, body: gitlabPush}, 202, "accepted", []string{"diaspora/production"}, ""},
		{"gitea push", delivery{headers: map[string]string{"Content-Type": "application/json", "X-Gitea-Event": "push", "X-GitHub-Event": "push",
			"X-Gitea-Delivery": "gt-1", "X-Gitea-Signature": hexHMAC("gitea-secret-0123456789", giteaPush)}, body: giteaPush}, 202, "accepted", []string{"webhooks/dev"}, ""},
		{"bitbucket cloud push with the fraise's own secret", delivery{headers: map[string]string{"Content-Type": "application/json", "X-Event-Key": "repo:push",
			"X-Request-UUID": "bb-1", "X-Hub-Signature": "sha256=" + hexHMAC("projectx-only-0123456789", bbPush)}, body: bbPush}, 202, "accepted", []string{"projectx/production"}, ""},
		{"bitbucket data center push", delivery{path: "/webhook/bitbucket_server", headers: map[string]string{"Content-Type": "application/json; charset=utf-8",
			"X-Event-Key": "repo:refs_changed", "X-Request-Id": "bbs-1", "X-Hub-Signature": "sha256=" + hexHMAC("bbs-secret-0123456789", bbsPush)}, body: bbsPush},
			202, "accepted", []string{"bbs/production"}, ""},
		{"a fraise's own secret does not cover another fraise", delivery{headers: map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "push",
			"X-GitHub-Delivery": "gh-cross", "X-Hub-Signature-256": "sha256=" + hexHMAC("projectx-only-0123456789", ghPush)}, body: ghPush},
			200, "ignored", nil, "does not cover hello/production"},

		{"bad signature", githubDelivery("push", "gh-bad", "wrong", ghPush), 401, "rejected", nil, "bad signature"},
		{"missing signature", githubDelivery("push", "gh-none", "", ghPush), 401, "rejected", nil, "missing signature"},
		{"signature of another body", delivery{headers: map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "push",
			"X-GitHub-Delivery": "gh-other", "X-Hub-Signature-256": "sha256=" + hexHMAC("gh-secret-0123456789", []byte("{}"))}, body: ghPush}, 401, "rejected", nil, "bad signature"},
		{"gitlab wrong token", delivery{headers: map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
			"X-Gitlab-Token": "nope"}, body: gitlabPush}, 401, "rejected", nil, ""},
		{"malformed JSON, correctly signed", githubDelivery("push", "gh-malformed", "gh-secret-0123456789", []byte(`{"ref": `)), 400, "rejected", nil, "malformed"},
		{"shell metacharacters in the ref", githubDelivery("push", "gh-meta", "gh-secret-0123456789",
			bytes.Replace(ghPush, []byte(`"refs/heads/main"`), []byte(`"refs/heads/$(touch /tmp/pwned)"`), 1)), 400, "rejected", nil, ""},
		{"wrong content type", delivery{headers: map[string]string{"Content-Type": "text/plain", "X-GitHub-Event": "push"}, body: ghPush}, 415, "rejected", nil, "text/plain"},
		{"form-encoded from a forge that never sends it", delivery{path: "/webhook/gitlab", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: form}, 415, "rejected", nil, ""},
		{"no forge headers", delivery{headers: map[string]string{"Content-Type": "application/json"}, body: ghPush}, 400, outcomeBadRequest, nil, "/webhook/{forge}"},
		{"unknown forge in the path", delivery{path: "/webhook/sourceforge", headers: map[string]string{"Content-Type": "application/json"}, body: ghPush}, 404, outcomeBadRequest, nil, "unknown forge"},
		{"over the body limit", githubDelivery("push", "gh-big", "gh-secret-0123456789", bytes.Repeat([]byte(" "), 70000)), 413, "rejected", nil, "65536"},
	}
	f := newIntake(t, "0", "1", "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, a := f.send(tc.d)
			if status != tc.status || a.Outcome != tc.outcome {
				t.Fatalf("got %d %s (%s), want %d %s", status, a.Outcome, a.Reason, tc.status, tc.outcome)
			}
			var got []string
			for _, d := range a.Deployments {
				got = append(got, d.Fraise+"/"+d.Environment)
				if d.DeploymentID == 0 {
					t.Errorf("queued %s/%s without a deployment id", d.Fraise, d.Environment)
				}
			}
			if diff := cmp.Diff(tc.deploys, got); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
			if !strings.Contains(a.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", a.Reason, tc.reason)
			}
		})
	}

	// Every delivery that reached authentication is recorded, with its
	// outcome (those refused before it, a sample); a forged one never with
	// its delivery id.
	evs := f.events()
	byOutcome := map[store.Outcome]int{}
	for _, e := range evs {
		byOutcome[e.Outcome]++
		if e.Outcome == store.OutcomeRejected && strings.Contains(e.Reason, "signature") && e.DeliveryID != "" {
			t.Errorf("refused delivery recorded with its delivery id %q", e.DeliveryID)
		}
		for _, secret := range []string{"gh-secret-0123456789", "old-secret-0123456789", "gl-token-0123456789", "gitea-secret-0123456789", "bb-secret-0123456789", "bbs-secret-0123456789", "projectx-only-0123456789", "hello-only-0123456789"} {
			if strings.Contains(fmt.Sprintf("%+v", e), secret) {
				t.Errorf("event %d contains a secret", e.ID)
			}
		}
	}
	// Four pushes queued hello/production: the first three were superseded
	// by the next, so only the last stands. Of the seven requests refused
	// before authentication, all from one address, the first five are
	// stored (refusalsPerSource); the two malformed signed ones are too.
	want := map[store.Outcome]int{"accepted": 5, "superseded": 3, "ignored": 4, "rejected": refusalsPerSource + 2}
	if diff := cmp.Diff(want, byOutcome); diff != "" {
		t.Errorf("recorded outcomes (-want +got):\n%s", diff)
	}
}

// pushing is the github_push payload pushing commit n instead.
func pushing(ghPush []byte, n int) []byte {
	return bytes.Replace(ghPush, []byte("0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C"), []byte(fmt.Sprintf("%040x", n)), 1)
}

// TestIntakeRedelivery: a redelivered id gets the first answer and queues
// nothing new; a forged request cannot take a real delivery's id.
func TestIntakeRedelivery(t *testing.T) {
	f := newIntake(t, "0", "1", "")
	ghPush := payload(t, "github_push")
	// A forgery arrives first with the id the forge will use.
	if status, _ := f.send(githubDelivery("push", "d-42", "forged", ghPush)); status != 401 {
		t.Fatalf("forgery: %d", status)
	}
	status, first := f.send(githubDelivery("push", "d-42", "gh-secret-0123456789", ghPush))
	if status != 202 || first.Duplicate {
		t.Fatalf("real delivery after a forgery with its id: %d %+v", status, first)
	}
	status, again := f.send(githubDelivery("push", "d-42", "gh-secret-0123456789", ghPush))
	if status != 202 || !again.Duplicate {
		t.Fatalf("redelivery: %d %+v", status, again)
	}
	first.Duplicate = false
	again.Duplicate = false
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("redelivery answer differs (-first +again):\n%s", diff)
	}
	q, err := f.db.QueuedDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 {
		t.Errorf("%d queued after a redelivery, want 1", len(q))
	}
}

// TestIntakeSupersedes: pushes to one target leave one request waiting,
// which each newer push takes over; the older deliveries are superseded.
func TestIntakeSupersedes(t *testing.T) {
	f := newIntake(t, "0", "1", "")
	base := payload(t, "github_push")
	var events []int64
	first := int64(0)
	for i := range 5 {
		body := bytes.Replace(base, []byte("0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C"), []byte(fmt.Sprintf("%040x", i+1)), 1)
		status, a := f.send(githubDelivery("push", fmt.Sprint("p", i), "gh-secret-0123456789", body))
		if status != 202 || len(a.Deployments) != 1 {
			t.Fatalf("push %d: %d %+v", i, status, a)
		}
		q := a.Deployments[0]
		if i == 0 {
			first = q.DeploymentID
		} else if q.DeploymentID != first || q.ReplacedEvent != events[i-1] || q.Superseded != 0 {
			t.Errorf("push %d: %+v; want deployment %d, replacing webhook event %d's request", i, q, first, events[i-1])
		}
		events = append(events, a.WebhookEventID)
	}
	q, err := f.db.QueuedDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].NewSHA != fmt.Sprintf("%040x", 5) {
		t.Fatalf("queue: %+v", q)
	}
	outcomes := map[string]store.Outcome{}
	for _, e := range f.events() {
		outcomes[e.DeliveryID] = e.Outcome
	}
	want := map[string]store.Outcome{"p0": "superseded", "p1": "superseded", "p2": "superseded", "p3": "superseded", "p4": "accepted"}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestIntakeRateLimit(t *testing.T) {
	f := newIntake(t, "1", "3", "")
	ghPush := payload(t, "github_push")
	var statuses []int
	for i := range 5 {
		status, _ := f.send(githubDelivery("ping", fmt.Sprint("r", i), "gh-secret-0123456789", ghPush))
		statuses = append(statuses, status)
	}
	// A burst of 3, then refused until the bucket refills at 1/s.
	if diff := cmp.Diff([]int{200, 200, 200, 429, 429}, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if got := len(f.events()); got != 3 {
		t.Errorf("%d events recorded, want 3: refused requests are counted in metrics, not stored", got)
	}
}

func TestClientAddr(t *testing.T) {
	f := newIntake(t, "0", "1", "")
	tests := []struct {
		remote, xff, want string
	}{
		{"192.0.2.7:5000", "", "192.0.2.7"},
		{"192.0.2.7:5000", "203.0.113.9", "192.0.2.7"}, // not a trusted proxy: XFF ignored
		{"10.9.0.1:5000", "203.0.113.9", "203.0.113.9"},
		{"10.9.0.1:5000", "198.51.100.1, 203.0.113.9, 10.9.3.3", "203.0.113.9"},
		{"10.9.0.1:5000", "garbage", "10.9.0.1"},
		{"[::ffff:10.9.0.1]:5000", "203.0.113.9", "203.0.113.9"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodPost, "/webhook", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := f.srv.clientAddr(r); got != tc.want {
			t.Errorf("%s with X-Forwarded-For %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestAPI(t *testing.T) {
	f := newIntake(t, "0", "1", "s3cret-token-0123456789")
	status, a := f.send(githubDelivery("push", "api-1", "gh-secret-0123456789", payload(t, "github_push")))
	if status != 202 {
		t.Fatalf("push: %d %+v", status, a)
	}
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	id := a.Deployments[0].DeploymentID
	tests := []struct {
		path, token string
		status      int
		contains    string
	}{
		{"/health", "", 200, `"ok"`},
		{"/providers", "", 401, "bearer token"},
		{"/providers", "s3cret-token-0123456789", 200, `"forge":"bitbucket_server"`},
		{"/api/fraises", "", 401, "bearer token"},
		{"/api/fraises", "wrong", 401, "bearer token"},
		{"/api/fraises", "s3cret-token-0123456789", 200, `"fraise":"hello"`},
		{"/api/deployments", "s3cret-token-0123456789", 200, `"status":"queued"`},
		{"/api/deployments?fraise=hello&limit=5", "s3cret-token-0123456789", 200, `"fraise":"hello"`},
		{"/api/deployments?limit=0", "s3cret-token-0123456789", 400, "limit"},
		{fmt.Sprintf("/api/deployments/%d", id), "s3cret-token-0123456789", 200, `"steps":[]`},
		{"/api/deployments/99999", "s3cret-token-0123456789", 404, "no deployment"},
		{"/api/deployments/x", "s3cret-token-0123456789", 400, "positive integer"},
		{"/metrics", "", 401, "bearer token"},
		{"/metrics", "s3cret-token-0123456789", 200, `fraisier_webhooks_total{forge="github",outcome="accepted"} 1`},
	}
	for _, tc := range tests {
		status, body := get(tc.path, tc.token)
		if status != tc.status || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %s, want %d containing %s", tc.path, status, clip(body, 300), tc.status, tc.contains)
		}
		if strings.Contains(body, "gh-secret-0123456789") || strings.Contains(body, "s3cret-token-0123456789") {
			t.Errorf("GET %s shows a secret", tc.path)
		}
	}
}

const pullRequestConfig = `
git:
  github: {secret: gh-secret-0123456789}
  gitlab: {secret: gl-token-0123456789}
  gitea: {secret: gitea-secret-0123456789}
  bitbucket: {secret: bb-secret-0123456789}
  bitbucket_server: {secret: bbs-secret-0123456789}
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    forge: github
    environments:
      production: {branch: master, git_repo: /srv/git/hello.git, app_path: /srv/hello}
      preview: {branch: preview, pull_requests: "mas*", git_repo: /srv/git/hello.git, app_path: /srv/hello-preview}
  gitlabtest:
    type: api
    repository: gitlabhq/gitlab-test
    forge: gitlab
    environments:
      preview: {branch: preview, pull_requests: master, git_repo: /srv/git/glt.git, app_path: /srv/glt}
  webhooks:
    type: api
    repository: gitea/webhooks
    forge: gitea
    environments:
      preview: {branch: preview, pull_requests: master, git_repo: /srv/git/webhooks.git, app_path: /srv/webhooks}
  bbs:
    type: api
    repository: PROJ/repository
    forge: bitbucket_server
    environments:
      preview: {branch: preview, pull_requests: master, git_repo: /srv/git/bbs.git, app_path: /srv/bbs}
  projectx:
    type: api
    repository: team_name/project-x
    forge: bitbucket
    environments:
      preview: {branch: preview, pull_requests: main, git_repo: /srv/git/px.git, app_path: /srv/px}
`

// TestIntakePullRequests: every forge's pull request, opened against a
// branch an environment's pull_requests matches, queues its head there,
// with the forge's pull request ref as the requested ref; Bitbucket Cloud,
// which sends no full head commit and keeps no ref of it, is ignored with
// the reason.
func TestIntakePullRequests(t *testing.T) {
	f := newIntakeWith(t, pullRequestConfig)
	db := f.db
	forgePayload := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "forge", "testdata", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gl, gt := forgePayload("gitlab_merge_request"), forgePayload("gitea_pull_request")
	bbs, bb := forgePayload("bitbucket_server_pr_opened"), forgePayload("bitbucket_pullrequest_created")
	for _, tc := range []struct {
		name   string
		d      delivery
		status int
		target string // fraise/environment queued, or "" when ignored
		ref    string // the requested ref's prefix, or the reason's substring
	}{
		{"github", githubDelivery("pull_request", "pr-gh", "gh-secret-0123456789", forgePayload("github_pull_request")), 202, "hello/preview", "refs/pull/2/head@"},
		{"gitlab", delivery{headers: map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Merge Request Hook",
			"Idempotency-Key": "pr-gl", "X-Gitlab-Token": "gl-token-0123456789"}, body: gl}, 202, "gitlabtest/preview", "refs/merge-requests/1/head@"},
		{"gitea", delivery{headers: map[string]string{"Content-Type": "application/json", "X-Gitea-Event": "pull_request",
			"X-Gitea-Delivery": "pr-gt", "X-Gitea-Signature": hexHMAC("gitea-secret-0123456789", gt)}, body: gt}, 202, "webhooks/preview", "refs/pull/"},
		{"bitbucket data center", delivery{path: "/webhook/bitbucket_server", headers: map[string]string{"Content-Type": "application/json",
			"X-Event-Key": "pr:opened", "X-Request-Id": "pr-bbs", "X-Hub-Signature": "sha256=" + hexHMAC("bbs-secret-0123456789", bbs)}, body: bbs},
			202, "bbs/preview", "refs/pull-requests/"},
		{"bitbucket cloud", delivery{headers: map[string]string{"Content-Type": "application/json", "X-Event-Key": "pullrequest:created",
			"X-Request-UUID": "pr-bb", "X-Hub-Signature": "sha256=" + hexHMAC("bb-secret-0123456789", bb)}, body: bb}, 200, "", "sent no full commit for its head"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, a := f.send(tc.d)
			if status != tc.status {
				t.Fatalf("answered %d %+v, want %d", status, a, tc.status)
			}
			if tc.target == "" {
				if a.Outcome != store.OutcomeIgnored || !strings.Contains(a.Reason, tc.ref) || len(a.Deployments) != 0 {
					t.Errorf("answer %+v; want ignored, saying %q", a, tc.ref)
				}
				return
			}
			if a.Outcome != store.OutcomeAccepted || len(a.Deployments) != 1 || a.Deployments[0].Fraise+"/"+a.Deployments[0].Environment != tc.target {
				t.Fatalf("answer %+v; want accepted, queueing %s", a, tc.target)
			}
			d, err := db.Deployment(context.Background(), a.Deployments[0].DeploymentID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != store.StatusQueued || !strings.HasPrefix(d.RequestedRef, tc.ref) || len(d.NewSHA) != 40 {
				t.Errorf("queued %+v; want the head commit, requested as %s…", d, tc.ref)
			}
		})
	}
}
