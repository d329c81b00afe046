package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// TestSecretsStaySecret runs the real fraisier binary with secrets in
// fraises.yaml every way the file takes them (${VAR}, *_file, literal),
// an API token, and a database URL with a password: serve receives a
// signed push (and forged ones: the secret's bytes as the signature, a
// token one byte off, the secret as a signature), deploys it, then every read
// command runs with --json. Every byte of stdout, stderr, the server's
// log, the state database and its -wal and -shm files is searched for
// every secret, and for its hex and base64 forms: none appears.
func TestSecretsStaySecret(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	root := t.TempDir()
	ns := testenv.RandomHex(4)
	secrets := map[string]string{
		"github (${VAR})":        "sec-gh-env-" + ns,
		"gitlab (secret_file)":   "sec-gl-file-" + ns,
		"gitea (literal)":        "sec-gitea-lit-" + ns,
		"fraise webhook secret":  "sec-fraise-" + ns,
		"api token":              "sec-api-token-" + ns,
		"database password":      "sec-dbpass-" + ns,
		"database url file pass": "sec-dburlfile-" + ns,
	}
	repo := testenv.NewOrigin(t, root)
	origin := repo.Dir
	repo.Write("VERSION", "1\n")
	sha := repo.Commit("v1")

	glFile := filepath.Join(root, "gitlab-secret")
	dbURLFile := filepath.Join(root, "db-url")
	if err := os.WriteFile(glFile, []byte(secrets["gitlab (secret_file)"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dbURLFile, []byte("postgres://app:"+secrets["database url file pass"]+"@127.0.0.1:1/app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	cfgPath := filepath.Join(root, "fraises.yaml")
	dbPath := filepath.Join(root, "state", "fraisier.db")
	cfg := fmt.Sprintf(`git:
  github: {secret: "${SECRETS_GH}"}
  gitlab: {secret_file: %s}
  gitea: {secret: %s}
server:
  listen: 127.0.0.1:%d
  api_token: %s
fraises:
  hello:
    type: api
    repository: acme/hello
    forge: github
    webhook: {secret: %s}
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        install: {command: ["true"]}
        database:
          tool: command
          url: "postgres://app:%s@127.0.0.1:1/app"
          up: ["true"]
          current: [echo, "1"]
      staging:
        branch: staging
        git_repo: %s
        app_path: %s
        database: {tool: command, url_file: %s, up: ["true"], current: [echo, "1"]}
`, glFile, secrets["gitea (literal)"], port, secrets["api token"], secrets["fraise webhook secret"],
		origin, filepath.Join(root, "srv", "hello"), secrets["database password"],
		origin, filepath.Join(root, "srv", "hello-staging"), dbURLFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+root, "GIT_CONFIG_NOSYSTEM=1", "FRAISIER_CONFIG="+cfgPath, "FRAISIER_STATE="+dbPath,
		"SECRETS_GH="+secrets["github (${VAR})"], "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=")

	var outputs []output
	collect := func(name, text string) { outputs = append(outputs, output{name, text}) }
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		collect("fraisier "+strings.Join(args, " ")+" (stdout)", stdout.String())
		collect("fraisier "+strings.Join(args, " ")+" (stderr)", stderr.String())
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("fraisier %v: %v", args, err)
		}
		return stdout.String()
	}

	serve := testenv.StartProc(t, "fraisier serve", env, bin, "serve")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, serve, &http.Client{Timeout: 2 * time.Second}, base)

	push, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "before": strings.Repeat("0", 40), "after": sha,
		"repository": map[string]any{"full_name": "acme/hello"}, "sender": map[string]any{"login": "alice"}})
	sign := func(secret string, body []byte) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	post := func(path string, h map[string]string, body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		collect("answer to POST "+path, b.String()+fmt.Sprint(resp.Header))
		return resp.StatusCode
	}
	gh := secrets["github (${VAR})"]
	if st := post("/webhook", map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "push",
		"X-GitHub-Delivery": "sec-1", "X-Hub-Signature-256": sign(gh, push)}, push); st != 202 {
		t.Fatalf("signed push: %d", st)
	}
	// Forgeries that carry a secret where it does not belong.
	post("/webhook", map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "push",
		"X-GitHub-Delivery": "sec-2", "X-Hub-Signature-256": "sha256=" + hex.EncodeToString([]byte(gh))}, push)
	post("/webhook/gitlab", map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
		"X-Gitlab-Token": secrets["gitlab (secret_file)"] + "x"}, push)
	post("/webhook/gitea", map[string]string{"Content-Type": "application/json", "X-Gitea-Event": "push",
		"X-Gitea-Signature": hex.EncodeToString([]byte(secrets["gitea (literal)"]))}, push)
	for _, p := range []string{"/api/fraises", "/api/deployments", "/providers", "/ready", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, base+p, nil)
		req.Header.Set("Authorization", "Bearer "+secrets["api token"])
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		collect("GET "+p, b.String())
	}
	testenv.WaitFor(t, "the pushed commit to be deployed", 60*time.Second, func() bool {
		out := run("status", "hello", "production", "--json")
		return strings.Contains(out, sha) && !strings.Contains(out, `"running"`) && !strings.Contains(out, `"queued"`)
	})
	serve.Signal(t, syscall.SIGTERM)
	serve.Wait(t, 30*time.Second)
	collect("fraisier serve log", serve.Out.String())

	run("deploy", "hello", "staging", "--json")
	run("deploy", "hello", "production", "--json", "--force")
	for _, args := range [][]string{
		{"history", "--json"}, {"status", "--json"}, {"show", "1", "--json"}, {"show", "2", "--json"}, {"webhooks", "--json"},
		{"list", "--json"}, {"config", "validate", "--json"}, {"config", "validate"}, {"stats", "--json"}, {"logs", "1", "--json"},
		{"releases", "hello", "production", "--json"}, {"jobs", "--json"}, {"version", "--json"},
	} {
		run(args...)
	}
	for _, f := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		collect(f, string(b))
	}

	total := searchSecrets(t, outputs, secrets)
	// What was searched is not empty: the database holds the delivery and
	// the deployment's steps, the server logged the delivery.
	db, _ := os.ReadFile(dbPath)
	wal, _ := os.ReadFile(dbPath + "-wal")
	if !bytes.Contains(append(db, wal...), []byte("sec-1")) || !strings.Contains(serve.Out.String(), "sec-1") {
		t.Errorf("the state database or the server log does not hold delivery sec-1: the search proves nothing")
	}
	t.Logf("searched %d outputs, %d bytes, for %d secrets", len(outputs), total, len(secrets))
}

