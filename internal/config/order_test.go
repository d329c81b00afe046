package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRunsAfter: an environment waits for its after: entries and for the
// environment whose code it shares, each once, sorted.
func TestRunsAfter(t *testing.T) {
	yaml := etlWith("branch: main\nshares_code_with: api/production\nafter: [api/production]\n") +
		"  web:\n    type: api\n    repository: acme/web\n    environments:\n" +
		"      production: {branch: main, git_repo: /srv/git/web.git, app_path: /srv/web, after: [etl/production, api/production]}\n"
	cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"api/production", nil},
		{"etl/production", []string{"api/production"}},
		{"web/production", []string{"api/production", "etl/production"}},
	} {
		f, e, _ := strings.Cut(tc.env, "/")
		env, err := cfg.Lookup(f, e)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range env.RunsAfter() {
			got = append(got, a.ID())
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s.RunsAfter() (-want +got):\n%s", tc.env, diff)
		}
	}
}
