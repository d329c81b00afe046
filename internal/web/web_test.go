package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// The dashboard as fraisier serve mounts it, over a real SQLite store
// filled with known content.

const readToken = "read-only-token-0123456789"

const webConfig = `
server:
  api_token: ` + readToken + `
fraises:
  shop:
    type: api
    repository: acme/shop
    forge: github
    webhook: {secret: shop-only-0123456789}
    environments:
      production: {branch: main, git_repo: /nonexistent/shop.git, app_path: /srv/shop}
      staging: {branch: develop, git_repo: /nonexistent/shop.git, app_path: /srv/shop-staging}
`

// hostile is text a deploy user or a repository controls.
const hostile = `<script>alert("x")</script>`

type fixture struct {
	t      *testing.T
	db     *store.DB
	url    string
	tokens map[string]string
	// ids of the known deployments: a success, then a failure.
	ok, failed int64
}

var (
	shaOK    = strings.Repeat("a1", 20)
	shaBad   = strings.Repeat("b2", 20)
	csrfRe   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	scopesOf = map[string][]string{
		"operator": {"read", "rollback:shop/production", "lock:shop/*"},
		"reader":   {"read"},
		"actor":    {"rollback:shop/production"},
	}
)

func newFixture(t *testing.T, opts ...func(*server.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Parse("fraises.yaml", []byte(webConfig), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, tokens: map[string]string{}}
	for name, scopes := range scopesOf {
		var sc []store.Scope
		for _, s := range scopes {
			p, err := store.ParseScope(s)
			if err != nil {
				t.Fatal(err)
			}
			sc = append(sc, p)
		}
		_, secret, err := db.CreateAPIToken(ctx, name, sc)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = secret
	}
	f.fill(ctx)
	o := server.Options{Config: cfg, Store: db}
	for _, set := range opts {
		set(&o)
	}
	srv, err := server.New(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	f.url = hs.URL
	return f
}

// fill records two deployments of shop/production with steps, two
// releases and a webhook delivery that deployed nothing.
func (f *fixture) fill(ctx context.Context) {
	t, db := f.t, f.db
	prod := store.Target{Fraise: "shop", Environment: "production"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	f.ok, err = db.StartDeployment(ctx, store.Deployment{Target: prod, Trigger: store.TriggerCLI, Actor: "alice", NewSHA: shaOK, Release: "r1"})
	must(err)
	step, err := db.StartStep(ctx, f.ok, "build")
	must(err)
	must(db.AppendStepOutput(ctx, step, []byte("compiled\n"+hostile+"\n")))
	code := 0
	must(db.FinishStep(ctx, step, "succeeded", &code, ""))
	must(db.FinishDeployment(ctx, f.ok, store.Finish{Status: store.StatusSucceeded}))
	_, err = db.AddRelease(ctx, store.Release{Target: prod, Name: "r1", SHA: shaOK, Path: "/srv/shop/releases/r1", State: store.ReleaseGood, DeploymentID: f.ok})
	must(err)
	f.failed, err = db.StartDeployment(ctx, store.Deployment{Target: prod, Trigger: store.TriggerCLI, Actor: hostile, NewSHA: shaBad, Release: "r2"})
	must(err)
	must(db.FinishDeployment(ctx, f.failed, store.Finish{Status: store.StatusFailed, Error: "health check: " + hostile}))
	_, err = db.AddRelease(ctx, store.Release{Target: prod, Name: "r2", SHA: shaOK, Path: "/srv/shop/releases/r2", State: store.ReleaseCurrent, DeploymentID: f.failed})
	must(err)
	_, _, err = db.RecordWebhook(ctx, store.WebhookEvent{Forge: "github", DeliveryID: "d-1", EventType: "push", Repository: "acme/shop",
		Ref: "refs/heads/" + hostile, Outcome: store.OutcomeIgnored, Reason: "no environment of acme/shop follows branch feature-x"})
	must(err)
}

// client never follows redirects, so that tests see them.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request with the session cookie (if any), the form (a
// POST when set) and extra headers.
func (f *fixture) do(method, path string, cookie *http.Cookie, form url.Values, hdr map[string]string) answer {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// login signs in with the secret and answers the session cookie.
func (f *fixture) login(secret string) *http.Cookie {
	f.t.Helper()
	a := f.do("POST", "/ui/login", nil, url.Values{"token": {secret}}, nil)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/" {
		f.t.Fatalf("login: %d %s", a.status, a.body)
	}
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == "fraisier_session" {
			return c
		}
	}
	f.t.Fatalf("login set no session cookie: %v", a.header)
	return nil
}

// csrf is the session's CSRF token, read from a page as a browser would.
func (f *fixture) csrf(c *http.Cookie) string {
	f.t.Helper()
	a := f.do("GET", "/ui/", c, nil, nil)
	m := csrfRe.FindStringSubmatch(a.body)
	if m == nil {
		f.t.Fatalf("no CSRF token on the overview: %s", a.body)
	}
	return m[1]
}

func TestLoginSetsASessionCookieNeverTheToken(t *testing.T) {
	f := newFixture(t)
	a := f.do("POST", "/ui/login", nil, url.Values{"token": {f.tokens["operator"]}}, nil)
	if a.status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	raw := a.header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Set-Cookie: %q", raw)
	}
	for _, want := range []string{"fraisier_session=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(raw[0], want) {
			t.Errorf("cookie %q lacks %s", raw[0], want)
		}
	}
	if strings.Contains(raw[0], "Secure") {
		t.Errorf("cookie over plain HTTP marked Secure: %q", raw[0])
	}
	for _, secret := range f.tokens {
		if strings.Contains(raw[0], secret) || strings.Contains(raw[0], strings.TrimPrefix(secret, store.TokenPrefix)) {
			t.Fatalf("the cookie holds the token: %q", raw[0])
		}
	}
	// server.api_token signs in read-only.
	f.login(readToken)
	for name, tc := range map[string]struct {
		secret, says string
	}{
		"unknown": {"fraisier_nope", "Unknown token"},
		"empty":   {"", "Paste an API token"},
		"no read": {f.tokens["actor"], "has no read scope"},
	} {
		a := f.do("POST", "/ui/login", nil, url.Values{"token": {tc.secret}}, nil)
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, tc.says) || a.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: %d %q", name, a.status, a.body)
		}
	}
}

