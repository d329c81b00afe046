package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestSecretValuesURLPasswords: a password in a database URL or the state
// URL is scrubbed wherever the URL keeps it (the userinfo, a password
// query parameter, which libpq reads) and in both spellings a tool may
// print it: as written in the URL, escapes and all, and decoded.
func TestSecretValuesURLPasswords(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{"userinfo", "postgres://app:plain-pw@db/app", []string{"plain-pw"}},
		{"userinfo escaped as Go would", "postgres://app:st%40te-pw@db/app", []string{"st%40te-pw", "st@te-pw"}},
		{"userinfo escaped where Go would not", "postgres://app:p%41ss%7eword@db/app", []string{"p%41ss%7eword", "pAss~word"}},
		{"userinfo in lower-case hex", "postgres://app:a%2fb%3fc@db/app", []string{"a%2fb%3fc", "a/b?c"}},
		{"userinfo, several hosts", "postgresql://app:multi%21pw@h1:5432,h2:5433/app", []string{"multi%21pw", "multi!pw"}},
		{"userinfo, SQLAlchemy driver", "postgresql+psycopg://app:alc%23pw@db/app", []string{"alc%23pw", "alc#pw"}},
		{"query parameter", "postgres://app@db/app?sslmode=require&password=query-pw", []string{"query-pw"}},
		{"query parameter escaped", "postgres://app@db/app?password=q%26uery%3Dpw", []string{"q%26uery%3Dpw", "q&uery=pw"}},
		{"query parameter with a plus", "postgres:///app?host=/run/pg&password=plus+pw", []string{"plus+pw", "plus pw"}},
		{"query parameter, name escaped", "postgres://app@db/app?pass%77ord=named-pw", []string{"named-pw"}},
		{"both places", "postgres://app:user-pw@db/app?password=param-pw", []string{"user-pw", "param-pw"}},
		{"userinfo with a broken escape", "postgres://app:bad%zz-pw@db/app", []string{"bad%zz-pw"}},
		{"another database", "mysql://app:my%24ql@db/app", []string{"my%24ql", "my$ql"}},
	}
	for _, where := range []string{"state", "database"} {
		for _, tt := range tests {
			postgres := strings.HasPrefix(tt.url, "postgres://") || strings.HasPrefix(tt.url, "postgresql://")
			if where == "state" && !postgres {
				continue // the state URL is PostgreSQL's: another is refused before any scrubbing
			}
			t.Run(where+"/"+tt.name, func(t *testing.T) {
				state, db := "postgres://fraisier@db/fraisier", "sqlite:////srv/api/app.db"
				if where == "state" {
					state = tt.url
				} else {
					db = tt.url
				}
				yaml := fmt.Sprintf(`state:
  url: %q
fraises:
  api:
    type: api
    repository: https://github.com/acme/api.git
    environments:
      production:
        branch: main
        app_path: /srv/api
        database: {tool: alembic, url: %q}
`, state, db)
				cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil)})
				if err != nil {
					t.Fatal(err)
				}
				got := cfg.SecretValues()
				for _, w := range append([]string{tt.url}, tt.want...) {
					if !slices.Contains(got, w) {
						t.Errorf("SecretValues() = %q, missing %q", got, w)
					}
				}
			})
		}
	}
}
