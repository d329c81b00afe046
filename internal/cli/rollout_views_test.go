package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

const viewsSHA = "4444444444444444444444444444444444444444"

// viewsSite is a PostgreSQL state shared by three hosts, with one rollout
// started: web-1 (the migration host) deploying, web-2 and web-3
// pending; web-1 and web-2 heartbeat now, web-3 ten minutes ago. Each
// node recorded its host's health: web-1 unhealthy and web-2 healthy
// now, web-3 healthy ten minutes ago (stale, its node dead: unknown).
type viewsSite struct {
	cfgPath string
	url     string
	rollout int64
	env     map[string]string
}

func newViewsSite(t *testing.T) *viewsSite {
	t.Helper()
	c := pgCluster(t)
	ctx := context.Background()
	if err := c.CreateDatabase(ctx, "views"); err != nil {
		t.Fatal(err)
	}
	s := &viewsSite{url: c.URL("views", ""), env: map[string]string{}}
	s.cfgPath = filepath.Join(t.TempDir(), "fraises.yaml")
	yaml := fmt.Sprintf(`state:
  url: %q
host_groups:
  web: [web-1, web-2]
fraises:
  hello:
    type: api
    repository: acme/hello
    environments:
      production:
        branch: main
        git_repo: /srv/git/hello.git
        app_path: /srv/hello
        hosts: [web, web-3]
        rollout: {node_timeout: 20s}
        health_check: {url: "http://127.0.0.1:9/health"}
      staging:
        branch: dev
        git_repo: /srv/git/hello.git
        app_path: /srv/hello-staging
`, s.url)
	if err := os.WriteFile(s.cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(s.cfgPath, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, store.Options{URL: s.url})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old, err := store.Open(ctx, store.Options{URL: s.url, Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for _, n := range []struct {
		db   *store.DB
		name string
	}{{db, "web-1"}, {db, "web-2"}, {old, "web-3"}} {
		if err := n.db.Heartbeat(ctx, store.Node{Name: n.name, Hostname: "host-" + n.name, Version: "v1.2.3", PID: 100}); err != nil {
			t.Fatalf("heartbeat %s: %v", n.name, err)
		}
	}
	recordViewsHealth(t, db, old)
	settings, ok := cfg.Fraises["hello"].Environments["production"].RolloutSettings()
	if !ok {
		t.Fatal("production has no rollout settings")
	}
	policy := store.RolloutPolicy(settings)
	q, err := db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "hello", Environment: "production"},
		SHA: viewsSHA, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice", Rollout: &policy})
	if err != nil {
		t.Fatalf("enqueue the rollout: %v", err)
	}
	if q.RolloutID == 0 {
		t.Fatalf("enqueue queued %+v, no rollout", q)
	}
	s.rollout = q.RolloutID
	now := time.Now()
	if _, err := db.AdvanceRollouts(ctx, now, now.Add(-time.Hour)); err != nil {
		t.Fatalf("advance: %v", err)
	}
	return s
}

// recordViewsHealth records each host's health as its node would: web-1
// unhealthy and web-2 healthy now (db), web-3 healthy on old's clock.
func recordViewsHealth(t *testing.T, db, old *store.DB) {
	t.Helper()
	ctx := context.Background()
	for _, h := range []struct {
		db      *store.DB
		host    string
		healthy bool
		detail  string
	}{{db, "web-1", false, "GET http://127.0.0.1:9/health: status 503, want 200"}, {db, "web-2", true, ""}, {old, "web-3", true, ""}} {
		target := store.Target{Fraise: "hello", Environment: "production@" + h.host}
		if err := h.db.RecordHostHealth(ctx, store.HostHealth{Target: target, Node: h.host, Healthy: h.healthy, Detail: h.detail}); err != nil {
			t.Fatalf("record the health of %s: %v", h.host, err)
		}
	}
}

// run runs fraisier with the site's configuration and returns the exit
// code and stdout.
func (s *viewsSite) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := cli.Env{Lookup: func(k string) (string, bool) {
		switch k {
		case "FRAISIER_CONFIG":
			return s.cfgPath, true
		case "FRAISIER_STATE", "NO_COLOR":
			return "", k == "NO_COLOR"
		}
		if v, ok := s.env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, Euid: os.Geteuid()}
	code := cli.Run(context.Background(), args, cli.Streams{Out: &out, Err: &errOut}, env)
	t.Logf("fraisier %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String()
}

// TestRolloutViews checks nodes, rollouts, rollout show and resume,
// status and history against a real rollout in PostgreSQL, here and
// through a serve's API (--remote).
func TestRolloutViews(t *testing.T) {
	s := newViewsSite(t)
	id := fmt.Sprint(s.rollout)
	progress := "rollout " + id + ": 0/3 hosts, batch 1 of 3, running"
	local := func(args ...string) []string { return args }
	var remote func(args ...string) []string
	cases := []struct {
		name  string
		args  []string
		code  int
		lines []string // regular expressions each matching a line of stdout
	}{
		{"nodes", local("nodes"), 0, []string{`^NAME +HOSTNAME +VERSION +LAST HEARTBEAT +ALIVE$`, `^web-1 +host-web-1 +v1\.2\.3 +\d+s ago +yes$`, `^web-3 +host-web-3 +v1\.2\.3 +10m\d\ds ago +no$`}},
		{"nodes_json", local("nodes", "--json"), 0, []string{`"node_timeout_ms": 20000`, `"alive": false`, `"name": "web-2"`}},
		{"rollouts", local("rollouts"), 0, []string{`^ID +FRAISE +ENVIRONMENT +STATUS +SHA +HOSTS +BATCH +CREATED +ERROR$`, `^` + id + ` +hello +production +running +444444444444 +0/3 +1/3 `}},
		{"rollouts_filtered", local("rollouts", "hello", "staging"), 0, []string{`^nothing matches these filters$`}},
		{"rollouts_json", local("rollouts", "--active", "--json"), 0, []string{`"hosts_total": 3`, `"progress": "` + progress + `"`, `"migrate_host": "web-1"`}},
		{"rollout_show", local("rollout", "show", id), 0, []string{`^` + progress + `$`, `^target: +hello/production at 444444444444 \(refs/heads/main\)$`,
			`^web-1 +deploying +\d+ +- +444444444444 +alive +unhealthy \d+s ago +-$`, `^web-2 +pending +- +- +444444444444 +alive +healthy \d+s ago +-$`,
			`^web-3 +pending +- +- +444444444444 +dead +unknown +-$`}},
		{"rollout_show_json", local("rollout", "show", id, "--json"), 0, []string{`"node_alive": false`, `"new_sha": "` + viewsSHA + `"`, `"health": "unhealthy",`, `"health_by_node": "web-2"`}},
		{"rollout_show_missing", local("rollout", "show", "99999"), 5, nil},
		{"rollout_show_bad_id", local("rollout", "show", "x"), 2, nil},
		{"rollout_resume_not_waiting", local("rollout", "resume", id), 1, nil},
		{"status", local("status", "--offline", "hello"), 0, []string{`^FRAISE +ENVIRONMENT +NODE +HEALTH +STATUS `,
			`^hello +production@web-1 +alive +unhealthy \d+s ago +queued .* health: GET http://127\.0\.0\.1:9/health: status 503, want 200$`,
			`^hello +production@web-2 +alive +healthy \d+s ago +never deployed `,
			`^hello +production@web-3 +dead +unknown +never deployed .* health: last checked 10m ago; node web-3 is not alive$`,
			`^hello +staging +- +- +never deployed `, `^hello/production ` + progress + `$`}},
		{"status_one_env", local("status", "--offline", "hello", "production"), 0, []string{`^hello +production@web-2 +alive `}},
		{"status_one_host", local("status", "--offline", "--json", "hello", "production@web-3"), 0, []string{`"environment": "production@web-3"`, `"host": "web-3"`, `"node_alive": false`,
			`"health": "unknown",`, `"health_detail": "last checked 10m ago; node web-3 is not alive",`, `"health_by_node": "web-3"`}},
		{"status_other_host_healthy", local("status", "--offline", "--json", "hello", "production@web-2"), 0, []string{`"health": "healthy",`, `"health_checked_at": "`, `"health_by_node": "web-2"`}},
		{"status_unknown_host", local("status", "--offline", "hello", "production@web-9"), 5, nil},
		{"history_host", local("history", "--host", "web-1"), 0, []string{`^\d+ +hello +production@web-1 +queued +rollout `}},
		{"history_host_env", local("history", "hello", "production", "--host", "web-1", "--json"), 0, []string{`"environment": "production@web-1"`}},
		{"history_other_host", local("history", "--host", "web-2"), 0, []string{`^nothing matches these filters$`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := s.run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, re := range tc.lines {
				wantLine(t, out, re)
			}
		})
	}

	s.checkNoHostFields(t, local("status", "--offline", "--json", "hello", "staging"))

	// The same views through a serve's API.
	base, token, readOnly := s.serve(t)
	remote = func(args ...string) []string { return append(args, "--remote", base) }
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		lines    []string
		readOnly bool
	}{
		{"remote_nodes", remote("nodes"), 0, []string{`^web-2 +host-web-2 +v1\.2\.3 +\d+s ago +yes$`}, false},
		{"remote_rollouts", remote("rollouts", "hello", "production"), 0, []string{`^` + id + ` +hello +production +running `}, false},
		{"remote_rollout_show", remote("rollout", "show", id), 0, []string{`^` + progress + `$`, `^web-2 +pending +- +- +444444444444 +alive +healthy \d+s ago +-$`,
			`^web-3 +pending +- +- +444444444444 +dead +unknown +-$`}, false},
		{"remote_rollout_missing", remote("rollout", "show", "99999"), 5, nil, false},
		{"remote_resume_not_waiting", remote("rollout", "resume", id), 1, nil, false},
		{"remote_status", remote("status", "hello", "production"), 0, []string{`^FRAISE +ENVIRONMENT +NODE +HEALTH +STATUS `,
			`^hello +production@web-1 +alive +unhealthy \d+s ago +queued`, `^hello +production@web-2 +alive +healthy \d+s ago +never`,
			`^hello +production@web-3 +dead +unknown +never`}, false},
		{"remote_status_json", remote("status", "hello", "production@web-2", "--json"), 0, []string{`"health": "healthy",`, `"health_by_node": "web-2"`, `"node_alive": true`}, false},
		{"remote_status_no_host", remote("status", "hello", "staging"), 0, []string{`^FRAISE +ENVIRONMENT +STATUS +SHA +RELEASE +DEPLOYED +BY$`}, false},
		// Resuming needs the deploy scope of the rollout's environment.
		{"remote_resume_read_only", remote("rollout", "resume", id), 1, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.env[cli.TokenEnv] = token
			if tc.readOnly {
				s.env[cli.TokenEnv] = readOnly
			}
			code, out := s.run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, re := range tc.lines {
				wantLine(t, out, re)
			}
		})
	}
	s.env[cli.TokenEnv] = token
	s.checkNoHostFields(t, remote("status", "hello", "staging", "--json"))
}

// checkNoHostFields checks that fraisier args, the JSON view of an
// environment without hosts, keeps its shape: no host, node or health
// field.
func (s *viewsSite) checkNoHostFields(t *testing.T, args []string) {
	t.Helper()
	if _, out := s.run(t, args...); strings.Contains(out, `"health`) || strings.Contains(out, `"host"`) || strings.Contains(out, `"node_alive"`) {
		t.Errorf("fraisier %s shows host fields for an environment without hosts:\n%s", strings.Join(args, " "), out)
	}
}

// serve starts a server on loopback over the site's state and returns
// its URL, a token that may read and deploy hello/production and one that
// may only read.
func (s *viewsSite) serve(t *testing.T) (base, token, readOnly string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(s.cfgPath, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, store.Options{URL: s.url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var scopes []store.Scope
	for _, text := range []string{"read", "deploy:hello/production"} {
		sc, err := store.ParseScope(text)
		if err != nil {
			t.Fatal(err)
		}
		scopes = append(scopes, sc)
	}
	_, token, err = db.CreateAPIToken(ctx, "views", scopes)
	if err != nil {
		t.Fatal(err)
	}
	if _, readOnly, err = db.CreateAPIToken(ctx, "views-read", scopes[:1]); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return "http://" + l.Addr().String(), token, readOnly
}

// TestRolloutJSONShape pins the --json field names of a rollout's view
// that scripts read.
func TestRolloutJSONShape(t *testing.T) {
	dep := int64(7)
	r := store.Rollout{ID: 3, Target: store.Target{Fraise: "hello", Environment: "production"}, SHA: viewsSHA, Status: store.RolloutRunning, Batch: 1,
		Hosts: []store.RolloutHost{
			{Host: "web-1", Batch: 0, Status: store.HostSucceeded, DeploymentID: &dep, OldSHA: "abc"},
			{Host: "web-2", Position: 1, Batch: 1, Status: store.HostDeploying},
			{Host: "web-3", Position: 2, Batch: 2, Status: store.HostPending},
		}}
	now := time.Now()
	nodes := map[string]store.Node{"web-1": {Name: "web-1", HeartbeatAt: now}, "web-2": {Name: "web-2", HeartbeatAt: now.Add(-time.Minute)}}
	v := server.RolloutView(r, nodes, now, 30*time.Second)
	if v.Progress != "rollout 3: 1/3 hosts, batch 2 of 3, running" {
		t.Errorf("progress %q", v.Progress)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Hosts []map[string]any `json:"hosts"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Hosts) != 3 || got.Hosts[0]["node_alive"] != true || got.Hosts[1]["node_alive"] != false || got.Hosts[2]["node_alive"] != nil || got.Hosts[0]["new_sha"] != viewsSHA {
		t.Errorf("hosts %v", got.Hosts)
	}
	for _, k := range []string{`"hosts_done":1`, `"hosts_total":3`, `"batches":3`, `"waiting_resume":false`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
}
