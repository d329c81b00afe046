package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
)

// TestInitPackagedCredential: as root, init's secret goes to the packaged
// unit's credentials directory, and the configuration names it as the
// credential that unit hands serve; loaded with $CREDENTIALS_DIRECTORY
// holding fraisier_<name>, as under the unit, it reads the secret.
func TestInitPackagedCredential(t *testing.T) {
	unit, err := os.ReadFile("../../packaging/systemd/fraisier.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nLoadCredential=fraisier:"+packagedCredentials+"\n") {
		t.Fatalf("fraisier.service no longer loads %s as the credentials fraisier_*: init's secret_file must follow it", packagedCredentials)
	}
	a := &app{env: Env{Euid: 0, Lookup: func(string) (string, bool) { return "", false }}}
	src := initSource{dir: t.TempDir(), remote: "https://github.com/acme/shop.git", branch: "main"}
	p, err := a.planInit(initOptions{scope: "system", publicURL: "https://h"}, src.remote, src)
	if err != nil {
		t.Fatal(err)
	}
	if p.SecretPath != packagedCredentials+"/shop" || p.SecretRef != "fraisier_shop" || p.Forge != forge.GitHub {
		t.Fatalf("secret %s named %s, forge %s", p.SecretPath, p.SecretRef, p.Forge)
	}
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, "fraisier_shop"), []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("fraises.yaml", p.renderConfig(), config.Options{LookupEnv: func(k string) (string, bool) {
		if k == "CREDENTIALS_DIRECTORY" {
			return creds, true
		}
		return "", false
	}})
	if err != nil {
		t.Fatalf("under the unit, the configuration does not load: %v", err)
	}
	if got := cfg.Git.GitHub.FileSecret; got != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("secret read %q", got)
	}
	if f := cfg.Fraises["shop"]; f.Repository != "acme/shop" || f.ForgeKind() != "github" {
		t.Fatalf("repository %q forge %q", f.Repository, f.ForgeKind())
	}
	// serve's state database, whoever runs fraisier: the unit's
	// StateDirectory= and XDG_STATE_HOME= make it this path.
	if cfg.State.Path != packagedState {
		t.Errorf("state.path %q, want %s", cfg.State.Path, packagedState)
	}
	if !strings.Contains(string(unit), "\nStateDirectory=fraisier\n") || !strings.Contains(string(unit), "\nEnvironment=XDG_STATE_HOME=/var/lib\n") {
		t.Errorf("fraisier.service no longer keeps its state in %s", packagedState)
	}
}

func TestInitNameOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/acme/My.Shop.git": "my-shop",
		"git@gitlab.com:acme/shop.git":        "shop",
		"/srv/src/api_v2/":                    "api_v2",
		"file:///x/.hidden.git":               "hidden",
	} {
		if got := nameOf(in); got != want {
			t.Errorf("nameOf(%q) = %q, want %q", in, got, want)
		}
	}
}