// TestSecretsStaySecretPostgresState: the password of a PostgreSQL state
// database (state.url from the environment, and from state.url_file) never
// reaches an output: fraisier serve's log and answers, every read command's
// text and JSON, and the errors when the server cannot be reached.
func TestSecretsStaySecretPostgresState(t *testing.T) {
	ctx := context.Background()
	cluster, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrUnavailable) {
		testenv.Unavailable(t, "PostgreSQL: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	if err := cluster.CreateDatabase(ctx, "fraisier_state"); err != nil {
		t.Fatal(err)
	}
	bin := testenv.BuildFraisier(t)
	root := t.TempDir()
	ns := testenv.RandomHex(4)
	// Trust authentication ignores the password, so a recognisable one
	// can be given and then looked for.
	secrets := map[string]string{
		"state.url password (${VAR})":    "sec-pgstate-env-" + ns,
		"state.url_file password":        "sec-pgstate-file-" + ns,
		"unreachable state.url password": "sec-pgstate-down-" + ns,
	}
	urlFile := filepath.Join(root, "state-url")
	if err := os.WriteFile(urlFile, []byte(cluster.URL("fraisier_state", secrets["state.url_file password"])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	writeConfig := func(name, state string) string {
		p := filepath.Join(root, name)
		cfg := fmt.Sprintf(`git:
  github: {secret: gh-secret-0123456789}
server:
  listen: 127.0.0.1:%d
state:
  %s
fraises:
  hello:
    type: api
    repository: acme/hello
    forge: github
    environments:
      production: {branch: main, git_repo: %s, app_path: %s}
`, port, state, filepath.Join(root, "origin.git"), filepath.Join(root, "srv", "hello"))
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	byEnv := writeConfig("env.yaml", `url: "${STATE_URL}"`)
	byFile := writeConfig("file.yaml", "url_file: "+urlFile)
	down := writeConfig("down.yaml", `url: "postgres://postgres:`+secrets["unreachable state.url password"]+`@127.0.0.1:1/fraisier_state?connect_timeout=2"`)
	env := append(os.Environ(), "HOME="+root, "FRAISIER_STATE=", "FRAISIER_CONFIG=", "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=",
		"STATE_URL="+cluster.URL("fraisier_state", secrets["state.url password (${VAR})"]))

	var outputs []output
	collect := func(name, text string) { outputs = append(outputs, output{name, text}) }
	run := func(cfg string, args ...string) int {
		cmd := exec.Command(bin, append([]string{"--config", cfg}, args...)...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		name := filepath.Base(cfg) + ": fraisier " + strings.Join(args, " ")
		collect(name+" (stdout)", stdout.String())
		collect(name+" (stderr)", stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return 0
	}

	serve := testenv.StartProc(t, "fraisier serve", env, bin, "--config", byEnv, "serve")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, serve, &http.Client{Timeout: 2 * time.Second}, base)
	// A delivery the server records: a ping.
	ping := []byte(`{"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"full_name": "acme/hello"}, "sender": {"login": "alice"}}`)
	m := hmac.New(sha256.New, []byte("gh-secret-0123456789"))
	m.Write(ping)
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", bytes.NewReader(ping))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "pg-sec-1")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed ping: %d %s", resp.StatusCode, b.String())
	}
	collect("answer to the ping", b.String())
	for _, p := range []string{"/ready", "/health", "/providers", "/metrics", "/api/fraises", "/api/deployments"} {
		resp, err := httpClient.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		collect("GET "+p, b.String())
	}
	serve.Signal(t, syscall.SIGTERM)
	serve.Wait(t, 30*time.Second)
	collect("fraisier serve log", serve.Out.String())

	reads := [][]string{{"webhooks", "--json"}, {"webhooks"}, {"history", "--json"}, {"status", "--offline", "--json"}, {"stats", "--json"},
		{"list", "--json"}, {"list"}, {"config", "validate", "--json"}, {"config", "validate"}, {"version", "--json"}}
	for _, cfg := range []string{byEnv, byFile} {
		for _, args := range reads {
			if code := run(cfg, args...); code != 0 {
				t.Errorf("%s: fraisier %v: exit %d", filepath.Base(cfg), args, code)
			}
		}
	}
	// The ping was recorded in PostgreSQL, read through both configurations:
	// the outputs searched are real.
	recorded := 0
	for _, o := range outputs {
		if strings.Contains(o.name, "webhooks --json") && strings.Contains(o.text, "pg-sec-1") {
			recorded++
		}
	}
	if recorded != 2 {
		t.Errorf("the ping was read back %d times through the two configurations, want 2: the search proves nothing", recorded)
	}
	// Unreachable: every command that needs the state says so, exit 4.
	for _, args := range [][]string{{"history"}, {"history", "--json"}, {"status", "--offline"}, {"webhooks", "--json"}, {"deploy", "hello", "production"}} {
		if code := run(down, args...); code != 4 {
			t.Errorf("fraisier %v with the state database unreachable: exit %d, want 4", args, code)
		}
	}
	downServe := testenv.StartProc(t, "fraisier serve (state unreachable)", env, bin, "--config", down, "serve")
	if code := downServe.Wait(t, 30*time.Second); code != 4 {
		t.Errorf("fraisier serve with the state database unreachable: exit %d, want 4", code)
	}
	collect("fraisier serve log (state unreachable)", downServe.Out.String())

	total := searchSecrets(t, outputs, secrets)
	t.Logf("searched %d outputs, %d bytes, for %d secrets", len(outputs), total, len(secrets))
}

// output is one text a test searches for secrets.
type output struct{ name, text string }

// searchSecrets fails t for every output that holds a secret, as is, in
// hex or in upper case, and returns how many bytes it searched.
func searchSecrets(t *testing.T, outputs []output, secrets map[string]string) int {
	t.Helper()
	total := 0
	for _, o := range outputs {
		total += len(o.text)
		for what, s := range secrets {
			for _, form := range []string{s, hex.EncodeToString([]byte(s)), strings.ToUpper(s)} {
				if i := strings.Index(o.text, form); i >= 0 {
					t.Errorf("%s shows the %s: …%s…", o.name, what, o.text[max(0, i-120):min(len(o.text), i+len(form)+40)])
				}
			}
		}
	}
	return total
}
