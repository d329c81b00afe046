package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/cli"
)

// installPolkit runs fraisier install polkit with cfg as fraises.yaml and
// returns its exit code, standard output and standard error.
func installPolkit(t *testing.T, cfg string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := cli.Env{Lookup: func(string) (string, bool) { return "", false }, Euid: os.Geteuid()}
	argv := append([]string{"--config", cfg, "install", "polkit"}, args...)
	code := cli.Run(context.Background(), argv, cli.Streams{Out: &out, Err: &errOut}, env)
	t.Logf("fraisier install polkit %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

const polkitConfig = `fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: /srv/git/hello
        app_path: /srv/hello
        systemd_service: [hello, hello-worker@1]
      preview:
        branch: preview
        git_repo: /srv/git/hello
        app_path: /srv/hello-preview
        scope: user
        systemd_service: hello-preview
  reports:
    type: scheduled
    environments:
      production:
        branch: main
        git_repo: /srv/git/reports
        app_path: /srv/reports
        jobs:
          - name: nightly
            schedule: "0 3 * * *"
            command: [./run]
`

// TestInstallPolkit writes the rule, leaves an unchanged one alone, names
// what the model leaves out, and keeps the installed rule when the
// configuration turns invalid (exit 3).
func TestInstallPolkit(t *testing.T) {
	dir := t.TempDir()
	cfg, rule := filepath.Join(dir, "fraises.yaml"), filepath.Join(dir, "rules.d", "50-fraisier.rules")
	if err := os.WriteFile(cfg, []byte(polkitConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := installPolkit(t, cfg, "--output", rule); code != cli.ExitError || !strings.Contains(errOut, "is polkit installed?") {
		t.Errorf("no rules directory: exit %d, want %d and a hint", code, cli.ExitError)
	}
	if err := os.Mkdir(filepath.Dir(rule), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := installPolkit(t, cfg, "--output", rule)
	if code != cli.ExitOK || !strings.HasPrefix(out, "wrote "+rule+": fraisier may start, restart, reload, stop, reset-failed hello-worker@1.service, hello.service\n") {
		t.Errorf("exit %d, %q", code, out)
	}
	if !strings.Contains(errOut, "warning: reports/production (scope: system): fraisier-reports-production-nightly.service, fraisier-reports-production-nightly.timer not in the rule") {
		t.Errorf("the scheduled environment is not named on stderr: %q", errOut)
	}
	written, err := os.ReadFile(rule)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"hello.service"`, `"hello-worker@1.service"`, `var user = "fraisier";`} {
		if !bytes.Contains(written, []byte(want)) {
			t.Errorf("rule lacks %s", want)
		}
	}
	if bytes.Contains(written, []byte("hello-preview")) || bytes.Contains(written, []byte("nightly")) {
		t.Errorf("rule grants a user-scope or job unit:\n%s", written)
	}
	if code, out, _ := installPolkit(t, cfg, "--output", rule); code != cli.ExitOK || !strings.HasPrefix(out, "unchanged ") {
		t.Errorf("second run: exit %d, %q, want unchanged", code, out)
	}
	if code, out, _ := installPolkit(t, cfg, "--print", "--user", "deploy"); code != cli.ExitOK || !strings.Contains(out, `var user = "deploy";`) {
		t.Errorf("--print --user deploy: exit %d, %q", code, out)
	}

	if err := os.WriteFile(cfg, []byte(strings.Replace(polkitConfig, "type: api", "type: apy", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := installPolkit(t, cfg, "--output", rule); code != cli.ExitConfig || !strings.Contains(errOut, "apy") {
		t.Errorf("invalid configuration: exit %d, want %d and its problem", code, cli.ExitConfig)
	}
	if after, err := os.ReadFile(rule); err != nil || !bytes.Equal(after, written) {
		t.Errorf("an invalid configuration changed the installed rule (%v)", err)
	}
	if code, _, errOut := installPolkit(t, cfg, "--print", "--user", `x"); polkit.addRule(`); code != cli.ExitUsage || !strings.Contains(errOut, "invalid user name") {
		t.Errorf("hostile --user: exit %d, want %d", code, cli.ExitUsage)
	}
}

// TestInstallUsage: install alone, or polkit with an argument, is a usage
// error (exit 2) that says what to run.
func TestInstallUsage(t *testing.T) {
	for _, args := range [][]string{{"install"}, {"install", "polkit", "extra"}} {
		var out, errOut bytes.Buffer
		env := cli.Env{Lookup: func(string) (string, bool) { return "", false }, Euid: os.Geteuid()}
		if code := cli.Run(context.Background(), args, cli.Streams{Out: &out, Err: &errOut}, env); code != cli.ExitUsage {
			t.Errorf("fraisier %s: exit %d, want %d (%s)", strings.Join(args, " "), code, cli.ExitUsage, errOut.String())
		}
		t.Logf("fraisier %s: %s", strings.Join(args, " "), errOut.String())
	}
}
