package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pgState is a PostgreSQL state section, which hosts: needs.
const pgState = "state: {url: \"postgres://fraisier@db/fraisier\"}\n"

// hostsWith is the valid api fraise with a PostgreSQL state, host groups
// web: [web-1, web-2] and db: [db-1], and env added to its environment.
func hostsWith(env string) string {
	return pgState + "host_groups:\n  web: [web-1, web-2]\n  db: [db-1]\n" + apiWith(base+env)
}

var hostRuleCases = []ruleCase{
	{name: "hosts_duplicate_via_group", yaml: hostsWith("hosts: [web, web-3, web-1]\n"), paths: []string{prod + ".hosts[2]"}},
	{name: "hosts_duplicate_two_groups", yaml: pgState + "host_groups:\n  web: [web-1, web-2]\n  canary: [web-2]\n" + apiWith(base+"hosts: [web, canary]\n"), paths: []string{prod + ".hosts[1]"}},
	{name: "hosts_duplicate_plain", yaml: hostsWith("hosts: [web-3, web-3]\n"), paths: []string{prod + ".hosts[1]"}},
	{name: "hosts_bad_name", yaml: hostsWith("hosts: [Web-1, \"web@2\", web-1.example.com]\n"), paths: []string{prod + ".hosts[0]", prod + ".hosts[1]", prod + ".hosts[2]"}},
	{name: "hosts_empty", yaml: hostsWith("hosts: []\n"), paths: []string{prod + ".hosts"}},
	{name: "hosts_sqlite", yaml: apiWith(base + "hosts: [web-1, web-2]\n"), paths: []string{prod + ".hosts"}},
	{name: "hosts_sqlite_path", yaml: "state: {path: /var/lib/fraisier/state.db}\n" + apiWith(base+"hosts: [web-1]\n"), paths: []string{prod + ".hosts"}},
	{name: "hosts_on_scheduled", yaml: pgState + scheduledWith(base+job+"hosts: [web-1]\n"), paths: []string{"fraises.cron.environments.production.hosts"}},
	{name: "hosts_on_etl", yaml: pgState + etlWith("branch: main\nshares_code_with: api/production\nhosts: [web-1]\n"), paths: []string{"fraises.etl.environments.production.hosts"}},
	{name: "host_groups_rules", yaml: pgState + "host_groups:\n  web: [web-1, web-1, Web_2, db]\n  db: []\n  Bad: [x]\n" + apiWith(base),
		paths: []string{"host_groups.web[1]", "host_groups.web[2]", "host_groups.web[3]", "host_groups.db", "host_groups.Bad"}},
	{name: "server_node_name", yaml: pgState + "server: {node: \"web 1\"}\n" + apiWith(base), paths: []string{"server.node"}},
	{name: "rollout_without_hosts", yaml: hostsWith("rollout: {batch: 2}\n"), paths: []string{prod + ".rollout"}},
	{name: "rollout_canary_wait", yaml: hostsWith("hosts: [web]\nrollout: {canary: true, canary_wait: soon}\n"), paths: []string{prod + ".rollout.canary_wait"}},
	{name: "rollout_canary_wait_negative", yaml: hostsWith("hosts: [web]\nrollout: {canary: true, canary_wait: -5s}\n"), paths: []string{prod + ".rollout.canary_wait"}},
	{name: "rollout_canary_wait_without_canary", yaml: hostsWith("hosts: [web]\nrollout: {canary_wait: manual}\n"), paths: []string{prod + ".rollout.canary_wait"}},
	{name: "rollout_migrate_on", yaml: hostsWith("hosts: [web]\nrollout: {migrate_on: web-3}\n"), paths: []string{prod + ".rollout.migrate_on"}},
	{name: "rollout_migrate_on_typo", yaml: hostsWith("hosts: [web]\nrollout: {migrate_on: web_1}\n"), paths: []string{prod + ".rollout.migrate_on"}},
	{name: "rollout_migrate_on_group", yaml: hostsWith("hosts: [web, db]\nrollout: {migrate_on: db}\n"), paths: []string{prod + ".rollout.migrate_on"}},
	{name: "rollout_node_timeout", yaml: hostsWith("hosts: [web]\nrollout: {node_timeout: 2s}\n"), paths: []string{prod + ".rollout.node_timeout"}},
	{name: "rollout_numbers", yaml: hostsWith("hosts: [web]\nrollout: {batch: 0, pause: -1s, claim_timeout: 0}\n"),
		paths: []string{prod + ".rollout.batch", prod + ".rollout.pause", prod + ".rollout.claim_timeout"}},
}

func TestHostRules(t *testing.T) {
	runRuleCases(t, hostRuleCases)
}

