package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeRepository(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://github.com/Acme/Hello.git", "github.com/acme/hello"},
		{"https://github.com/acme/hello", "github.com/acme/hello"},
		{"https://github.com/acme/hello/", "github.com/acme/hello"},
		{"http://user:pw@GitHub.com:8080/acme/hello.git", "github.com/acme/hello"},
		{"ssh://git@github.com:22/acme/hello.git", "github.com/acme/hello"},
		{"git@github.com:acme/hello.git", "github.com/acme/hello"},
		{"github.com:acme/hello", "github.com/acme/hello"},
		{"git://github.com/acme/hello", "github.com/acme/hello"},
		{"github.com/acme/hello", "github.com/acme/hello"},
		{"Acme/Hello", "acme/hello"},
		{"acme/hello.git", "acme/hello"},
		{"https://gitlab.example.com/group/sub/project.git", "gitlab.example.com/group/sub/project"},
		{"/srv/git/Hello.git", "/srv/git/Hello"},
		{"/srv/git/hello/", "/srv/git/hello"},
		{"file:///srv/git/hello.git", "/srv/git/hello"},
		{"  acme/hello  ", "acme/hello"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := NormalizeRepository(tc.in); got != tc.want {
			t.Errorf("NormalizeRepository(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSameRepository(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"https://github.com/acme/hello.git", "git@github.com:Acme/hello", true},
		{"acme/hello", "https://github.com/acme/hello.git", true},
		{"acme/hello", "https://gitlab.com/acme/hello.git", true},
		{"https://github.com/acme/hello.git", "https://gitlab.com/acme/hello.git", false},
		{"acme/hello", "acme/hello-api", false},
		{"acme/hello", "other/hello", false},
		{"/srv/git/hello.git", "/srv/git/hello", true},
		{"/srv/git/hello", "srv/git/hello", false},
		{"", "", false},
	}
	for _, tc := range cases {
		if got := SameRepository(tc.a, tc.b); got != tc.want {
			t.Errorf("SameRepository(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	yaml := `fraises:
  api:
    type: api
    repository: acme/api
    forge: github
    environments:
      production: {branch: main, tags: "v*", git_repo: /srv/git/api.git, app_path: /srv/api}
      staging: {branch: "release/*", git_repo: /srv/git/api.git, app_path: /srv/api-staging}
      manual: {branch: main, auto_deploy: false, git_repo: /srv/git/api.git, app_path: /srv/api-manual}
  etl:
    type: etl
    repository: https://github.com/acme/api.git
    environments:
      production: {branch: main, shares_code_with: api/production}
  other:
    type: api
    environments:
      production: {branch: main, git_repo: "git@github.com:acme/other.git", app_path: /srv/other}
  lab:
    type: api
    repository: acme/api
    forge: gitlab
    environments:
      production: {branch: main, git_repo: /srv/git/api.git, app_path: /srv/lab}
`
	cfg := mustParse(t, yaml)
	cases := []struct {
		forge, repo, ref string
		want             []string
	}{
		{"github", "https://github.com/acme/api", "refs/heads/main", []string{"api/production", "etl/production"}},
		{"github", "git@github.com:ACME/api.git", "main", []string{"api/production", "etl/production"}},
		{"github", "https://gitlab.com/acme/api", "refs/heads/main", []string{"api/production"}},
		{"github", "https://github.com/acme/api", "refs/heads/release/1.2", []string{"api/staging"}},
		{"github", "https://github.com/acme/api", "refs/heads/release/1.2/hotfix", nil},
		{"github", "https://github.com/acme/api", "refs/tags/v1.0", []string{"api/production"}},
		{"github", "https://github.com/acme/api", "refs/tags/release/1", nil},
		{"github", "https://github.com/acme/api", "refs/pull/1/head", nil},
		{"github", "https://github.com/acme/other.git", "refs/heads/main", []string{"other/production"}},
		{"github", "https://github.com/acme/nothing", "refs/heads/main", nil},
		// Only the delivering forge's fraises: whatever repository a
		// delivery names, another forge's fraises are not candidates.
		{"gitlab", "https://github.com/acme/api", "refs/heads/main", []string{"lab/production"}},
		{"gitlab", "https://github.com/acme/other.git", "refs/heads/main", nil},
		{"gitea", "https://github.com/acme/api", "refs/heads/main", nil},
		{"", "https://github.com/acme/api", "refs/heads/main", nil},
	}
	for _, tc := range cases {
		var got []string
		for _, e := range cfg.Match(tc.forge, tc.repo, tc.ref) {
			got = append(got, e.ID())
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Match(%q, %q, %q) (-want +got):\n%s", tc.forge, tc.repo, tc.ref, diff)
		}
	}

	// A delivery names its repository several ways: any of them routes,
	// each environment comes once, in order.
	router := cfg.Router()
	for _, tc := range []struct {
		names []string
		want  []string
	}{
		{[]string{"acme/other", "https://github.com/acme/other.git", "git@github.com:acme/other.git"}, []string{"other/production"}},
		{[]string{"nobody/else", "", "https://github.com/acme/api.git"}, []string{"api/production", "etl/production"}},
		{[]string{"acme/api", "https://gitlab.com/acme/api.git"}, []string{"api/production", "etl/production"}},
		{[]string{"https://gitlab.com/acme/api.git"}, []string{"api/production"}},
		{[]string{"", "nobody/else"}, nil},
		{nil, nil},
	} {
		var got []string
		for _, e := range router.Match("github", tc.names, "refs/heads/main") {
			got = append(got, e.ID())
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Router.Match(%q) (-want +got):\n%s", tc.names, diff)
		}
	}
}

func TestLookupAndNames(t *testing.T) {
	cfg := mustParse(t, apiWith(base)+"      staging: {branch: dev, app_path: /srv/api-staging}\n"+
		"  batch:\n    type: scheduled\n    environments:\n      production:\n        branch: main\n        shares_code_with: api/production\n"+indent(job, 8))
	if diff := cmp.Diff([]string{"api", "batch"}, cfg.FraiseNames()); diff != "" {
		t.Errorf("FraiseNames (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"production", "staging"}, cfg.Fraises["api"].EnvironmentNames()); diff != "" {
		t.Errorf("EnvironmentNames (-want +got):\n%s", diff)
	}
	e, err := cfg.Lookup("api", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if f, env := e.Target(); f != "api" || env != "staging" || e.ID() != "api/staging" {
		t.Errorf("Target = %s, %s", f, env)
	}
	for _, tc := range []struct{ fraise, env, want string }{
		{"apii", "production", `no fraise "apii" in fraises.yaml (have: api, batch)`},
		{"api", "prod", `fraise api has no environment "prod" (have: production, staging)`},
	} {
		if _, err := cfg.Lookup(tc.fraise, tc.env); err == nil || err.Error() != tc.want {
			t.Errorf("Lookup(%s, %s) = %v, want %q", tc.fraise, tc.env, err, tc.want)
		}
	}
	if got, want := cfg.Summary(), (Summary{Fraises: 2, Environments: 3, Jobs: 1}); got != want {
		t.Errorf("Summary = %+v, want %+v", got, want)
	}
}

func TestUnitName(t *testing.T) {
	cases := []struct{ in, suffix, want, problem string }{
		{"hello", "service", "hello.service", ""},
		{"hello.service", "service", "hello.service", ""},
		{"hello.api", "service", "hello.api.service", ""},
		{"app@blue", "service", "app@blue.service", ""},
		{"nightly", "timer", "nightly.timer", ""},
		{"hello.timer", "service", "", "is not a .service unit"},
		{"app@.service", "service", "", "is a template; name an instance"},
		{"a/b", "service", "", "has '/', which unit names cannot hold"},
		{"-x", "service", "", "does not start with a letter or digit"},
		{strings.Repeat("a", 256), "service", "", "is longer than 255 characters"},
	}
	for _, tc := range cases {
		got, problem, _ := unitName(tc.in, tc.suffix)
		if got != tc.want || problem != tc.problem {
			t.Errorf("unitName(%q, %s) = %q, %q; want %q, %q", tc.in, tc.suffix, got, problem, tc.want, tc.problem)
		}
	}
}

func TestEditDistanceHints(t *testing.T) {
	keys := []string{"branch", "app_path", "systemd_service", "health_check", "keep_releases"}
	cases := map[string]string{
		"brnach":           "branch",
		"Branch":           "branch",
		"apppath":          "app_path",
		"systemd_services": "systemd_service",
		"healthcheck":      "health_check",
		"keep_release":     "keep_releases",
		"colour":           "",
		"x":                "",
	}
	for in, want := range cases {
		if got := closest(in, keys); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
