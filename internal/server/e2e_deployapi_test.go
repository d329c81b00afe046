package server_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// run runs one fraisier command to completion with extra environment and
// returns its stdout, stderr and exit code.
func (f *e2e) run(extraEnv []string, args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	cmd := exec.Command(f.bin, args...)
	cmd.Env = append(append([]string{}, f.env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	code = testenv.Run(f.t, cmd, 90*time.Second).ExitCode()
	f.t.Logf("$ fraisier %s  (exit %d)\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// token creates an API token with scopes through the CLI and returns it.
func (f *e2e) token(name string, scopes ...string) string {
	f.t.Helper()
	args := []string{"tokens", "create", name}
	for _, s := range scopes {
		args = append(args, "--scope", s)
	}
	out, _, code := f.run(nil, args...)
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, store.TokenPrefix) {
		f.t.Fatalf("tokens create %s: exit %d, %q", name, code, out)
	}
	return tok
}

// TestE2EDeployAPI: CI's path. A token scoped to hello/production drives
// fraisier serve with fraisier deploy --remote and follows the deployment
// to success, then rolls back with fraisier rollback --remote; a token of
// another environment is refused 403, a revoked one 401; a read token
// shows status --remote. No token ever reaches serve's log, the state
// database's file or the CLI's output.
func TestE2EDeployAPI(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	first := f.push("main", 1)[0]
	srv := f.serve()

	ci := f.token("ci", "deploy:hello/production", "rollback:hello/production")
	other := f.token("other", "deploy:hello/staging")
	gone := f.token("gone", "deploy:hello/*")
	reader := f.token("reader", "read")
	if _, _, code := f.run(nil, "tokens", "revoke", "gone"); code != 0 {
		t.Fatalf("tokens revoke: exit %d", code)
	}
	tokenFile := filepath.Join(f.root, "ci.token")
	if err := os.WriteFile(tokenFile, []byte(ci+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var outputs []string
	remote := func(env []string, args ...string) (string, int) {
		out, errOut, code := f.run(env, args...)
		outputs = append(outputs, out, errOut)
		return out + errOut, code
	}

	out, code := remote(nil, "deploy", "hello", "production", "--remote", f.base(), "--token-file", tokenFile)
	if code != 0 {
		t.Fatalf("deploy --remote: exit %d\n%s", code, out)
	}
	for _, want := range []string{"queued on " + f.base(), "→ fetch … ok", "→ switch … ok", "→ health … ok", "succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy --remote printed no %q:\n%s", want, out)
		}
	}
	f.waitDeployed("production", first, version("main", 1), 30*time.Second)
	ds := f.deployments("production")
	if d := ds[len(ds)-1]; d.Trigger != store.TriggerAPI || d.Actor != "ci" || d.Status != store.StatusSucceeded || d.NewSHA != first {
		t.Errorf("the API's deployment: %+v; want trigger api, actor ci, succeeded at %s", d, first)
	}

	// A second commit through the API, then back to the first.
	second := f.push("main", 1)[0]
	if out, code := remote([]string{"FRAISIER_TOKEN=" + ci}, "deploy", "hello", "production", "--remote", f.base(), "--json"); code != 0 || !strings.Contains(out, `"status": "succeeded"`) {
		t.Fatalf("deploy --remote --json: exit %d\n%s", code, out)
	}
	f.waitDeployed("production", second, version("main", 2), 30*time.Second)
	out, code = remote([]string{"FRAISIER_TOKEN=" + ci}, "rollback", "hello", "production", "--remote", f.base())
	if code != 0 || !strings.Contains(out, "→ switch … ok") {
		t.Fatalf("rollback --remote: exit %d\n%s", code, out)
	}
	f.waitDeployed("production", first, version("main", 1), 30*time.Second)
	ds = f.deployments("production")
	if d := ds[len(ds)-1]; d.Trigger != store.TriggerRollback || d.Actor != "ci via api" || d.Status != store.StatusSucceeded {
		t.Errorf("the API's rollback: %+v", d)
	}

	for _, tc := range []struct {
		name, token, says string
		code              int
	}{
		{"another environment's token", other, "403", 1},
		{"a revoked token", gone, "revoked", 1},
		{"no token", "", "needs a token", 2},
	} {
		out, code := remote([]string{"FRAISIER_TOKEN=" + tc.token}, "deploy", "hello", "production", "--remote", f.base())
		if code != tc.code || !strings.Contains(out, tc.says) {
			t.Errorf("%s: deploy --remote: exit %d, want %d saying %q:\n%s", tc.name, code, tc.code, tc.says, out)
		}
	}
	if n := len(f.deployments("production")); n != len(ds) {
		t.Errorf("refused requests deployed: %d deployments, want %d", n, len(ds))
	}
	// status reads the read API (here open to this host, as serve has no
	// server.api_token; the handler tests check the read scope with one).
	if out, code := remote([]string{"FRAISIER_TOKEN=" + reader}, "status", "hello", "production", "--remote", f.base()); code != 0 || !strings.Contains(out, "succeeded") {
		t.Errorf("status --remote with a read token: exit %d\n%s", code, out)
	}

	list, _, code := f.run(nil, "tokens", "list", "--json")
	if code != 0 || !strings.Contains(list, `"name": "ci"`) {
		t.Fatalf("tokens list: exit %d\n%s", code, list)
	}
	outputs = append(outputs, list)

	// The tokens appear nowhere but where the test put them.
	var db []byte
	for _, p := range []string{f.dbPath, f.dbPath + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		db = append(db, b...)
	}
	for name, tok := range map[string]string{"ci": ci, "other": other, "gone": gone, "reader": reader} {
		secret := strings.TrimPrefix(tok, store.TokenPrefix)
		if strings.Contains(srv.Out.String(), secret) {
			t.Errorf("token %s is in serve's log", name)
		}
		if bytes.Contains(db, []byte(secret)) {
			t.Errorf("token %s is in the state database's file", name)
		}
		for _, o := range outputs {
			if strings.Contains(o, secret) {
				t.Errorf("token %s is in the output of a command that did not create it", name)
			}
		}
	}
	if !logHas(srv, "api", "action", "deploy", "token", "ci") {
		t.Errorf("serve logged no API call of token ci:\n%s", srv.Out.String())
	}
}
