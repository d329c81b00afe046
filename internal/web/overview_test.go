package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// The overview's hooks stand in for serve's git mirror and health check
// here, to count the calls and answer what the test needs; the real ones
// are run by the server's end-to-end test.

// hooks answer the overview's subjects and health and count the calls.
type hooks struct {
	mu       sync.Mutex
	subjects map[string]string
	reads    int
	health   map[string]server.LiveState // by environment
	probes   map[string]int
	// block, when set, holds every probe until it is closed, whatever
	// its context says.
	block chan struct{}
}

func (h *hooks) set(o *server.Options) {
	o.Dashboard = server.DashboardHooks{Subjects: h.readSubjects, Live: h.probe}
}

func (h *hooks) readSubjects(_ context.Context, _, _ string, shas ...string) map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads++
	out := map[string]string{}
	for _, sha := range shas {
		if s, ok := h.subjects[sha]; ok {
			out[sha] = s
		}
	}
	return out
}

func (h *hooks) probe(_ context.Context, _, env string) server.LiveState {
	if h.block != nil {
		<-h.block // past ctx's deadline too: a probe that hangs
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.probes == nil {
		h.probes = map[string]int{}
	}
	h.probes[env]++
	return h.health[env]
}

func (h *hooks) count() (reads int, probes map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := map[string]int{}
	for k, v := range h.probes {
		p[k] = v
	}
	return h.reads, p
}

// rowOf is the overview row of environment in body.
func rowOf(body, environment string) string {
	m := regexp.MustCompile(`(?s)<tr id="target-shop-` + environment + `".*?</tr>`).FindString(body)
	return m
}

// until fetches path until its row of environment holds want.
func (f *fixture) until(c *http.Cookie, path, environment, want string) string {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := f.do("GET", path, c, nil, nil)
		row := rowOf(a.body, environment)
		if a.status == http.StatusOK && strings.Contains(row, want) {
			return row
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("GET %s: %d, row of %s lacks %q: %s", path, a.status, environment, want, row)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOverviewShowsSubjectAndHealthNow(t *testing.T) {
	no := false
	long := hostile + " " + strings.Repeat("word ", 40)
	h := &hooks{
		subjects: map[string]string{shaOK: long + "\nthe body, never shown", shaBad: "the bad one"},
		health: map[string]server.LiveState{"production": {Healthy: &no, Reason: "GET http://127.0.0.1/health: 502 " + hostile,
			Units: map[string]bool{"shop.service": false}}},
	}
	f := newFixture(t, h.set)
	c := f.login(f.tokens["reader"])
	if reads, probes := h.count(); reads != 0 || len(probes) != 0 {
		t.Fatalf("before any view: %d subject reads, probes %v", reads, probes)
	}
	for _, path := range []string{"/ui/", "/ui/fragment/overview"} {
		row := f.until(c, path, "production", "checked")
		for _, want := range []string{
			`<span class="subject">` + escaped + " word",
			`unhealthy</span>: GET http://127.0.0.1/health: 502 ` + escaped,
			"not active: shop.service",
		} {
			if !strings.Contains(row, want) {
				t.Errorf("GET %s: the production row lacks %q: %s", path, want, row)
			}
		}
		if strings.Contains(row, hostile) || strings.Contains(row, "the body") || strings.Count(row, "word") > 20 {
			t.Errorf("GET %s: the subject is not escaped, on one line and clipped: %s", path, row)
		}
		if staging := rowOf(f.do("GET", path, c, nil, nil).body, "staging"); !strings.Contains(staging, "unknown</span>: nothing deployed yet") {
			t.Errorf("GET %s: the staging row: %s", path, staging)
		}
	}
	for range 5 {
		f.do("GET", "/ui/fragment/overview", c, nil, nil)
	}
	reads, probes := h.count()
	if reads != 1 || probes["production"] != 1 || probes["staging"] != 0 {
		t.Errorf("after 7 views: %d subject reads (want 1), probes %v (want production once, never staging)", reads, probes)
	}
}

// TestOverviewNeverWaitsForAProbe: a health check that hangs leaves the
// overview fast, saying it was not checked yet, with the subject read
// meanwhile.
func TestOverviewNeverWaitsForAProbe(t *testing.T) {
	h := &hooks{block: make(chan struct{}), subjects: map[string]string{shaOK: "read at once"}}
	defer close(h.block)
	f := newFixture(t, h.set)
	c := f.login(f.tokens["reader"])
	for range 3 {
		start := time.Now()
		a := f.do("GET", "/ui/fragment/overview", c, nil, nil)
		if took := time.Since(start); took > 2*time.Second || a.status != 200 {
			t.Fatalf("the overview answered %d in %v behind a hanging probe", a.status, took)
		}
		if row := rowOf(a.body, "production"); !strings.Contains(row, "unknown</span>: not checked yet") {
			t.Fatalf("the production row: %s", row)
		}
	}
	if row := f.until(c, "/ui/fragment/overview", "production", "read at once"); !strings.Contains(row, "not checked yet") {
		t.Errorf("the production row: %s", row)
	}
}

// TestOverviewWithoutHooks: a server without the hooks shows no subject
// and no health, and no error.
func TestOverviewWithoutHooks(t *testing.T) {
	f := newFixture(t)
	c := f.login(f.tokens["reader"])
	a := f.do("GET", "/ui/", c, nil, nil)
	if row := rowOf(a.body, "production"); a.status != 200 || strings.Contains(row, `class="subject"`) || !strings.Contains(row, `<td data-label="Health now" class="health">—</td>`) {
		t.Errorf("without hooks: %d %s", a.status, row)
	}
}

// deployer adds a token that may deploy shop/production only.
func (f *fixture) deployer() string {
	f.t.Helper()
	read, _ := store.ParseScope("read")
	dep, err := store.ParseScope("deploy:shop/production")
	if err != nil {
		f.t.Fatal(err)
	}
	_, secret, err := f.db.CreateAPIToken(context.Background(), "deployer", []store.Scope{read, dep})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret
}

func TestDeployThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	dep := f.login(f.deployer())
	reader := f.login(f.tokens["reader"])

	a := f.do("GET", "/ui/", dep, nil, nil)
	if !strings.Contains(a.body, `id="deploy-shop-production"`) || strings.Contains(a.body, `id="deploy-shop-staging"`) {
		t.Errorf("the deployer's overview offers the wrong deploys")
	}
	if a := f.do("GET", "/ui/", reader, nil, nil); strings.Contains(a.body, `id="deploy-`) {
		t.Errorf("the reader's overview offers a deploy")
	}
	if a := f.do("GET", "/ui/actions/deploy?fraise=shop&environment=production", dep, nil, nil); a.status != 200 || !strings.Contains(a.body, `id="ref"`) {
		t.Fatalf("confirmation page: %d %s", a.status, a.body)
	}

	for _, tc := range []struct {
		name   string
		who    *http.Cookie
		form   url.Values
		status int
		want   string
	}{
		{"unconfirmed", dep, url.Values{"ref": {shaBad}, "confirm": {""}}, http.StatusBadRequest, "Tick the box"},
		{"read-only token", reader, url.Values{"ref": {shaBad}}, http.StatusForbidden, "deploy:shop/production"},
		{"out of the token's scope", dep, url.Values{"ref": {shaBad}, "environment": {"staging"}}, http.StatusForbidden, "deploy:shop/staging"},
		{"a tag", dep, url.Values{"ref": {"refs/tags/" + hostile}}, http.StatusBadRequest, "tags are not resolved"},
		{"a commit", dep, url.Values{"ref": {shaBad}}, http.StatusOK, "is queued at commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.action(tc.who, "deploy", tc.form, nil)
			if a.status != tc.status || !strings.Contains(a.body, tc.want) || strings.Contains(a.body, hostile) {
				t.Errorf("deploy: %d, want %d with %q: %s", a.status, tc.status, tc.want, a.body)
			}
		})
	}
	q, err := f.db.QueuedDeployments(context.Background())
	if err != nil || len(q) != 1 {
		t.Fatalf("queued %+v %v, want one deployment", q, err)
	}
	if d := q[0]; d.Trigger != store.TriggerAPI || d.NewSHA != shaBad || d.Actor != "deployer" || d.Target.Environment != "production" {
		t.Errorf("the queued deployment: %+v", d)
	}
	a = f.action(dep, "deploy", url.Values{"ref": {shaOK}}, nil)
	if want := `href="/ui/deployments/`; a.status != 200 || !strings.Contains(a.body, want) || !strings.Contains(a.body, "took the place of deployment") {
		t.Errorf("a second deploy while the first waits: %d %s", a.status, a.body)
	}

	if a := f.action(f.login(f.tokens["operator"]), "lock", url.Values{"reason": {"freeze"}}, nil); a.status != http.StatusSeeOther {
		t.Fatalf("lock: %d %s", a.status, a.body)
	}
	if a := f.action(dep, "deploy", url.Values{"ref": {shaOK}}, nil); a.status != http.StatusConflict || !strings.Contains(a.body, "locked by") {
		t.Errorf("deploy of a locked environment: %d %s", a.status, a.body)
	}
}