// TestSecureCookieBehindAProxy: X-Forwarded-Proto makes the cookie
// Secure from a trusted proxy only.
func TestSecureCookieBehindAProxy(t *testing.T) {
	f := newFixture(t)
	https := map[string]string{"X-Forwarded-Proto": "https"}
	a := f.do("POST", "/ui/login", nil, url.Values{"token": {f.tokens["reader"]}}, https)
	if strings.Contains(a.header.Get("Set-Cookie"), "Secure") {
		t.Fatalf("an untrusted peer's X-Forwarded-Proto made the cookie Secure: %q", a.header.Get("Set-Cookie"))
	}
	trusting := strings.Replace(webConfig, "server:\n", "server:\n  trusted_proxies: [127.0.0.1/32, \"::1/128\"]\n", 1)
	cfg, err := config.Parse("fraises.yaml", []byte(trusting), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Store: f.db})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	f.url = hs.URL
	a = f.do("POST", "/ui/login", nil, url.Values{"token": {f.tokens["reader"]}}, https)
	if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Set-Cookie"), "; Secure") {
		t.Fatalf("behind a trusted proxy over https: %d %q", a.status, a.header.Get("Set-Cookie"))
	}
}

func TestUnauthenticatedRequestsRedirect(t *testing.T) {
	f := newFixture(t)
	bogus := &http.Cookie{Name: "fraisier_session", Value: "forged"}
	for _, path := range []string{"/ui/", "/ui/history", "/ui/webhooks", "/ui/stats", "/ui/jobs",
		fmt.Sprintf("/ui/deployments/%d", f.ok), "/ui/fragment/overview", "/ui/actions/rollback?fraise=shop&environment=production", "/ui/nope"} {
		for _, c := range []*http.Cookie{nil, bogus} {
			a := f.do("GET", path, c, nil, nil)
			if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/login" {
				t.Errorf("GET %s (cookie %v): %d %s", path, c != nil, a.status, a.header.Get("Location"))
			}
		}
	}
	a := f.do("POST", "/ui/actions/rollback", nil, url.Values{"fraise": {"shop"}, "environment": {"production"}, "confirm": {"yes"}}, nil)
	if a.status != http.StatusSeeOther {
		t.Errorf("POST without a session: %d", a.status)
	}
	if a := f.do("GET", "/ui/login", nil, nil, nil); a.status != 200 || !strings.Contains(a.body, `id="token"`) {
		t.Errorf("login form: %d %s", a.status, a.body)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	f := newFixture(t)
	c := f.login(f.tokens["reader"])
	a := f.do("POST", "/ui/logout", c, url.Values{"csrf": {f.csrf(c)}}, nil)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/login" {
		t.Fatalf("logout: %d %s", a.status, a.body)
	}
	if a := f.do("GET", "/ui/", c, nil, nil); a.status != http.StatusSeeOther {
		t.Fatalf("the session lives on after logout: %d", a.status)
	}
}

func TestRevokedTokenEndsItsSessions(t *testing.T) {
	f := newFixture(t)
	c := f.login(f.tokens["reader"])
	if _, err := f.db.RevokeAPIToken(context.Background(), "reader"); err != nil {
		t.Fatal(err)
	}
	if a := f.do("GET", "/ui/", c, nil, nil); a.status != http.StatusSeeOther {
		t.Fatalf("a revoked token's session still reads: %d", a.status)
	}
}
