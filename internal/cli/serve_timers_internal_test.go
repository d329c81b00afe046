package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv/browser"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// TestJobTimersOnARealManager: what serve gives the dashboard's jobs page
// is what a real user manager says of the timers: an armed timer's next
// elapse, one stopped, one never installed; and the page, served by the
// server with that hook, shows the next run as systemd has it.
func TestJobTimersOnARealManager(t *testing.T) {
	mgr := tsystemd.UserManager(t)
	svc := "[Unit]\nDescription=fraisier jobs page test\n[Service]\nType=oneshot\nExecStart=/bin/true\n"
	for _, name := range []string{"armed", "stopped"} {
		mgr.WriteUnit(t, mgr.Unit(name+".service"), svc)
		mgr.WriteUnit(t, mgr.Unit(name+".timer"), fmt.Sprintf("[Timer]\nOnCalendar=*-*-* 03:00:00\nUnit=%s\n", mgr.Unit(name+".service")))
	}
	mgr.MustSystemctl(t, "start", mgr.Unit("armed.timer"))
	job := func(name string) string {
		return fmt.Sprintf("\n          - {name: %s, schedule: \"0 3 * * *\", command: [bin/%s], systemd_service: %s, systemd_timer: %s}",
			name, name, mgr.Unit(name+".service"), mgr.Unit(name+".timer"))
	}
	yaml := `
server:
  api_token: jobs-page-read-token-0123456789
fraises:
  cron:
    type: scheduled
    environments:
      production:
        branch: main
        git_repo: /nonexistent/origin.git
        app_path: /nonexistent/srv/cron
        scope: user
        jobs:` + job("armed") + job("stopped") + job("absent")
	cfg, err := config.Parse("fraises.yaml", []byte(yaml), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	collab := deploy.RealCollaborators(mgr.Env())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	states := jobTimers(collab)(ctx, cfg)
	key := func(job string) server.JobKey {
		return server.JobKey{Target: store.Target{Fraise: "cron", Environment: "production"}, Job: job}
	}
	units, err := collab.JobUnits("user")
	if err != nil {
		t.Fatal(err)
	}
	want, err := units.TimerStatus(ctx, mgr.Unit("armed.timer"))
	if err != nil || want.NextElapse.IsZero() {
		t.Fatalf("the armed timer, asked directly: %+v, %v", want, err)
	}
	if st := states[key("armed")]; !st.Installed || !st.Active || st.Err != "" || !st.Next.Equal(want.NextElapse) ||
		time.Until(st.Next) <= 0 || time.Until(st.Next) > 25*time.Hour {
		t.Errorf("armed: %+v, want active with next elapse %s", st, want.NextElapse)
	}
	if st := states[key("stopped")]; !st.Installed || st.Active || st.Err != "" || !st.Next.IsZero() {
		t.Errorf("stopped: %+v, want installed, inactive, no next elapse", st)
	}
	if st := states[key("absent")]; st.Installed || st.Err != "" {
		t.Errorf("absent: %+v, want not installed", st)
	}

	body, base := jobsPage(t, cfg, jobTimers(collab))
	next := want.NextElapse.UTC().Format(time.RFC3339)
	for _, w := range []string{`<time datetime="` + next + `">`, "none: the timer is stopped", "not installed (deploy the environment)"} {
		if !strings.Contains(body, w) {
			t.Errorf("the jobs page lacks %q:\n%s", w, body)
		}
	}
	if dir := os.Getenv("FRAISIER_SCREENSHOTS"); dir != "" {
		p := browser.Start(t).Page(t)
		p.Navigate(base + "/ui/login")
		p.Fill("token", cfg.Server.APIToken.Reveal())
		p.Click("login")
		p.WaitText("h1", "Overview")
		p.Navigate(base + "/ui/jobs")
		p.WaitText("#jobs", "none: the timer is stopped")
		p.Screenshot(filepath.Join(dir, "jobs.png"))
	}
}

// jobsPage serves the dashboard over a fresh store with the hook and
// returns its jobs page, read signed in with server.api_token, and the
// server's URL.
func jobsPage(t *testing.T, cfg *config.Config, ask server.AskTimers) (body, base string) {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := server.New(server.Options{Config: cfg, Store: db, Timers: ask})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(hs.URL+"/ui/login", url.Values{"token": {cfg.Server.APIToken.Reveal()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get(hs.URL + "/ui/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/jobs" {
		t.Fatalf("GET /ui/jobs: %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return string(b), hs.URL
}
