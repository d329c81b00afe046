package git

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGitEnvironment: git, and the ssh command it runs to reach a remote,
// get what reaching the remote takes (the ssh agent, the proxy, the
// certificate authority) and none of fraisier's own secrets. The ssh
// command is a script that writes down its environment and fails.
func TestGitEnvironment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dump := filepath.Join(dir, "env")
	script := filepath.Join(dir, "ssh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv > "+dump+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_SSH_COMMAND", script)
	t.Setenv("SSH_AUTH_SOCK", "/run/agent.sock")
	t.Setenv("https_proxy", "http://proxy.invalid:3128")
	t.Setenv("NO_PROXY", "localhost")
	t.Setenv("SSL_CERT_FILE", "/etc/ssl/private-ca.pem")
	t.Setenv("GITHUB_WEBHOOK_SECRET", "sec-webhook-0123456789")
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/fraisier.service")
	t.Setenv("FRAISIER_STATE", "postgres://fraisier:sec-state-pass@db/fraisier")

	r, err := OpenMirror(ctx, filepath.Join(dir, "m.git"), "ssh://git@example.invalid/repo.git", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(ctx); err == nil {
		t.Fatal("Fetch through a failing ssh succeeded")
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("the ssh command did not run: %v", err)
	}
	env := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, want := range []string{"SSH_AUTH_SOCK=/run/agent.sock", "https_proxy=http://proxy.invalid:3128", "NO_PROXY=localhost", "SSL_CERT_FILE=/etc/ssl/private-ca.pem"} {
		if !slices.Contains(env, want) {
			t.Errorf("git's ssh lacks %s", want)
		}
	}
	for _, secret := range []string{"sec-webhook-0123456789", "/run/credentials/fraisier.service", "sec-state-pass"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("git's ssh got %s:\n%s", secret, b)
		}
	}
}
