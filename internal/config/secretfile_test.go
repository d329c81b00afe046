package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const secretValue = "s3cr3t-value-never-printed"

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestSecretFiles(t *testing.T) {
	creds := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(creds, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	abs := write("abs-secret", secretValue+"\n")
	write("github-webhook", secretValue+"\n")
	write("crlf", secretValue+"\r\n")
	write("two-newlines", secretValue+"\n\n")
	write("empty", "\n")
	write("db-url", "mysql://user:"+secretValue+"@db/x\n")
	write("big", strings.Repeat("x", maxSecretFile+1))
	write("short", "fifteen-bytes-x\n")

	withCreds := mapEnv(map[string]string{"CREDENTIALS_DIRECTORY": creds})
	noCreds := mapEnv(nil)

	cases := []struct {
		name     string
		yaml     string
		env      func(string) (string, bool)
		want     Secret   // the forge's file secret when it loads
		problems []string // "path: message" of each problem
	}{
		{name: "absolute", yaml: "git:\n  github: {secret_file: " + abs + "}\n", env: noCreds, want: secretValue},
		{name: "relative in CREDENTIALS_DIRECTORY", yaml: "git:\n  github: {secret_file: github-webhook}\n", env: withCreds, want: secretValue},
		{name: "one CRLF stripped", yaml: "git:\n  github: {secret_file: crlf}\n", env: withCreds, want: secretValue},
		{name: "only one newline stripped", yaml: "git:\n  github: {secret_file: two-newlines}\n", env: withCreds, want: secretValue + "\n"},
		{name: "relative without CREDENTIALS_DIRECTORY", yaml: "git:\n  github: {secret_file: github-webhook}\n", env: noCreds,
			problems: []string{"git.github.secret_file: github-webhook is a relative path and $CREDENTIALS_DIRECTORY is not set"}},
		{name: "relative leaving CREDENTIALS_DIRECTORY", yaml: "git:\n  github: {secret_file: ../etc/shadow}\n", env: withCreds,
			problems: []string{"git.github.secret_file: ../etc/shadow leaves $CREDENTIALS_DIRECTORY"}},
		{name: "missing file", yaml: "git:\n  github: {secret_file: nope}\n", env: withCreds,
			problems: []string{fmt.Sprintf("git.github.secret_file: read %s: no such file or directory", filepath.Join(creds, "nope"))}},
		{name: "empty file", yaml: "git:\n  github: {secret_file: empty}\n", env: withCreds,
			problems: []string{fmt.Sprintf("git.github.secret_file: %s is empty", filepath.Join(creds, "empty"))}},
		{name: "huge file", yaml: "git:\n  github: {secret_file: big}\n", env: withCreds,
			problems: []string{fmt.Sprintf("git.github.secret_file: %s is larger than 64 KiB; is it the right file?", filepath.Join(creds, "big"))}},
		{name: "short secret in a file", yaml: "git:\n  github: {secret_file: short}\n", env: withCreds,
			problems: []string{"git.github.secret_file: the secret is shorter than 16 bytes"}},
		{name: "short API token in a file", yaml: "git:\n  github: {secret_file: github-webhook}\nserver: {api_token_file: short}\n", env: withCreds,
			problems: []string{"server.api_token_file: the secret is shorter than 16 bytes"}},
		{name: "state url from a file is checked without quoting it", yaml: "git:\n  github: {secret: github-secret-0123456789}\nstate: {url_file: db-url}\n", env: withCreds, want: "",
			problems: []string{"state.url_file: the state URL must start with postgres:// or postgresql://"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("fraises.yaml", []byte(tc.yaml+apiWith(base)), Options{LookupEnv: tc.env})
			var got []string
			var cerr *Error
			if errors.As(err, &cerr) {
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
				if strings.Contains(err.Error(), secretValue) {
					t.Errorf("the error holds the secret: %v", err)
				}
				return
			}
			if got := cfg.Git.GitHub.FileSecret; got != tc.want {
				t.Errorf("file secret = %q, want %q", got.Reveal(), tc.want.Reveal())
			}
			assertNoSecret(t, cfg)
		})
	}
}

// assertNoSecret checks every way a configuration is printed.
func assertNoSecret(t *testing.T, cfg *Config) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for what, out := range map[string]string{
		"JSON": string(b),
		"%v":   fmt.Sprintf("%v", cfg.Git.GitHub),
		"%+v":  fmt.Sprintf("%+v", cfg.Git.GitHub),
		"%#v":  fmt.Sprintf("%#v", cfg.Git.GitHub),
		"%s":   fmt.Sprintf("%s", cfg.Git.GitHub.AcceptedSecrets()),
	} {
		if strings.Contains(out, secretValue) {
			t.Errorf("%s output holds the secret: %s", what, out)
		}
	}
}

