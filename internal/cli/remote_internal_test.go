package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoteFlags: --remote wants fraisier serve's URL, never plain http
// to another host (the token would cross the network in clear), and a
// token from --token-file or $FRAISIER_TOKEN; no error repeats a password
// or a token.
func TestRemoteFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("fraisier_from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envToken := func(v string) Env {
		return Env{Lookup: func(k string) (string, bool) { return v, k == TokenEnv && v != "" }}
	}
	for _, tc := range []struct {
		name  string
		flags remoteFlags
		env   Env
		token string // the token used, or "" when refused
		says  string
	}{
		{"https and the environment", remoteFlags{url: "https://deploy.example.com/"}, envToken("fraisier_env"), "fraisier_env", ""},
		{"a token file wins", remoteFlags{url: "https://deploy.example.com", tokenFile: file}, envToken("fraisier_env"), "fraisier_from-file", ""},
		{"http on loopback", remoteFlags{url: "http://127.0.0.1:8080"}, envToken("t"), "t", ""},
		{"http on localhost", remoteFlags{url: "http://localhost:8080"}, envToken("t"), "t", ""},
		{"http to another host", remoteFlags{url: "http://deploy.example.com"}, envToken("t"), "", "https://"},
		{"no token", remoteFlags{url: "https://deploy.example.com"}, envToken(""), "", "needs a token"},
		{"a missing token file", remoteFlags{url: "https://deploy.example.com", tokenFile: filepath.Join(dir, "nope")}, envToken(""), "", "--token-file"},
		{"not a URL of serve", remoteFlags{url: "ftp://deploy.example.com"}, envToken("t"), "", "want the URL"},
		{"a password in the URL", remoteFlags{url: "https://u:hunter2@deploy.example.com"}, envToken("t"), "", "want the URL"},
	} {
		a := &app{env: tc.env}
		c, err := a.remote(tc.flags)
		var ue *usageError
		switch {
		case tc.token != "" && (err != nil || c.token != tc.token):
			t.Errorf("%s: %v, token %q, want %q", tc.name, err, c.tokenOr(), tc.token)
		case tc.token == "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("%s: %v, want a usage error saying %q", tc.name, err, tc.says)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%s: the error repeats the password: %v", tc.name, err)
		}
	}
	if _, err := (remoteFlags{tokenFile: file}).local(); err == nil {
		t.Error("--token-file without --remote accepted")
	}
}

func (c *remoteClient) tokenOr() string {
	if c == nil {
		return ""
	}
	return c.token
}
