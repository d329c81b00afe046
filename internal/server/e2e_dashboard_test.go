package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/fraiseql/fraisier/internal/testenv/browser"
)

// TestE2EDashboardLiveLog: a browser signed in to the dashboard of a real
// fraisier serve follows the live log of a real deployment whose install
// prints slowly, through a proxy that cuts the stream once: every line
// arrives, in order, once, and the page says how the deployment ended.
func TestE2EDashboardLiveLog(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	if err := os.WriteFile(filepath.Join(f.ctl, "install.sh"), []byte(slowInstallScript), 0o644); err != nil {
		t.Fatal(err)
	}
	f.serve()
	reader := f.token("watcher", "read")
	proxy := testenv.NewFaultCutOnce(t, f.base(), "/log", 1500)

	p := browser.Start(t).Page(t)
	p.Navigate(proxy.URL + "/ui/login")
	p.Fill("token", reader)
	p.Click("login")
	p.WaitText("#targets", "production")

	f.hold()
	sha := f.push("main", 1)[0]
	id := f.hook("main", "", sha).Deployments[0].DeploymentID
	v := version("main", 1)
	testenv.WaitFor(t, "the install to start", 60*time.Second, func() bool { return f.installStarted(v) })
	p.Navigate(fmt.Sprintf("%s/ui/deployments/%d", proxy.URL, id))
	p.WaitText("#live-status", "install")
	f.release()

	p.WaitText("#live-status", "succeeded")
	f.waitDeployed("production", sha, v, 30*time.Second)
	parts := regexp.MustCompile(`installing `+regexp.QuoteMeta(v)+`: part (\d+) at`).FindAllStringSubmatch(p.Text("#live-log"), -1)
	for i, m := range parts {
		if n, _ := strconv.Atoi(m[1]); n != i {
			t.Fatalf("line %d of the live log is part %d:\n%s", i, n, p.Text("#live-log"))
		}
	}
	if len(parts) != 25 {
		t.Fatalf("the live log shows %d of the 25 install lines:\n%s", len(parts), p.Text("#live-log"))
	}
	if text := p.Text("#live-log"); !strings.Contains(text, "data: x") || !strings.Contains(text, "event: end") {
		t.Errorf("the lines that look like SSE fields are missing:\n%s", text)
	}
	cut, resumes := proxy.Cut()
	if !cut || len(resumes) < 2 || resumes[1] == "" {
		t.Fatalf("the browser's stream was not cut and resumed: cut %v, Last-Event-IDs %q", cut, resumes)
	}
	if out := p.Outside(); len(out) != 0 {
		t.Errorf("the dashboard asked for outside addresses: %q", out)
	}
}
