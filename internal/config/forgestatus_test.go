package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const statusToken = "ghp_status-token-never-printed-0123"

// TestForgeStatus covers git.<forge>.status: a token from the file or a
// credentials file, api_url defaults and checks, and what is refused.
func TestForgeStatus(t *testing.T) {
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, "gh-status"), []byte(statusToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "secret: github-secret-0123456789"
	cases := []struct {
		name     string
		git      string
		token    Secret
		apiURL   string
		problems []string
		warnings []string
	}{
		{name: "token", git: "github: {" + secret + ", status: {token: " + statusToken + "}}", token: statusToken},
		{name: "token from a variable", git: "github: {" + secret + ", status: {token: \"${GH_STATUS}\"}}", token: statusToken},
		{name: "token_file", git: "github: {" + secret + ", status: {token_file: gh-status}}", token: statusToken},
		{name: "enterprise api_url", git: "github: {" + secret + ", status: {token: " + statusToken + ", api_url: \"https://ghe.example/api/v3\"}}",
			token: statusToken, apiURL: "https://ghe.example/api/v3"},
		{name: "gitea with api_url", git: "gitea: {" + secret + ", status: {token: " + statusToken + ", api_url: \"https://git.example\"}}",
			token: statusToken, apiURL: "https://git.example"},
		{name: "plain http on loopback", git: "gitea: {" + secret + ", status: {token: " + statusToken + ", api_url: \"http://127.0.0.1:3000\"}}",
			token: statusToken, apiURL: "http://127.0.0.1:3000"},
		{name: "plain http elsewhere warns", git: "gitea: {" + secret + ", status: {token: " + statusToken + ", api_url: \"http://git.example\"}}",
			token: statusToken, apiURL: "http://git.example",
			warnings: []string{"git.gitea.status.api_url: http://git.example is plain http: the token crosses the network unencrypted"}},
		{name: "status without webhooks warns", git: "gitlab: {status: {token: " + statusToken + "}}", token: statusToken,
			warnings: []string{"git.gitlab: gitlab has a status block and no secret: deployments are reported on it, but its webhooks are refused"}},
		{name: "no token", git: "github: {" + secret + ", status: {api_url: \"https://ghe.example/api/v3\"}}",
			problems: []string{"git.github.status: github status has no token, so no deployment can be reported"}},
		{name: "token and token_file", git: "github: {" + secret + ", status: {token: " + statusToken + ", token_file: gh-status}}",
			problems: []string{"git.github.status.token_file: token and token_file are both set"}},
		{name: "missing token_file", git: "github: {" + secret + ", status: {token_file: nope}}",
			problems: []string{fmt.Sprintf("git.github.status.token_file: read %s: no such file or directory", filepath.Join(creds, "nope"))}},
		{name: "token with a line break", git: "github: {" + secret + ", status: {token: \"" + statusToken + "\\n\"}}",
			problems: []string{"git.github.status.token: the token holds a space or a control character"}},
		{name: "gitea needs api_url", git: "gitea: {" + secret + ", status: {token: " + statusToken + "}}",
			problems: []string{"git.gitea.status.api_url: gitea has no public service: status needs api_url"}},
		{name: "bitbucket_server needs api_url", git: "bitbucket_server: {" + secret + ", status: {token: " + statusToken + "}}",
			problems: []string{"git.bitbucket_server.status.api_url: bitbucket_server has no public service: status needs api_url"}},
		{name: "api_url with a password", git: "github: {" + secret + ", status: {token: " + statusToken + ", api_url: \"https://u:" + statusToken + "@ghe.example\"}}",
			problems: []string{"git.github.status.api_url: api_url holds a user or password"}},
		{name: "api_url not http", git: "github: {" + secret + ", status: {token: " + statusToken + ", api_url: \"ftp://ghe.example\"}}",
			problems: []string{`git.github.status.api_url: "ftp://ghe.example" is not an http(s) address`}},
		{name: "api_url with a query", git: "github: {" + secret + ", status: {token: " + statusToken + ", api_url: \"https://ghe.example/?a=b\"}}",
			problems: []string{`git.github.status.api_url: "https://ghe.example/?a=b" has a query or fragment`}},
	}
	env := mapEnv(map[string]string{"CREDENTIALS_DIRECTORY": creds, "GH_STATUS": statusToken})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "git:\n  " + tc.git + "\n" + apiWith(base)
			cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: env})
			var got []string
			if cerr := (*Error)(nil); errors.As(err, &cerr) {
				for _, p := range cerr.Problems {
					got = append(got, p.Path+": "+p.Message)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.problems, got); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if err != nil {
				if strings.Contains(err.Error(), statusToken) {
					t.Errorf("the error holds the token: %v", err)
				}
				return
			}
			var warnings []string
			for _, w := range cfg.Warnings {
				if strings.HasPrefix(w.Path, "git.") { // the fraise is on github in every case
					warnings = append(warnings, w.Path+": "+w.Message)
				}
			}
			if diff := cmp.Diff(tc.warnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			key := strings.SplitN(tc.git, ":", 2)[0]
			apiURL, token, ok := cfg.Git.StatusOf(key)
			if !ok || token != tc.token || apiURL != tc.apiURL {
				t.Errorf("StatusOf(%s) = %q, %q, %v; want %q, %q", key, apiURL, token.Reveal(), ok, tc.apiURL, tc.token.Reveal())
			}
			if !slices.Contains(cfg.SecretValues(), statusToken) {
				t.Error("SecretValues does not hold the status token, so output is not scrubbed of it")
			}
			for _, out := range []string{fmt.Sprintf("%+v", *cfg.Git.Forges()[key].Status), mustJSON(t, cfg)} {
				if strings.Contains(out, statusToken) {
					t.Errorf("printed configuration holds the token: %s", out)
				}
			}
		})
	}
}

func TestStatusOfAbsent(t *testing.T) {
	cfg := mustParse(t, "git:\n  github: {secret: github-secret-0123456789}\n"+apiWith(base))
	if _, _, ok := cfg.Git.StatusOf("github"); ok {
		t.Error("a forge without status reports")
	}
	if _, _, ok := cfg.Git.StatusOf("gitlab"); ok {
		t.Error("an absent forge reports")
	}
}