// TestHosts checks the expansion, the defaults and the resolved policy
// of valid configurations.
func TestHosts(t *testing.T) {
	cases := []struct {
		name, yaml string
		hosts      []string
		want       RolloutSettings
	}{
		{name: "defaults", yaml: hostsWith("hosts: [web-3, web]\n"), hosts: []string{"web-3", "web-1", "web-2"},
			want: RolloutSettings{Hosts: []string{"web-3", "web-1", "web-2"}, Batch: 1, MigrateHost: "web-3", NodeTimeout: 30 * time.Second, ClaimTimeout: 2 * time.Minute}},
		{name: "migrate_on_moves_first", yaml: hostsWith("hosts: [web, db]\nrollout: {canary: true, canary_wait: 45s, batch: 2, pause: 10s, migrate_on: db-1, node_timeout: 3s, claim_timeout: 90}\n"),
			hosts: []string{"web-1", "web-2", "db-1"},
			want: RolloutSettings{Hosts: []string{"db-1", "web-1", "web-2"}, Canary: true, CanaryWait: 45 * time.Second, Batch: 2, Pause: 10 * time.Second,
				MigrateHost: "db-1", NodeTimeout: 3 * time.Second, ClaimTimeout: 90 * time.Second}},
		{name: "manual_canary", yaml: hostsWith("hosts: [web]\nrollout: {canary: true, canary_wait: manual}\n"), hosts: []string{"web-1", "web-2"},
			want: RolloutSettings{Hosts: []string{"web-1", "web-2"}, Canary: true, CanaryManual: true, Batch: 1, MigrateHost: "web-1", NodeTimeout: 30 * time.Second, ClaimTimeout: 2 * time.Minute}},
		{name: "url_file_state", yaml: strings.Replace(hostsWith("hosts: [web-1]\n"), pgState, "state: {url_file: /run/credentials/state-url}\n", 1), hosts: []string{"web-1"},
			want: RolloutSettings{Hosts: []string{"web-1"}, Batch: 1, MigrateHost: "web-1", NodeTimeout: 30 * time.Second, ClaimTimeout: 2 * time.Minute}},
		{name: "name_near_a_group_is_a_host", yaml: hostsWith("hosts: [wbe, web-3]\n"), hosts: []string{"wbe", "web-3"},
			want: RolloutSettings{Hosts: []string{"wbe", "web-3"}, Batch: 1, MigrateHost: "wbe", NodeTimeout: 30 * time.Second, ClaimTimeout: 2 * time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("fraises.yaml", []byte(tc.yaml), Options{LookupEnv: mapEnv(nil), ReadFile: readURLFile})
			if err != nil {
				t.Fatalf("unexpected problems:\n%v\ninput:\n%s", err, tc.yaml)
			}
			e := cfg.Fraises["api"].Environments["production"]
			if diff := cmp.Diff(tc.hosts, e.Hosts); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
			got, ok := e.RolloutSettings()
			if !ok {
				t.Fatal("RolloutSettings: not ok for an environment with hosts")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RolloutSettings (-want +got):\n%s", diff)
			}
			if len(cfg.Warnings) != 0 {
				t.Errorf("warnings %v, want none", cfg.Warnings)
			}
			if !e.HasHosts() {
				t.Error("HasHosts false for an environment with hosts")
			}
		})
	}
}

func readURLFile(name string) ([]byte, error) {
	if name == "/run/credentials/state-url" {
		return []byte("postgres://fraisier@db/fraisier\n"), nil
	}
	return noFiles(name)
}

func TestLookupHost(t *testing.T) {
	yaml := hostsWith("hosts: [web, web-3]\nrollout: {node_timeout: 45s}\n") + "      staging: {branch: dev, app_path: /srv/api-staging}\n"
	cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatal(err)
	}
	prodEnv := cfg.Fraises["api"].Environments["production"]
	e, err := cfg.Lookup("api", "production@web-2")
	if err != nil {
		t.Fatal(err)
	}
	if e == prodEnv || e.Name != "production@web-2" || e.Host != "web-2" || e.HostOf != prodEnv || e.Code != e {
		t.Errorf("Lookup(production@web-2) = name %q host %q hostOf %p code self %v; want a copy of %p", e.Name, e.Host, e.HostOf, e.Code == e, prodEnv)
	}
	if e.HasHosts() || e.Base() != prodEnv || e.HostTarget("web-1") != "production@web-1" || prodEnv.Name != "production" {
		t.Errorf("per-host copy: HasHosts %v, Base %p, HostTarget %q, base name %q", e.HasHosts(), e.Base(), e.HostTarget("web-1"), prodEnv.Name)
	}
	if diff := cmp.Diff([]string{"production@web-1", "production@web-2", "production@web-3"}, prodEnv.HostTargets()); diff != "" {
		t.Errorf("HostTargets (-want +got):\n%s", diff)
	}
	if got := cfg.NodeTimeout(); got != 45*time.Second {
		t.Errorf("NodeTimeout = %s, want 45s (the largest configured)", got)
	}
	for _, tc := range []struct{ env, want string }{
		{"production@web-9", `environment production of api has no host "web-9" (have: web-1, web-2, web-3)`},
		{"production@web", `environment production of api has no host "web" (have: web-1, web-2, web-3)`},
		{"production@", `environment production of api has no host "" (have: web-1, web-2, web-3)`},
		{"staging@web-1", "environment staging of api lists no hosts, so staging@web-1 names no host target"},
		{"qa@web-1", `fraise api has no environment "qa" (have: production, staging)`},
	} {
		_, err := cfg.Lookup("api", tc.env)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Lookup(%s) error %v, want %q", tc.env, err, tc.want)
		}
	}
	if _, ok := cfg.Fraises["api"].Environments["staging"].RolloutSettings(); ok {
		t.Error("RolloutSettings ok for an environment without hosts")
	}
}

func TestSplitHost(t *testing.T) {
	for _, tc := range []struct{ in, base, host string }{
		{"production", "production", ""},
		{"production@web-1", "production", "web-1"},
		{"production@", "production", ""},
	} {
		b, h := SplitHost(tc.in)
		if b != tc.base || h != tc.host {
			t.Errorf("SplitHost(%q) = %q, %q; want %q, %q", tc.in, b, h, tc.base, tc.host)
		}
	}
}
