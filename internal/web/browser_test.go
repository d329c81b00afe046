package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv/browser"
)

// ScreenshotsEnv names a directory where TestDashboardInABrowser keeps its
// screenshots (docs/screenshots, to refresh the ones the README shows);
// without it they go to the test's temporary directory.
const ScreenshotsEnv = "FRAISIER_SCREENSHOTS"

// TestDashboardInABrowser drives the dashboard in headless Chromium as a
// person would: signs in with an operator's token through the form, reads
// every page (the hostile text a repository wrote shows as text and never
// runs), rolls back through the confirmation form, and is refused with a
// read-only token; a cross-site page's form POST carries no session and
// queues nothing. Nothing the pages load leaves loopback.
func TestDashboardInABrowser(t *testing.T) {
	f := newFixture(t)
	b := browser.Start(t)
	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	p := b.Page(t)

	p.Navigate(f.url + "/ui/")
	if !strings.HasSuffix(p.URL(), "/ui/login") {
		t.Fatalf("an unauthenticated browser is at %s, want the login form", p.URL())
	}
	shot(t, p, shots, "login")
	p.Fill("token", f.tokens["operator"])
	p.Click("login")
	p.WaitText("#targets", "production")
	for _, c := range p.Cookies() {
		if strings.Contains(c.Value, f.tokens["operator"]) || c.Name == "fraisier_session" && (!c.HTTPOnly || c.SameSite != "Strict") {
			t.Errorf("cookie %s: %+v", c.Name, c)
		}
	}
	shot(t, p, shots, "overview")

	// The deployment pages wait for the hostile text a repository wrote:
	// found as text, it was escaped, not run.
	for _, pg := range []struct{ name, path, sel, want string }{
		{"deployment", fmt.Sprintf("/ui/deployments/%d", f.ok), "#steps", hostile},
		{"failed-deployment", fmt.Sprintf("/ui/deployments/%d", f.failed), "main", "health check: " + hostile},
		{"history", "/ui/history?fraise=shop", "#history", shaBad[:12]},
		{"webhooks", "/ui/webhooks", "main", "no environment of acme/shop follows branch feature-x"},
		{"stats", "/ui/stats", "#stats", "production"},
		{"jobs-none", "/ui/jobs", "#jobs", "No scheduled job recorded."},
	} {
		p.Navigate(f.url + pg.path)
		p.WaitText(pg.sel, pg.want)
		shot(t, p, shots, pg.name)
	}

	followLiveLog(t, f, p, shots)

	p.Navigate(f.url + "/ui/actions/rollback?fraise=shop&environment=production")
	shot(t, p, shots, "rollback-confirm")
	p.Click("confirm")
	p.Click("do-action")
	p.WaitText("#deployment-status", "queued")
	if d := queuedRollback(t, f.db); d.Actor != "operator via api" {
		t.Errorf("the queued rollback: %+v", d)
	}

	// A cross-site page posts a rollback form to the dashboard: the
	// session cookie (SameSite=Strict) does not go with it.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<form id="f" method="post" action="%s/ui/actions/rollback?fraise=shop&environment=production">
<input name="confirm" value="on"><input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`, f.url)
	}))
	defer evil.Close()
	before := countQueued(t, f.db)
	p.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1))
	time.Sleep(500 * time.Millisecond)
	if after := countQueued(t, f.db); after != before {
		t.Errorf("a cross-site form queued %d deployments", after-before)
	}

	reader := b.Page(t)
	reader.Navigate(f.url + "/ui/login")
	reader.Fill("token", f.tokens["reader"])
	reader.Click("login")
	reader.WaitText("#targets", "production")
	reader.Navigate(f.url + "/ui/actions/rollback?fraise=shop&environment=production")
	reader.WaitText("main", "rollback:shop/production")
	shot(t, reader, shots, "rollback-refused")

	for _, pg := range []*browser.Page{p, reader} {
		if out := pg.Outside(); len(out) != 0 {
			t.Errorf("the dashboard's pages asked for outside addresses: %q", out)
		}
	}
}

// followLiveLog opens a running deployment's page and writes its step's
// output while the page watches: the lines arrive in order, each once, and
// the end is said.
func followLiveLog(t *testing.T, f *fixture, p *browser.Page, shots string) {
	t.Helper()
	ctx := context.Background()
	id, err := f.db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "shop", Environment: "staging"},
		Trigger: store.TriggerCLI, Actor: "bob", NewSHA: shaOK})
	if err != nil {
		t.Fatal(err)
	}
	step, err := f.db.StartStep(ctx, id, "install")
	if err != nil {
		t.Fatal(err)
	}
	p.Navigate(fmt.Sprintf("%s/ui/deployments/%d", f.url, id))
	var want strings.Builder
	for i := 1; i <= 5; i++ {
		line := fmt.Sprintf("installing part %d of 5 <b>&amp;</b>\n", i)
		want.WriteString(line)
		if err := f.db.AppendStepOutput(ctx, step, []byte(line)); err != nil {
			t.Fatal(err)
		}
		p.WaitText("#live-log", strings.TrimSuffix(line, "\n"))
	}
	if got := p.Text("#live-log"); strings.TrimSpace(got) != strings.TrimSpace(want.String()) {
		t.Errorf("the live log reads %q, want %q", got, want.String())
	}
	code := 0
	if err := f.db.FinishStep(ctx, step, "succeeded", &code, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	p.WaitText("#live-status", "succeeded")
	shot(t, p, shots, "live-log")
}

func shot(t *testing.T, p *browser.Page, dir, name string) {
	t.Helper()
	path := filepath.Join(dir, name+".png")
	w, h := p.Screenshot(path)
	t.Logf("screenshot %s (%dx%d)", path, w, h)
}

func queuedRollback(t *testing.T, db *store.DB) store.Deployment {
	t.Helper()
	q, err := db.QueuedDeployments(context.Background())
	if err != nil || len(q) != 1 || q[0].Trigger != store.TriggerRollback {
		t.Fatalf("queued %+v %v, want one rollback", q, err)
	}
	return q[0]
}

func countQueued(t *testing.T, db *store.DB) int {
	t.Helper()
	q, err := db.QueuedDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(q)
}
