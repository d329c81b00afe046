package polkit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/polkit"
)

// TestFromConfig: the units of system-scope environments, sorted, with a
// socket environment's sockets and a blue/green environment's colours and
// nginx; user-scope ones left to their own manager; a scheduled
// environment in system scope named as what the model cannot deploy.
func TestFromConfig(t *testing.T) {
	yaml := `
defaults:
  scope: system
fraises:
  shop:
    type: api
    environments:
      production:
        branch: main
        git_repo: /srv/git/shop
        app_path: /srv/shop
        systemd_service: [shop-web, shop-worker@1.service]
      staging:
        branch: staging
        git_repo: /srv/git/shop
        app_path: /srv/shop-staging
        scope: user
        systemd_service: shop-staging
  api:
    type: api
    environments:
      production:
        branch: main
        git_repo: /srv/git/api
        app_path: /srv/api
        systemd_service: api.service
        restart: socket
  web:
    type: api
    environments:
      production:
        branch: main
        git_repo: /srv/git/web
        app_path: /srv/web
        restart: blue_green
        blue_green:
          unit: web@.service
          blue: 127.0.0.1:8001
          green: 127.0.0.1:8002
          nginx: {upstream: web, file: /etc/nginx/conf.d/web-upstream.conf, reload_unit: nginx.service}
        health_check: {url: http://127.0.0.1:8001/health}
  reports:
    type: scheduled
    environments:
      production:
        branch: main
        git_repo: /srv/git/reports
        app_path: /srv/reports
        jobs:
          - name: nightly
            schedule: "0 3 * * *"
            command: [./run]
`
	path := filepath.Join(t.TempDir(), "fraises.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	p := polkit.FromConfig(cfg)
	want := []string{"api.service", "api.socket", "nginx.service", "shop-web.service", "shop-worker@1.service", "web@blue.service", "web@green.service"}
	if diff := cmp.Diff(want, p.Units); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	if len(p.Left) != 1 || p.Left[0].Target != "reports/production" || p.Left[0].Fix == "" ||
		!cmp.Equal(p.Left[0].Units, []string{"fraisier-reports-production-nightly.service", "fraisier-reports-production-nightly.timer"}) {
		t.Errorf("left out: %+v, want reports/production's job units", p.Left)
	}
}

// TestWriteRule: mode 0644, atomic (no temporary file left), and an
// unchanged rule is not rewritten.
func TestWriteRule(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "50-fraisier.rules")
	for i, c := range []struct {
		content     string
		wantChanged bool
	}{{"one\n", true}, {"one\n", false}, {"two\n", true}} {
		changed, err := polkit.WriteRule(path, []byte(c.content))
		if err != nil || changed != c.wantChanged {
			t.Fatalf("write %d: changed %v err %v, want changed %v", i, changed, err, c.wantChanged)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "two\n" {
		t.Fatalf("rule %q (%v), want two", got, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", st.Mode(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want the rule alone", entries, err)
	}
	if _, err := polkit.WriteRule(filepath.Join(dir, "missing", "50-fraisier.rules"), []byte("x")); err == nil {
		t.Error("a missing directory: no error")
	}
}
