package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatalf("%v\ninput:\n%s", err, yaml)
	}
	return cfg
}

func problemsOf(t *testing.T, yaml string) []Problem {
	t.Helper()
	_, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want *Error; input:\n%s", err, yaml)
	}
	return cerr.Problems
}

// TestAnchorsAndMerges covers the shared-settings idiom: anchors under an
// x- key, << merges with local overrides, nested merges and lists of
// merge sources.
func TestAnchorsAndMerges(t *testing.T) {
	yaml := `x-common: &common
  layout: inplace
  keep_releases: 3
  systemd_service: api.service
  install: &install
    command: [uv, sync]
    timeout: 2m
x-db: &db
  tool: alembic
  url: postgres://localhost/app
fraises:
  api:
    type: api
    repository: https://github.com/acme/api.git
    environments:
      production:
        <<: *common
        branch: main
        app_path: /srv/api
        database: *db
      staging:
        <<: [*common, {scope: user, layout: releases}]
        branch: develop
        app_path: /srv/api-staging
        keep_releases: 1
        systemd_service: api-staging
        install:
          <<: *install
          timeout: 5m
        database:
          <<: *db
          url: postgres://localhost/app_staging
`
	cfg := mustParse(t, yaml)
	prod, stg := cfg.Fraises["api"].Environments["production"], cfg.Fraises["api"].Environments["staging"]
	type view struct {
		Layout  Layout
		Scope   string
		Keep    int
		Units   []string
		Argv    []string
		Timeout time.Duration
		DB      string
	}
	got := []view{
		{prod.Layout, prod.Scope, prod.KeepReleases, prod.Services(), prod.Install.Argv, prod.Install.Timeout.D(), prod.Database.URL.Reveal()},
		{stg.Layout, stg.Scope, stg.KeepReleases, stg.Services(), stg.Install.Argv, stg.Install.Timeout.D(), stg.Database.URL.Reveal()},
	}
	want := []view{
		{"inplace", "system", 3, []string{"api.service"}, []string{"uv", "sync"}, 2 * time.Minute, "postgres://localhost/app"},
		// The mapping's own keys win, then earlier merge sources.
		{"inplace", "user", 1, []string{"api-staging.service"}, []string{"uv", "sync"}, 5 * time.Minute, "postgres://localhost/app_staging"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAliasedProblemReportedOnce checks that a mistake inside an anchor is
// reported once, at the anchor, however often it is used.
func TestAliasedProblemReportedOnce(t *testing.T) {
	yaml := "x-common: &common\n  keep_releases: many\n" + apiWith("<<: *common\n"+base) + "      staging:\n        <<: *common\n        branch: dev\n        app_path: /srv/api-staging\n"
	ps := problemsOf(t, yaml)
	if len(ps) != 1 || ps[0].Line != 2 || ps[0].Col != 18 {
		t.Errorf("problems = %v, want one at 2:18", ps)
	}
}

func TestDecodeScalars(t *testing.T) {
	yaml := "server:\n  body_limit: 0x100000\n  rate_limit: {per_source: 5, global: 1.5e3, burst: 1_000}\n  read_timeout: 90\n  write_timeout: 1m30s\n" +
		apiWith("branch: !!str 2024\napp_path: /srv/api\ndatabase: {tool: alembic, name: !!str 123}\nsystemd_service: single\nshared: [\"a b\", 'c: d']\nauto_deploy: false\n")
	cfg := mustParse(t, yaml)
	e := cfg.Fraises["api"].Environments["production"]
	got := fmt.Sprintf("%d %v %v %d %v %v %q %q %q %q %v", cfg.Server.BodyLimit, cfg.Server.RateLimit.PerSource, cfg.Server.RateLimit.Global,
		cfg.Server.RateLimit.Burst, cfg.Server.ReadTimeout, cfg.Server.WriteTimeout, e.Branch, e.Database.Name, e.SystemdService, e.Shared, e.IsAutoDeploy())
	want := `1048576 5 1500 1000 1m30s 1m30s "2024" "123" ["single.service"] ["a b" "c: d"] false`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestDefaults checks the built-in defaults and the defaults section.
func TestDefaults(t *testing.T) {
	cfg := mustParse(t, "defaults:\n  keep_releases: 9\n  timeouts: {fetch: 1m}\n  health_check: {retries: 0, timeout: 2s}\n"+
		apiWith(base+"health_check: {url: \"http://127.0.0.1:8000/\"}\ndatabase: {tool: django}\n")+
		"      prod: {branch: release, app_path: /srv/api-prod, timeouts: {fetch: 2m}, health_check: {tcp: \"127.0.0.1:1\", interval: 3s}}\n"+
		"      staging: {branch: dev, app_path: /srv/api-staging, git_repo: /srv/git/api.git, layout: inplace, keep_releases: 2}\n")
	envs := cfg.Fraises["api"].Environments
	prod, prod2, stg := envs["production"], envs["prod"], envs["staging"]

	s := cfg.Server
	if s.Listen != "127.0.0.1:8080" || s.BodyLimit != 1<<20 || s.MaxConcurrent != 2 || s.ShutdownGrace.D() != 5*time.Minute ||
		s.RateLimit.PerSource != 20 || s.RateLimit.Global != 2000 {
		t.Errorf("server defaults: %+v", s)
	}
	if !prod.IsProtected() || !prod2.IsProtected() || stg.IsProtected() {
		t.Errorf("protected: production %v, prod %v, staging %v", prod.IsProtected(), prod2.IsProtected(), stg.IsProtected())
	}
	if prod.Layout != "releases" || prod.KeepReleases != 9 || prod.Scope != "system" || !prod.IsAutoDeploy() {
		t.Errorf("environment defaults: layout %s keep %d scope %s", prod.Layout, prod.KeepReleases, prod.Scope)
	}
	if stg.Layout != "inplace" || stg.KeepReleases != 2 || stg.GitRepo != "/srv/git/api.git" {
		t.Errorf("explicit values were overridden: %s %d %s", stg.Layout, stg.KeepReleases, stg.GitRepo)
	}
	if prod.GitRepo != "https://github.com/acme/api.git" {
		t.Errorf("git_repo = %q, want it from repository", prod.GitRepo)
	}
	if prod.Timeouts.Fetch.D() != time.Minute || prod2.Timeouts.Fetch.D() != 2*time.Minute {
		t.Errorf("timeouts: %v %v", prod.Timeouts.Fetch, prod2.Timeouts.Fetch)
	}
	wantHC := &HealthCheck{URL: "http://127.0.0.1:8000/", ExpectStatus: 200, Timeout: Duration(2 * time.Second), Retries: 0,
		Interval: Duration(time.Second), Deadline: Duration(time.Minute)}
	if diff := cmp.Diff(wantHC, prod.HealthCheck); diff != "" {
		t.Errorf("health check (-want +got):\n%s", diff)
	}
	wantHC2 := &HealthCheck{TCP: "127.0.0.1:1", Timeout: Duration(2 * time.Second), Retries: 0, Interval: Duration(3 * time.Second), Deadline: Duration(time.Minute)}
	if diff := cmp.Diff(wantHC2, prod2.HealthCheck); diff != "" {
		t.Errorf("tcp health check (-want +got):\n%s", diff)
	}
	if stg.HealthCheck != nil {
		t.Errorf("staging got a health check from a defaults section that names no target: %+v", stg.HealthCheck)
	}
	db := prod.Database
	if db.Strategy != "apply" || !*db.RollbackOnFailure || db.Python != "" || db.Program != "" || db.Manage != "manage.py" {
		t.Errorf("database defaults: %+v", db)
	}
	if prod.Fraise != cfg.Fraises["api"] || prod.Name != "production" || cfg.Fraises["api"].Name != "api" || prod.Code != prod {
		t.Error("back-pointers are not set")
	}
}

// TestDefaultsHealthCheckInherited checks that an environment without a
// health check gets the defaults' one, as a copy.
func TestDefaultsHealthCheckInherited(t *testing.T) {
	cfg := mustParse(t, "defaults:\n  health_check: {command: [bin/check], retries: 2}\n"+apiWith(base)+"      staging: {branch: dev, app_path: /srv/api-staging}\n")
	a, b := cfg.Fraises["api"].Environments["production"].HealthCheck, cfg.Fraises["api"].Environments["staging"].HealthCheck
	want := &HealthCheck{Command: []string{"bin/check"}, Retries: 2, Timeout: Duration(5 * time.Second), Interval: Duration(time.Second), Deadline: Duration(time.Minute)}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if a == b || a == cfg.Defaults.HealthCheck {
		t.Error("environments share one health check value")
	}
}

func TestJobUnitsDefault(t *testing.T) {
	cfg := mustParse(t, scheduledWith(base+job+"  - {name: weekly, on_calendar: weekly, command: [w], systemd_service: my-weekly, systemd_timer: my-weekly}\n"))
	jobs := cfg.Fraises["cron"].Environments["production"].Jobs
	got := [][2]string{{jobs[0].SystemdService, jobs[0].SystemdTimer}, {jobs[1].SystemdService, jobs[1].SystemdTimer}}
	want := [][2]string{
		{"fraisier-cron-production-nightly.service", "fraisier-cron-production-nightly.timer"},
		{"my-weekly.service", "my-weekly.timer"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for i, wantCal := range []string{"*-*-* 03:00:00", "weekly"} {
		if cal, err := jobs[i].Calendar(); err != nil || cal != wantCal {
			t.Errorf("job %d calendar = %q, %v; want %q", i, cal, err, wantCal)
		}
	}
}

// TestAliasBombs checks that files whose aliases multiply are decoded in
// bounded time: merges of merges are flattened once, and the decoder
// gives up after a fixed number of values.
func TestAliasBombs(t *testing.T) {
	layers := func(open, close, ref string) string {
		var b strings.Builder
		b.WriteString("x-0: &a0 {layout: inplace}\n")
		for i := 1; i <= 9; i++ {
			fmt.Fprintf(&b, "x-%d: &a%d %s", i, i, open)
			for j := range 10 {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, ref, i-1)
			}
			b.WriteString(close + "\n")
		}
		return b.String()
	}
	cases := map[string]string{
		"merges":   layers("{<<: [", "]}", "*a%d") + apiWith(base+"<<: *a9\n"),
		"sequence": layers("[", "]", "*a%d") + apiWith(base+"shared: *a9\n"),
		"fraises": "x-env: &env {branch: main, app_path: /srv/x, install: {command: [a, b, c, d]}}\n" +
			"x-envs: &envs {" + repeatJoin("e%d: *env", 100) + "}\n" +
			"x-fraise: &f {type: api, repository: a/b, environments: *envs}\n" +
			"fraises: {" + repeatJoin("f%d: *f", 2000) + "}\n",
	}
	for name, yaml := range cases {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("bomb.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil)})
			if err == nil && name != "merges" {
				t.Error("no error")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func repeatJoin(format string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(format, i)
	}
	return strings.Join(parts, ", ")
}

func TestProblemString(t *testing.T) {
	cases := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.yaml", Line: 12, Col: 7, Path: "fraises.api.environments.production.branch", Message: "required key missing", Hint: "e.g. main"},
			"f.yaml:12:7: fraises.api.environments.production.branch: required key missing (hint: e.g. main)"},
		{Problem{File: "f.yaml", Message: "YAML syntax error: oops"}, "f.yaml: YAML syntax error: oops"},
		{Problem{File: "f.yaml", Line: 1, Col: 1, Path: "x", Message: "m"}, "f.yaml:1:1: x: m"},
	}
	for _, tc := range cases {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

// TestProblemsSorted checks that problems come sorted by position whatever
// pass found them.
func TestProblemsSorted(t *testing.T) {
	data := "state: {path: rel}\n" + apiWith("branch: \"a b\"\napp_path: rel\nlayout: x\n")
	ps := problemsOf(t, data)
	if len(ps) != 4 {
		t.Fatalf("want 4 problems, got %v", ps)
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line || ps[i].Line == ps[i-1].Line && ps[i].Col < ps[i-1].Col {
			t.Errorf("problem %d (%v) comes before %d (%v)", i, ps[i], i-1, ps[i-1])
		}
	}
}

// TestRetention: retention periods read whole days as well as Go syntax,
// default to 90 days for events and step output and to keeping
// deployments, and 0 keeps a kind forever.
func TestRetention(t *testing.T) {
	const fraises = "fraises:\n  api:\n    type: api\n    environments:\n      production: {branch: main, app_path: /srv/api, git_repo: /srv/git/api.git}\n"
	for _, tc := range []struct {
		state string
		want  Retention
	}{
		{"", Retention{Events: Duration(90 * 24 * time.Hour), StepOutput: Duration(90 * 24 * time.Hour)}},
		{"state:\n  retention: {events: 30d, step_output: 720h, deployments: 365d}\n",
			Retention{Events: Duration(30 * 24 * time.Hour), StepOutput: Duration(720 * time.Hour), Deployments: Duration(365 * 24 * time.Hour)}},
		{"state:\n  retention: {events: 0, step_output: 0}\n", Retention{}},
	} {
		cfg, err := Parse("fraises.yaml", []byte(tc.state+fraises), Options{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatalf("%q: %v", tc.state, err)
		}
		if cfg.State.Retention != tc.want {
			t.Errorf("%q: retention %+v, want %+v", tc.state, cfg.State.Retention, tc.want)
		}
	}
	if _, err := Parse("fraises.yaml", []byte("state:\n  retention: {events: 1.5d}\n"+fraises), Options{LookupEnv: func(string) (string, bool) { return "", false }}); err == nil {
		t.Errorf("1.5d accepted: only whole days are")
	}
}
