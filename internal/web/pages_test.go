package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// escaped is hostile as html/template writes it in text.
const escaped = `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`

func TestPagesShowTheKnownContentEscaped(t *testing.T) {
	f := newFixture(t)
	c := f.login(f.tokens["reader"])
	tests := []struct {
		path string
		want []string
	}{
		{"/ui/", []string{`id="targets"`, "shop", "production", "staging", shaOK[:12], "r1", "alice", "failed", "never",
			`data-refresh="/ui/fragment/overview"`}},
		{"/ui/fragment/overview", []string{`id="targets"`, shaOK[:12], "failed"}},
		{fmt.Sprintf("/ui/deployments/%d", f.ok), []string{shaOK, "build", "compiled", "succeeded", escaped}},
		{fmt.Sprintf("/ui/deployments/%d", f.failed), []string{shaBad, "failed", "health check: " + escaped}},
		{"/ui/history", []string{`id="history"`, shaOK[:12], shaBad[:12], "alice", escaped}},
		{"/ui/webhooks", []string{`id="webhooks"`, "github", "push", "acme/shop", "ignored",
			"no environment of acme/shop follows branch feature-x", "refs/heads/" + escaped}},
		{"/ui/stats", []string{`id="stats"`, "shop/production", `id="chart-per-day"`, `id="chart-cfr"`, `id="chart-restore"`, `<rect class="bar" x="200" y="0" height="20" width="300.0">`}},
		{"/ui/jobs", []string{`id="jobs"`, "No scheduled job recorded."}},
	}
	for _, tc := range tests {
		a := f.do("GET", tc.path, c, nil, nil)
		if a.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", tc.path, a.status, a.body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(a.body, w) {
				t.Errorf("GET %s lacks %q", tc.path, w)
			}
		}
		if strings.Contains(a.body, hostile) {
			t.Errorf("GET %s shows hostile text unescaped", tc.path)
		}
		if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || a.header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: headers %v", tc.path, a.header)
		}
	}
	for path, status := range map[string]int{"/ui/deployments/999999": 404, "/ui/deployments/x": 400, "/ui/history?before=-1": 400,
		"/ui/history?status=nope": 400, "/ui/history?since=yesterday": 400} {
		if a := f.do("GET", path, c, nil, nil); a.status != status {
			t.Errorf("GET %s: %d, want %d", path, a.status, status)
		}
	}
	for _, asset := range []string{"/ui/static/style.css", "/ui/static/refresh.js"} {
		if a := f.do("GET", asset, nil, nil, nil); a.status != 200 || a.body == "" {
			t.Errorf("GET %s: %d", asset, a.status)
		}
	}
}

// TestRunningDeploymentLeavesTheLiveLogHook: a running deployment's page
// has the element the live-log script attaches to; a finished one not.
func TestRunningDeploymentLeavesTheLiveLogHook(t *testing.T) {
	f := newFixture(t)
	id, err := f.db.StartDeployment(context.Background(), store.Deployment{Target: store.Target{Fraise: "shop", Environment: "staging"},
		Trigger: store.TriggerCLI, Actor: "bob", NewSHA: shaOK})
	if err != nil {
		t.Fatal(err)
	}
	c := f.login(f.tokens["reader"])
	hook := fmt.Sprintf(`<pre id="live-log" data-src="/ui/deployments/%d/log"`, id)
	if a := f.do("GET", fmt.Sprintf("/ui/deployments/%d", id), c, nil, nil); !strings.Contains(a.body, hook) {
		t.Errorf("running deployment: no live-log hook %s in %s", hook, a.body)
	}
	if a := f.do("GET", "/ui/", c, nil, nil); !strings.Contains(a.body, fmt.Sprintf("#%d running", id)) {
		t.Errorf("overview does not show #%d running", id)
	}
	if a := f.do("GET", fmt.Sprintf("/ui/deployments/%d", f.ok), c, nil, nil); strings.Contains(a.body, `id="live-log"`) {
		t.Errorf("finished deployment has a live-log hook")
	}
	// The hook's stream answers the session (a finished deployment's log
	// streams whole, then ends), and no one else.
	logPath := fmt.Sprintf("/ui/deployments/%d/log", f.ok)
	if a := f.do("GET", logPath, c, nil, nil); a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/event-stream") ||
		!strings.Contains(a.body, "event: line\ndata: compiled\n") || !strings.Contains(a.body, "event: end\n") {
		t.Errorf("the live log through the session: %d %s\n%s", a.status, a.header.Get("Content-Type"), a.body)
	}
	if a := f.do("GET", logPath, nil, nil, nil); a.status != http.StatusSeeOther {
		t.Errorf("the live log without a session: %d, want 303 to the login", a.status)
	}
}

