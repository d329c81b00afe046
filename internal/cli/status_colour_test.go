package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/store"
)

// TestStatusColour checks that status shows the colour a blue/green
// target's last deployment left serving, in its SERVES column and as
// restart and colour in --json, and no such column when no target has one.
func TestStatusColour(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, "state.db")
	cfg := filepath.Join(root, "fraises.yaml")
	yaml := `fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: /srv/git/hello.git
        app_path: /srv/hello
        restart: blue_green
        blue_green:
          unit: hello@.service
          blue: 127.0.0.1:8001
          green: 127.0.0.1:8002
          caddy: {id: hello}
        health_check: {url: "http://127.0.0.1:8001/health"}
      staging:
        branch: dev
        git_repo: /srv/git/hello.git
        app_path: /srv/hello-staging
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	status := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := cli.Env{Lookup: func(string) (string, bool) { return "", false }, Euid: os.Geteuid()}
		argv := append([]string{"status", "--offline", "--config", cfg, "--state", state, "--no-color"}, args...)
		if code := cli.Run(context.Background(), argv, cli.Streams{Out: &out, Err: &errOut}, env); code != 0 {
			t.Fatalf("status exit %d: %s", code, errOut.String())
		}
		return out.String()
	}
	if out := status(); regexp.MustCompile(`SERVES`).MatchString(out) {
		t.Fatalf("a SERVES column with no colour recorded:\n%s", out)
	}

	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: state})
	if err != nil {
		t.Fatal(err)
	}
	prod := store.Target{Fraise: "hello", Environment: "production"}
	id, err := db.StartDeployment(ctx, store.Deployment{Target: prod, Trigger: store.TriggerCLI})
	if err == nil {
		err = db.SetDeploymentRestart(ctx, id, "blue_green", "green")
	}
	if err == nil {
		err = db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	out := status()
	if !regexp.MustCompile(`(?m)^FRAISE +ENVIRONMENT +STATUS +SHA +RELEASE +SERVES +DEPLOYED`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^hello +production +succeeded +- +- +green `).MatchString(out) ||
		!regexp.MustCompile(`(?m)^hello +staging +never deployed +- +- +- `).MatchString(out) {
		t.Fatalf("status:\n%s", out)
	}
	var js struct {
		Targets []struct {
			Environment string `json:"environment"`
			Restart     string `json:"restart"`
			Colour      string `json:"colour"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(status("hello", "production", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Targets) != 1 || js.Targets[0].Restart != "blue_green" || js.Targets[0].Colour != "green" {
		t.Fatalf("status --json: %+v", js)
	}
}
