package config

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandEnv(t *testing.T) {
	env := mapEnv(map[string]string{"HOST": "db.internal", "EMPTY": "", "PORT": "5432"})
	cases := []struct {
		in, want string
		refs     bool
		err      string // message of the error, "" for none
	}{
		{in: "plain", want: "plain"},
		{in: "${HOST}", want: "db.internal", refs: true},
		{in: "postgres://${HOST}:${PORT}/app", want: "postgres://db.internal:5432/app", refs: true},
		{in: "${UNSET}", err: "environment variable UNSET is not set"},
		{in: "${EMPTY}", want: "", refs: true},
		{in: "${UNSET:-fallback}", want: "fallback", refs: true},
		{in: "${EMPTY:-fallback}", want: "fallback", refs: true},
		{in: "${HOST:-fallback}", want: "db.internal", refs: true},
		{in: "${UNSET-fallback}", want: "fallback", refs: true},
		{in: "${EMPTY-fallback}", want: "", refs: true},
		{in: "${UNSET:-}", want: "", refs: true},
		{in: "${UNSET:-a:b c}", want: "a:b c", refs: true},
		{in: "${UNSET:?give the host}", err: "environment variable UNSET is unset or empty: give the host"},
		{in: "${EMPTY:?give the host}", err: "environment variable EMPTY is unset or empty: give the host"},
		{in: "${EMPTY?give the host}", want: "", refs: true},
		{in: "${UNSET?}", err: "environment variable UNSET is not set"},
		{in: "${HOST:?unused}", want: "db.internal", refs: true},
		{in: "$$", want: "$"},
		{in: "$${HOST}", want: "${HOST}"},
		{in: "cost: $5", want: "cost: $5"},
		{in: "trailing $", want: "trailing $"},
		{in: "$HOST", err: "$HOST is not expanded"},
		{in: "${HOST", err: "unterminated ${ in value"},
		{in: "${1X}", err: "${1X} is not a valid reference"},
		{in: "${}", err: "${} is not a valid reference"},
		{in: "${HOST:+alt}", err: "${HOST:+alt} is not a valid reference"},
		// Defaults are not expanded again.
		{in: "${UNSET:-$HOME}", want: "$HOME", refs: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, refs, err := expandEnv(tc.in, env)
			if tc.err != "" {
				if err == nil || err.msg != tc.err {
					t.Fatalf("expandEnv(%q) error = %+v, want %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("expandEnv(%q): %+v", tc.in, err)
			}
			if got != tc.want || refs != tc.refs {
				t.Errorf("expandEnv(%q) = %q, %v; want %q, %v", tc.in, got, refs, tc.want, tc.refs)
			}
		})
	}
}

// TestExpansionIsValuesOnly checks that a variable cannot change the
// structure of the file, and that keys are never expanded.
func TestExpansionIsValuesOnly(t *testing.T) {
	env := mapEnv(map[string]string{
		"DESC":   "x\nbranch: evil\napp_path: /etc",
		"COLON":  "a: b",
		"BRANCH": "main",
		"KEY":    "branch",
	})
	t.Run("newlines and colons stay in the string", func(t *testing.T) {
		yaml := "fraises:\n  api:\n    type: api\n    description: ${DESC}\n    repository: https://github.com/acme/api.git\n    environments:\n      production:\n        branch: ${BRANCH}\n        app_path: /srv/api\n        install: {command: [echo, \"${COLON}\"]}\n"
		cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: env, ReadFile: noFiles})
		if err != nil {
			t.Fatal(err)
		}
		f := cfg.Fraises["api"]
		if f.Description != "x\nbranch: evil\napp_path: /etc" {
			t.Errorf("description = %q", f.Description)
		}
		e := f.Environments["production"]
		if e.Branch != "main" || e.AppPath != "/srv/api" {
			t.Errorf("branch, app_path = %q, %q", e.Branch, e.AppPath)
		}
		if diff := cmp.Diff([]string{"echo", "a: b"}, e.Install.Argv); diff != "" {
			t.Errorf("argv (-want +got):\n%s", diff)
		}
	})
	t.Run("keys are not expanded", func(t *testing.T) {
		yaml := apiWith("${KEY}: main\napp_path: /srv/api\n")
		_, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: env, ReadFile: noFiles})
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("got %v, want *Error", err)
		}
		want := []Problem{
			{File: "fraises.yaml", Line: 6, Col: 7, Path: prod + ".branch", Message: "required key missing", Hint: "branch deployed by default; a glob (release/*) routes several"},
			{File: "fraises.yaml", Line: 7, Col: 9, Path: prod + ".${KEY}", Message: `unknown key "${KEY}"`, Hint: "known keys: branch, tags, auto_deploy, pull_requests, git_repo, app_path, layout, keep_releases, shared, systemd_service, scope, install, database, health_check, timeouts, protected, user, group, scripts, shares_code_with, run_after_deploy, jobs, after, trigger, checks, restart, blue_green, hosts, rollout"},
		}
		if diff := cmp.Diff(want, cerr.Problems); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	t.Run("env keys are not expanded either", func(t *testing.T) {
		yaml := apiWith(base + "install:\n  command: [make]\n  env:\n    A_${KEY}: v\n")
		_, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: env, ReadFile: noFiles})
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Path != prod+".install.env.A_${KEY}" {
			t.Fatalf("got %v, want one problem with the key A_${KEY}", err)
		}
	})
	t.Run("typed values from variables", func(t *testing.T) {
		env := mapEnv(map[string]string{"KEEP": "7", "AUTO": "false", "RATE": "2.5", "GRACE": "90"})
		yaml := "server:\n  shutdown_grace: ${GRACE}\n  rate_limit: {per_source: \"${RATE}\"}\n" + apiWith(base+"keep_releases: ${KEEP}\nauto_deploy: ${AUTO}\n")
		cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: env, ReadFile: noFiles})
		if err != nil {
			t.Fatal(err)
		}
		e := cfg.Fraises["api"].Environments["production"]
		if e.KeepReleases != 7 || e.IsAutoDeploy() || cfg.Server.RateLimit.PerSource != 2.5 || cfg.Server.ShutdownGrace.D().Seconds() != 90 {
			t.Errorf("keep_releases %d, auto_deploy %v, per_source %v, shutdown_grace %v", e.KeepReleases, e.IsAutoDeploy(), cfg.Server.RateLimit.PerSource, cfg.Server.ShutdownGrace)
		}
	})
}

