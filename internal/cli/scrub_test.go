package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestStepOutputScrubbedEndToEnd: an install step prints a webhook secret
// (given to fraisier as ${VAR}), split across two writes with a pause
// between, and the database URL; a second deployment's install fails with
// the secret as its last line, which becomes the deployment's error. No
// configured secret is then anywhere in the state database's files, in
// /api/deployments/N, in show (text and JSON), logs, history or deploy's
// own output; the marker stands where they were.
func TestStepOutputScrubbedEndToEnd(t *testing.T) {
	bin, err := exec.LookPath("fraisier")
	if err != nil {
		t.Fatalf("fraisier is not on PATH (testscript.Main puts it there): %v", err)
	}
	suffix := testenv.RandomHex(4)
	secrets := map[string]string{
		"github webhook secret (${VAR})": "sec-scrub-github-" + suffix,
		"fraise webhook secret":          "sec-scrub-fraise-" + suffix,
		"api token":                      "sec-scrub-apitoken-" + suffix,
		"database password":              "sec-scrub-dbpass-" + suffix,
	}
	gh, dbURL := secrets["github webhook secret (${VAR})"], "postgres://app:"+secrets["database password"]+"@127.0.0.1:1/app"

	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	origin := repo.Dir
	commit := func(install string) {
		repo.Write("install.sh", install)
		repo.Commit("install")
	}
	commit(fmt.Sprintf("printf 'webhook secret: %%s' '%s'\nsleep 0.4\nprintf '%%s\\n' '%s'\necho 'database: %s'\n", gh[:10], gh[10:], dbURL))

	port := testenv.FreePort(t)
	cfg := filepath.Join(root, "fraises.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`git:
  github: {secret: "${GITHUB_WEBHOOK_SECRET}"}
server:
  listen: 127.0.0.1:%d
  api_token: %s
fraises:
  hello:
    type: api
    repository: acme/hello
    webhook: {secret: %s}
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        install: {command: [sh, install.sh]}
        database:
          tool: command
          url: %q
          up: [sh, -c, 'echo "migrating $$FRAISIER_DATABASE_URL"']
          current: [echo, "1"]
`, port, secrets["api token"], secrets["fraise webhook secret"], origin, filepath.Join(root, "srv", "hello"), dbURL)), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(root, "state", "fraisier.db")
	env := append(testenv.GitEnv(), "HOME="+root, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE="+state, "GITHUB_WEBHOOK_SECRET="+gh, "NO_COLOR=1")

	outputs := map[string]string{}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatalf("fraisier %s: %v", strings.Join(args, " "), err)
		}
		outputs["fraisier "+strings.Join(args, " ")] = string(out)
		return string(out)
	}
	if out := run("deploy", "hello", "production"); !strings.Contains(out, "deployment 1: succeeded") {
		t.Fatalf("first deployment:\n%s", out)
	}
	commit(fmt.Sprintf("echo building\necho 'token %s'\nexit 1\n", gh))
	if out := run("deploy", "hello", "production", "--json"); !strings.Contains(out, `"status": "failed"`) {
		t.Fatalf("second deployment:\n%s", out)
	}
	for _, args := range [][]string{{"show", "1"}, {"show", "2"}, {"show", "1", "--json"}, {"show", "2", "--json"},
		{"logs", "1"}, {"logs", "2"}, {"history", "--json"}} {
		run(args...)
	}
	if logs := outputs["fraisier logs 1"]; !strings.Contains(logs, "webhook secret: "+deploy.Redacted) || !strings.Contains(logs, "database: "+deploy.Redacted) {
		t.Errorf("logs 1 lacks the install's output with the secrets replaced:\n%s", logs)
	}

	serve := exec.Command(bin, "serve")
	serve.Env = env
	var serveOut testenv.SyncBuffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+secrets["api token"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if code, _ := get("/ready"); code == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("fraisier serve not ready in 30s:\n%s", serveOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range []string{"1", "2"} {
		code, body := get("/api/deployments/" + id)
		if code != http.StatusOK || !strings.Contains(body, deploy.Redacted) {
			t.Errorf("GET /api/deployments/%s: %d %s", id, code, body)
		}
		outputs["GET /api/deployments/"+id] = body
	}
	for _, f := range []string{state, state + "-wal", state + "-shm"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		outputs[f] = string(b)
	}
	if !bytes.Contains([]byte(outputs[state]+outputs[state+"-wal"]), []byte("webhook secret: ")) {
		t.Errorf("the state database does not hold the install's output: the search proves nothing")
	}
	for what, text := range outputs {
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the %s", what, name)
			}
		}
	}
}
