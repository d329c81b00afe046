package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestForgeKind pins how a fraise is tied to the forge whose deliveries
// may deploy it.
func TestForgeKind(t *testing.T) {
	fraise := func(name, lines string) string {
		return "  " + name + ":\n    type: api\n" + indent(lines, 4) +
			"    environments:\n      production: {branch: main, app_path: /srv/" + name + "}\n"
	}
	cases := []struct {
		name   string
		git    string
		fraise string
		want   string
	}{
		{"explicit", "github: {secret: gh-secret-0123456789}\n", "forge: gitlab\nrepository: https://github.com/acme/x.git\n", "gitlab"},
		{"github.com", "", "repository: https://github.com/acme/x.git\n", "github"},
		{"gitlab.com scp form", "", "repository: \"git@gitlab.com:acme/x.git\"\n", "gitlab"},
		{"bitbucket.org", "", "repository: https://bitbucket.org/acme/x.git\n", "bitbucket"},
		{"codeberg.org is gitea", "", "repository: https://codeberg.org/acme/x.git\n", "gitea"},
		{"host wins over the only forge", "gitea: {secret: gitea-secret-0123456789}\n", "repository: https://github.com/acme/x.git\n", "github"},
		{"git_repo host when the repository has none", "", "repository: acme/x\nenvironments_git_repo: https://gitlab.com/acme/x.git\n", "gitlab"},
		{"the only forge", "gitea: {secret: gitea-secret-0123456789}\n", "repository: acme/x\nenvironments_git_repo: /srv/git/x.git\n", "gitea"},
		{"self-hosted, only forge", "gitlab: {secret: gitlab-secret-0123456789}\n", "repository: https://git.example.com/acme/x.git\n", "gitlab"},
		{"nothing tells", "", "repository: acme/x\nenvironments_git_repo: /srv/git/x.git\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := tc.fraise
			gitRepo := ""
			if i := strings.Index(lines, "environments_git_repo: "); i >= 0 {
				gitRepo = strings.TrimSpace(lines[i+len("environments_git_repo: "):])
				lines = lines[:i]
			}
			text := fraise("x", lines)
			if gitRepo != "" {
				text = strings.Replace(text, "app_path: /srv/x}", "app_path: /srv/x, git_repo: \""+gitRepo+"\"}", 1)
			}
			yaml := "fraises:\n" + text
			if tc.git != "" {
				yaml = "git:\n" + indent(tc.git, 2) + yaml
			}
			cfg := mustParse(t, yaml)
			f := cfg.Fraises["x"]
			if f.Config != cfg {
				t.Errorf("Fraise.Config is not the configuration it was loaded in")
			}
			if got := f.ForgeKind(); got != tc.want {
				t.Errorf("ForgeKind() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSecretValues lists every secret the configuration holds, longest
// first, including the passwords inside URLs.
func TestSecretValues(t *testing.T) {
	yaml := `git:
  github: {secret: gh-secret-0123456789, secrets: [gh-old-secret-0123456789]}
  gitlab: {secret: gl-token-0123456789, secret_file: /run/gl}
server:
  api_token: api-token-0123456789
state:
  url: "postgres://fraisier:st%40te-pw@db/fraisier"
fraises:
  api:
    type: api
    repository: https://github.com/acme/api.git
    webhook: {secret: api-only-0123456789}
    environments:
      production:
        branch: main
        app_path: /srv/api
        database: {tool: alembic, url: "postgres://api:db-pw@db/api"}
`
	cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: func(string) ([]byte, error) {
		return []byte("gl-file-token-0123456789\n"), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"postgres://fraisier:st%40te-pw@db/fraisier", "postgres://api:db-pw@db/api",
		"gh-old-secret-0123456789", "gl-file-token-0123456789",
		"gh-secret-0123456789", "api-token-0123456789", "gl-token-0123456789", "api-only-0123456789",
		"st%40te-pw", "st@te-pw", "db-pw",
	}
	if diff := cmp.Diff(want, cfg.SecretValues()); diff != "" {
		t.Errorf("SecretValues (-want +got):\n%s", diff)
	}
}

// TestWarnings pins what loads but is reported to the operator:
// deliveries accepted without a signature, a fraise on a forge that is not
// configured, and GitLab tokens that a signing key makes useless.
func TestWarnings(t *testing.T) {
	yaml := `git:
  gitea:
    secret: gitea-secret-0123456789
    allow_unsigned: {fraises: [mirror], from: [10.0.0.0/8]}
  gitlab:
    secrets: [gitlab-token-0123456789, whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3]
fraises:
  api:
    type: api
    repository: https://github.com/acme/api.git
    environments:
      production: {branch: main, app_path: /srv/api}
  mirror:
    type: api
    forge: gitea
    repository: acme/api
    environments:
      production: {branch: main, git_repo: /srv/git/api.git, app_path: /srv/mirror}
`
	cfg := mustParse(t, yaml)
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		"fraises.yaml:4:5: git.gitea.allow_unsigned: gitea deliveries without a signature are accepted for mirror and from 10.0.0.0/8: whoever can send one can deploy (hint: use it on a private network only; a secret is always safer)",
		"fraises.yaml:5:3: git.gitlab: GitLab has a signing key (whsec_…) and a plain token: while a signing key is configured, deliveries must be signed and the token is never accepted (hint: remove the token once every GitLab webhook has its signing token)",
		"fraises.yaml:8:3: fraises.api: api is on github, which has no git section: no webhook deploys it (hint: add git.github, or set forge: to the forge that delivers its pushes)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