var rowRe = regexp.MustCompile(`<tr id="deployment-(\d+)">`)
var nextRe = regexp.MustCompile(`id="next-page" rel="next" href="([^"]+)"`)

// TestHistoryPagesByID: 120 deployments read 50, 50 and 20 a page, each
// once, newest first, the filters kept on the next page's link.
func TestHistoryPagesByID(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	staging := store.Target{Fraise: "shop", Environment: "staging"}
	for i := range 120 {
		id, err := f.db.StartDeployment(ctx, store.Deployment{Target: staging, Trigger: store.TriggerCLI, Actor: "bot", NewSHA: fmt.Sprintf("%040d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded}); err != nil {
			t.Fatal(err)
		}
	}
	c := f.login(f.tokens["reader"])
	path := "/ui/history?environment=staging&status=succeeded"
	var sizes []int
	seen := map[string]bool{}
	last := int64(1 << 62)
	for path != "" {
		a := f.do("GET", path, c, nil, nil)
		rows := rowRe.FindAllStringSubmatch(a.body, -1)
		sizes = append(sizes, len(rows))
		for _, r := range rows {
			var id int64
			fmt.Sscan(r[1], &id)
			if seen[r[1]] || id >= last {
				t.Fatalf("deployment %s out of order or seen twice", r[1])
			}
			seen[r[1]], last = true, id
		}
		path = ""
		if m := nextRe.FindStringSubmatch(a.body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
			if !strings.Contains(path, "environment=staging") || !strings.Contains(path, "status=succeeded") || strings.Contains(path, "offset") {
				t.Fatalf("next page %q drops the filters", path)
			}
		}
	}
	if fmt.Sprint(sizes) != "[50 50 20]" {
		t.Fatalf("page sizes %v, want [50 50 20]", sizes)
	}
}

// action posts a confirmed action form with the session's CSRF token.
func (f *fixture) action(c *http.Cookie, action string, extra url.Values, hdr map[string]string) answer {
	f.t.Helper()
	form := url.Values{"csrf": {f.csrf(c)}, "fraise": {"shop"}, "environment": {"production"}, "confirm": {"yes"}}
	for k, v := range extra {
		form[k] = v
	}
	return f.do("POST", "/ui/actions/"+action, c, form, hdr)
}

func TestRollbackNeedsTheScope(t *testing.T) {
	f := newFixture(t)
	op := f.login(f.tokens["operator"])
	if a := f.do("GET", "/ui/actions/rollback?fraise=shop&environment=production", op, nil, nil); a.status != 200 || !strings.Contains(a.body, `id="confirm"`) {
		t.Fatalf("confirmation page: %d %s", a.status, a.body)
	}
	a := f.action(op, "rollback", nil, nil)
	m := regexp.MustCompile(`^/ui/deployments/(\d+)$`).FindStringSubmatch(a.header.Get("Location"))
	if a.status != http.StatusSeeOther || m == nil {
		t.Fatalf("rollback: %d %s %s", a.status, a.header.Get("Location"), a.body)
	}
	var id int64
	fmt.Sscan(m[1], &id)
	d, err := f.db.Deployment(context.Background(), id)
	if err != nil || d.Status != store.StatusQueued || d.Trigger != store.TriggerRollback || d.NewSHA != shaOK || d.Actor != "operator via api" {
		t.Fatalf("queued rollback: %+v %v", d, err)
	}
	if a := f.action(op, "rollback", url.Values{"confirm": {""}}, nil); a.status != http.StatusBadRequest || !strings.Contains(a.body, "Tick the box") {
		t.Errorf("unconfirmed rollback: %d", a.status)
	}
	if a := f.do("GET", "/ui/", op, nil, nil); !strings.Contains(a.body, `id="rollback-shop-production"`) || strings.Contains(a.body, `id="rollback-shop-staging"`) {
		t.Errorf("the operator's overview offers the wrong rollbacks")
	}
	for name, secret := range map[string]string{"reader": f.tokens["reader"], "server.api_token": readToken} {
		c := f.login(secret)
		if a := f.do("GET", "/ui/", c, nil, nil); strings.Contains(a.body, `id="rollback-`) || strings.Contains(a.body, `id="lock-`) {
			t.Errorf("%s: the overview offers actions the token may not do", name)
		}
		a := f.action(c, "rollback", nil, nil)
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "rollback:shop/production") {
			t.Errorf("%s: rollback answered %d %s", name, a.status, a.body)
		}
		if a := f.do("GET", "/ui/actions/lock?fraise=shop&environment=production", c, nil, nil); a.status != http.StatusForbidden {
			t.Errorf("%s: lock form answered %d", name, a.status)
		}
	}
	// Out of the operator's scopes: staging may be locked, not rolled back.
	if a := f.action(op, "rollback", url.Values{"environment": {"staging"}}, nil); a.status != http.StatusForbidden {
		t.Errorf("rollback of staging: %d", a.status)
	}
}

func TestLockAndUnlockThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	op := f.login(f.tokens["operator"])
	if a := f.action(op, "lock", url.Values{"reason": {""}}, nil); a.status != http.StatusBadRequest || !strings.Contains(a.body, "reason") {
		t.Fatalf("lock without a reason: %d %s", a.status, a.body)
	}
	if a := f.action(op, "lock", url.Values{"reason": {"freeze " + hostile}}, nil); a.status != http.StatusSeeOther {
		t.Fatalf("lock: %d %s", a.status, a.body)
	}
	a := f.do("GET", "/ui/", op, nil, nil)
	if !strings.Contains(a.body, "locked by operator:operator via api: freeze "+escaped) || !strings.Contains(a.body, "/ui/actions/unlock?") {
		t.Errorf("overview does not show the lock: %s", a.body)
	}
	if a := f.action(op, "rollback", nil, nil); a.status != http.StatusConflict || !strings.Contains(a.body, "locked by") {
		t.Errorf("rollback of a locked environment: %d", a.status)
	}
	if a := f.action(op, "unlock", url.Values{"reason": {"done"}}, nil); a.status != http.StatusSeeOther {
		t.Fatalf("unlock: %d %s", a.status, a.body)
	}
	if locks, err := f.db.Locks(context.Background()); err != nil || len(locks) != 0 {
		t.Fatalf("locks after unlock: %v %v", locks, err)
	}
}