func TestAcceptedSecrets(t *testing.T) {
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, "gh"), []byte("from-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := "git:\n  github:\n    secret: ${GH_SECRET}\n    secret_file: gh\n    secrets: [old-one-0123456789, \"${GH_SECRET}\"]\n" + apiWith(base)
	cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(map[string]string{"GH_SECRET": "from-env-0123456789", "CREDENTIALS_DIRECTORY": creds})})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Git.GitHub.AcceptedSecrets()
	want := []Secret{"from-env-0123456789", "from-file-0123456789", "old-one-0123456789"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accepted secrets (-want +got):\n%s", diff)
	}
	if cfg.Git.GitHub.SecretFile != filepath.Join(creds, "gh") {
		t.Errorf("secret_file = %q, want the resolved path", cfg.Git.GitHub.SecretFile)
	}
	var nilForge *Forge
	if nilForge.AcceptedSecrets() != nil {
		t.Error("a forge that is absent accepts secrets")
	}
}

func TestSecretIsRedacted(t *testing.T) {
	s := Secret(secretValue)
	b, err := json.Marshal(struct{ S Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for what, out := range map[string]string{
		"String": s.String(), "%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s),
		"%q": fmt.Sprintf("%q", s), "%#v": fmt.Sprintf("%#v", s), "JSON": string(b),
	} {
		if strings.Contains(out, secretValue) || !strings.Contains(out, "REDACTED") {
			t.Errorf("%s = %s, want it redacted", what, out)
		}
	}
	if s.Reveal() != secretValue {
		t.Error("Reveal does not return the secret")
	}
	if Secret("").String() != "" {
		t.Error("an empty secret should print as empty, so that unset is visible")
	}
}

// TestSecretNotInTypeErrors checks that a literal secret written with the
// wrong type is not echoed in the hint.
func TestSecretNotInTypeErrors(t *testing.T) {
	yaml := "git:\n  github: {secret: 271828182845}\n" + apiWith(base)
	_, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil)})
	if err == nil || strings.Contains(err.Error(), "271828182845") {
		t.Errorf("got %v, want an error that does not quote the value", err)
	}
}

// TestCredentialsDirOutsideTheUnit reads a credential Prefix_X from the
// directory's file X when $CREDENTIALS_DIRECTORY is not set, and only
// then: under the unit, systemd's copy wins.
func TestCredentialsDirOutsideTheUnit(t *testing.T) {
	dir, unitView := t.TempDir(), t.TempDir()
	for p, v := range map[string]string{
		filepath.Join(dir, "github"):               secretValue + "\n",
		filepath.Join(unitView, "fraisier_github"): "under-the-unit-0123456789\n",
	} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	creds := CredentialsDir{Dir: dir, Prefix: "fraisier"}
	cases := []struct {
		name, file string
		env        map[string]string
		want       Secret
		problem    string
	}{
		{name: "outside the unit", file: "fraisier_github", want: secretValue},
		{name: "under the unit", file: "fraisier_github", env: map[string]string{"CREDENTIALS_DIRECTORY": unitView}, want: "under-the-unit-0123456789"},
		{name: "another prefix", file: "github",
			problem: "git.github.secret_file: github is a relative path and $CREDENTIALS_DIRECTORY is not set"},
		{name: "leaving the directory", file: "fraisier_../x",
			problem: "git.github.secret_file: fraisier_../x is a relative path and $CREDENTIALS_DIRECTORY is not set"},
		{name: "not there", file: "fraisier_gitlab",
			problem: fmt.Sprintf("git.github.secret_file: read %s: no such file or directory", filepath.Join(dir, "gitlab"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "git:\n  github: {secret_file: \"" + tc.file + "\"}\n" + apiWith(base)
			cfg, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(tc.env), Credentials: creds})
			if tc.problem != "" {
				var cerr *Error
				if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Path+": "+cerr.Problems[0].Message != tc.problem {
					t.Fatalf("err = %v, want the one problem %q", err, tc.problem)
				}
				if !strings.Contains(cerr.Problems[0].Hint, "name a file X of "+dir+" as fraisier_X") && !strings.Contains(tc.problem, "no such file") {
					t.Errorf("hint %q does not say where the credentials lie", cerr.Problems[0].Hint)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Git.GitHub.FileSecret; got != tc.want {
				t.Errorf("file secret = %q, want %q", got.Reveal(), tc.want.Reveal())
			}
		})
	}
}
