package web_test

import (
	"os"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/testenv/browser"
)

// TestOverviewLiveAndDeployInABrowser: in headless Chromium, the overview
// shows the current commit's subject, says the health is not checked yet
// while the first probe runs, then shows its answer by the page's own
// refresh (no navigation); a deploy-scoped token deploys through the
// confirmation form and reaches the queued deployment, and a read-only
// token is offered no Deploy and is refused one.
func TestOverviewLiveAndDeployInABrowser(t *testing.T) {
	yes := true
	h := &hooks{
		subjects: map[string]string{shaOK: "Checkout: pay with " + hostile, shaBad: "the bad one"},
		health:   map[string]server.LiveState{"production": {Healthy: &yes, Units: map[string]bool{"shop.service": true}}},
		block:    make(chan struct{}),
	}
	f := newFixture(t, h.set)
	deployer := f.deployer()
	b := browser.Start(t)
	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	}

	p := b.Page(t)
	p.Navigate(f.url + "/ui/login")
	p.Fill("token", deployer)
	p.Click("login")
	const row = "#target-shop-production"
	p.WaitText(row, "Checkout: pay with "+hostile)
	p.WaitText(row, "not checked yet")
	close(h.block)
	before := p.URL()
	p.WaitText(row, "healthy")
	p.WaitText(row, "units active")
	p.WaitText(row, "checked")
	if p.URL() != before {
		t.Errorf("the page navigated to %s to refresh", p.URL())
	}
	if got := p.Text("#target-shop-staging"); !strings.Contains(got, "nothing deployed yet") || strings.Contains(got, "Deploy") {
		t.Errorf("the staging row (out of the token's scope): %q", got)
	}
	shot(t, p, shots, "overview-live")

	p.Click("deploy-shop-production")
	p.WaitText("main", "Branch or full commit SHA to deploy")
	p.Fill("ref", shaBad)
	p.Click("confirm")
	shot(t, p, shots, "deploy-confirm")
	p.Click("do-action")
	p.WaitText("#queued", "is queued at commit "+shaBad[:12])
	shot(t, p, shots, "deploy-queued")
	p.Click("queued-deployment")
	p.WaitText("#deployment-status", "queued")
	if n := countQueued(t, f.db); n != 1 {
		t.Errorf("%d deployments queued, want 1", n)
	}

	reader := b.Page(t)
	reader.Navigate(f.url + "/ui/login")
	reader.Fill("token", f.tokens["reader"])
	reader.Click("login")
	reader.WaitText(row, "Checkout: pay with")
	if got := reader.Text(row); strings.Contains(got, "Deploy") {
		t.Errorf("a read-only token is offered a deploy: %q", got)
	}
	reader.Navigate(f.url + "/ui/actions/deploy?fraise=shop&environment=production")
	reader.WaitText("main", "deploy:shop/production")
	if n := countQueued(t, f.db); n != 1 {
		t.Errorf("%d deployments queued after the refusal, want 1", n)
	}

	for _, pg := range []*browser.Page{p, reader} {
		if out := pg.Outside(); len(out) != 0 {
			t.Errorf("the dashboard's pages asked for outside addresses: %q", out)
		}
	}
}