// TestForgedPostsAreRefused: without the CSRF token, with another's, or
// from another site, nothing is queued.
func TestForgedPostsAreRefused(t *testing.T) {
	f := newFixture(t)
	op := f.login(f.tokens["operator"])
	other := f.login(f.tokens["reader"])
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "fraise": {"shop"}, "environment": {"production"}, "confirm": {"yes"}}
	}
	tests := map[string]struct {
		form url.Values
		hdr  map[string]string
	}{
		"no CSRF token":             {form(""), nil},
		"a wrong one":               {form("x" + f.csrf(op)[1:]), nil},
		"another session's":         {form(f.csrf(other)), nil},
		"a cross-site Origin":       {form(f.csrf(op)), map[string]string{"Origin": "https://evil.example"}},
		"Sec-Fetch-Site cross-site": {form(f.csrf(op)), map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for name, tc := range tests {
		a := f.do("POST", "/ui/actions/rollback", op, tc.form, tc.hdr)
		if a.status != http.StatusForbidden {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
	}
	if a := f.do("POST", "/ui/login", nil, url.Values{"token": {f.tokens["operator"]}}, map[string]string{"Origin": "https://evil.example"}); a.status != http.StatusForbidden {
		t.Errorf("cross-site login: %d", a.status)
	}
	if q, err := f.db.QueuedDeployments(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("forged posts queued %v (%v)", q, err)
	}
	// The same form from the dashboard's own origin goes through.
	if a := f.action(op, "rollback", nil, map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"}); a.status != http.StatusSeeOther {
		t.Errorf("same-origin rollback: %d %s", a.status, a.body)
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	cfg, err := config.Parse("fraises.yaml", []byte(webConfig), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	srv, err := server.New(server.Options{Config: cfg, Store: f.db})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cl := hs.Client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cl.PostForm(hs.URL+"/ui/login", url.Values{"token": {f.tokens["reader"]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(sc, "; Secure") {
		t.Fatalf("login over TLS: %d %q", resp.StatusCode, sc)
	}
}

// TestWebhooksFilter: the webhooks page filters by forge, fraise and
// outcome, and refuses an outcome it does not know.
func TestWebhooksFilter(t *testing.T) {
	f := newFixture(t)
	c := f.login(f.tokens["reader"])
	for _, tc := range []struct {
		query string
		shown bool
	}{
		{"", true},
		{"?outcome=ignored", true},
		{"?outcome=ignored&forge=github", true},
		{"?outcome=accepted", false},
		{"?forge=gitlab", false},
	} {
		a := f.do("GET", "/ui/webhooks"+tc.query, c, nil, nil)
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d", tc.query, a.status)
		}
		if got := strings.Contains(a.body, "follows branch feature-x"); got != tc.shown {
			t.Errorf("%s: the ignored delivery shown=%v, want %v", tc.query, got, tc.shown)
		}
		if !tc.shown && !strings.Contains(a.body, "No delivery matches.") {
			t.Errorf("%s: no word for an empty result", tc.query)
		}
	}
	if a := f.do("GET", "/ui/webhooks?outcome=exploded", c, nil, nil); a.status != http.StatusBadRequest {
		t.Errorf("an unknown outcome: %d, want 400", a.status)
	}
}
