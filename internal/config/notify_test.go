package config

import (
	"slices"
	"strings"
	"testing"
)

const notifyKey = "0123456789abcdef0123"

func notifyWith(s string) string { return apiWith(base) + "notify:\n" + indent(s, 2) }

// TestNotifyValidation: each mistake in a notify section is reported at
// its key with a hint, and never quotes a target's URL.
func TestNotifyValidation(t *testing.T) {
	hook := "targets:\n  hook: {url: \"webhook+https://example.test/h\", secret: " + notifyKey + "}\n"
	cases := []struct {
		name, yaml, path, msg string
	}{
		{"unknown scheme", "targets:\n  x: {url: \"sms://tok3nS3cret@host\"}\n", "notify.targets.x.url", `scheme "sms"`},
		{"no url", "targets:\n  x: {secret_file: \"\"}\n", "notify.targets.x", "has no url"},
		{"url without host", "targets:\n  x: {url: \"slack://\"}\n", "notify.targets.x.url", "has no host"},
		{"webhook unsigned", "targets:\n  x: {url: \"webhook+https://example.test/h\"}\n", "notify.targets.x.secret", "needs a signing secret"},
		{"webhook short secret", "targets:\n  x: {url: \"webhook+https://example.test/h\", secret: short}\n", "notify.targets.x.secret", "shorter than"},
		{"secret on a chat target", "targets:\n  x: {url: \"ntfy://ntfy.test/topic\", secret: " + notifyKey + "}\n", "notify.targets.x.secret", "only webhook+"},
		{"unknown event", hook + "default: {events: [failed, exploded], targets: [hook]}\n", "notify.default.events[1]", `unknown event "exploded"`},
		{"unknown target", hook + "routes:\n  - {events: [all], targets: [hook, pager]}\n", "notify.routes[0].targets[1]", `no target named "pager"`},
		{"no targets", hook + "routes:\n  - {events: [all], targets: []}\n", "notify.routes[0].targets", "no target"},
		{"unknown fraise", hook + "routes:\n  - {fraise: web, events: [all], targets: [hook]}\n", "notify.routes[0].fraise", `no fraise named "web"`},
		{"unknown environment", hook + "routes:\n  - {fraise: api, environment: prod, events: [all], targets: [hook]}\n", "notify.routes[0].environment", `no environment "prod"`},
		{"default names an environment", hook + "default: {environment: production, events: [all], targets: [hook]}\n", "notify.default", "every environment"},
		{"bad target name", "targets:\n  Bad Name: {url: \"ntfy://ntfy.test/t\"}\n", "notify.targets", ""},
		{"attempts out of range", hook + "max_attempts: 0\n", "notify.max_attempts", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := problemsOf(t, notifyWith(tc.yaml))
			i := slices.IndexFunc(ps, func(p Problem) bool { return strings.HasPrefix(p.Path, tc.path) })
			if i < 0 {
				t.Fatalf("no problem at %s; got %v", tc.path, ps)
			}
			p := ps[i]
			if !strings.Contains(p.Message, tc.msg) || p.Hint == "" && tc.msg != "" {
				t.Errorf("problem %+v, want message with %q and a hint", p, tc.msg)
			}
			for _, p := range ps {
				if strings.Contains(p.String(), "tok3nS3cret") {
					t.Errorf("a problem quotes the URL: %s", p)
				}
			}
		})
	}
}

// TestNotifyRoutes: routes matching an environment decide its targets;
// an environment no route matches uses the default; all leaves out skipped.
func TestNotifyRoutes(t *testing.T) {
	cfg := mustParse(t, notifyWith(`targets:
  hook: {url: "webhook+http://127.0.0.1:1/h", secret: `+notifyKey+`}
  chat: {url: "ntfy://ntfy.test/topic"}
  pager: {url: "slack://hook:AAAAAAAAAAAAAAAAAAAAAAAA@webhook"}
routes:
  - {fraise: api, environment: production, events: [failed, rolled_back], targets: [pager, chat]}
  - {environment: production, events: [succeeded], targets: [chat]}
default: {events: [all], targets: [hook]}
`))
	n := &cfg.Notify
	cases := []struct {
		event, fraise, env string
		want               []string
	}{
		{"failed", "api", "production", []string{"chat", "pager"}},
		{"succeeded", "api", "production", []string{"chat"}},
		{"interrupted", "api", "production", nil},
		{"failed", "api", "staging", []string{"hook"}},
		{"skipped", "api", "staging", nil},
		{"queue_stuck", "", "", []string{"hook"}},
	}
	for _, tc := range cases {
		if got := n.TargetsFor(tc.event, tc.fraise, tc.env); !slices.Equal(got, tc.want) {
			t.Errorf("TargetsFor(%s, %s/%s) = %v, want %v", tc.event, tc.fraise, tc.env, got, tc.want)
		}
	}
	if n.Attempts() != DefaultNotifyAttempts || n.AttemptTimeout() != DefaultNotifyTimeout {
		t.Errorf("defaults: %d attempts, %s timeout", n.Attempts(), n.AttemptTimeout())
	}
	secrets := cfg.SecretValues()
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAAAA", notifyKey, "slack://hook:AAAAAAAAAAAAAAAAAAAAAAAA@webhook"} {
		if !slices.Contains(secrets, s) {
			t.Errorf("SecretValues misses %q", s)
		}
	}
}

// TestNotifyURLFile: a target's URL can come from a credentials file,
// and both url and url_file is refused.
func TestNotifyURLFile(t *testing.T) {
	files := func(name string) ([]byte, error) {
		if name == "/run/creds/slack" {
			return []byte("slack://hook:BBBBBBBBBBBBBBBBBBBBBBBB@webhook\n"), nil
		}
		return noFiles(name)
	}
	yaml := notifyWith("targets:\n  chat: {url_file: /run/creds/slack}\ndefault: {events: [failed], targets: [chat]}\n")
	cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: files})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Notify.Targets["chat"].URL.Reveal(); got != "slack://hook:BBBBBBBBBBBBBBBBBBBBBBBB@webhook" {
		t.Errorf("url from file = %q", got)
	}
	if !slices.Contains(cfg.SecretValues(), "BBBBBBBBBBBBBBBBBBBBBBBB") {
		t.Error("the token of a url_file is not among the secrets")
	}
	both := notifyWith("targets:\n  chat: {url: \"ntfy://ntfy.test/t\", url_file: /run/creds/slack}\n")
	_, err = Parse("fraises.yaml", []byte(both), Options{LookupEnv: mapEnv(nil), ReadFile: files})
	if err == nil || !strings.Contains(err.Error(), "url and url_file are both set") {
		t.Errorf("url and url_file: %v", err)
	}
}