// TestExpansionErrorPositions checks that each failing reference is
// reported at its own scalar, all at once.
func TestExpansionErrorPositions(t *testing.T) {
	yaml := "state:\n  url: \"${STATE_URL}\"\n" + apiWith("branch: ${BRANCH:?which branch deploys production}\napp_path: ${ROOT}/api\n")
	_, err := Parse("f.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want *Error", err)
	}
	type pos struct {
		Line, Col int
		Path      string
	}
	var got []pos
	for _, p := range cerr.Problems {
		got = append(got, pos{p.Line, p.Col, p.Path})
	}
	want := []pos{
		{2, 8, "state.url"},
		{9, 17, prod + ".branch"},
		{10, 19, prod + ".app_path"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("positions (-want +got):\n%s\n%v", diff, err)
	}
}

// TestSecretExpansionErrorsDoNotQuote checks that a malformed reference in
// a secret is reported without repeating the value.
func TestSecretExpansionErrorsDoNotQuote(t *testing.T) {
	yaml := "git:\n  github: {secret: \"hunter2$hunter3\"}\n" + apiWith(base)
	_, err := Parse("f.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err == nil {
		t.Fatal("no error")
	}
	if msg := err.Error(); containsAny(msg, "hunter2", "hunter3") {
		t.Errorf("error quotes the secret: %s", msg)
	}
}
