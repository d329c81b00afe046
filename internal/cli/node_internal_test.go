package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// TestNodeName: --node, then $FRAISIER_NODE, then server.node, then the
// host name; a name that would break lock owners or target names is
// refused, saying where it came from.
func TestNodeName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, flag, env, cfg string
		want, wantErr        string
	}{
		{name: "flag first", flag: "web-1", env: "web-2", cfg: "web-3", want: "web-1"},
		{name: "then the environment", env: "web-2", cfg: "web-3", want: "web-2"},
		{name: "then server.node", cfg: "web-3", want: "web-3"},
		{name: "then the host name", want: host},
		{name: "an @ is refused", env: "web@1", wantErr: `node name "web@1" (from $FRAISIER_NODE)`},
		{name: "a / is refused", flag: "a/b", wantErr: `node name "a/b" (from --node)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{env: Env{Lookup: func(k string) (string, bool) { return tc.env, k == nodeEnv && tc.env != "" }}}
			cfg := &config.Config{Server: config.Server{Node: tc.cfg}}
			got, err := a.nodeName(cfg, tc.flag)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one with %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("node %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHostsNeedPostgres: serve and node refuse an environment with hosts
// over a SQLite state, whichever way the state was chosen.
func TestHostsNeedPostgres(t *testing.T) {
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := &config.Environment{Name: "production", Hosts: []string{"web-1", "web-2"}}
	plain := &config.Environment{Name: "staging"}
	f := &config.Fraise{Name: "hello", Environments: map[string]*config.Environment{"production": env, "staging": plain}}
	env.Fraise, plain.Fraise = f, f
	cfg := &config.Config{Fraises: map[string]*config.Fraise{"hello": f}}
	err = checkHostsState(cfg, db)
	if !errors.Is(err, errHostsNeedPostgres) || !strings.Contains(err.Error(), "hello/production") {
		t.Fatalf("err %v, want the hosts refusal naming hello/production", err)
	}
	delete(f.Environments, "production")
	if err := checkHostsState(cfg, db); err != nil {
		t.Fatalf("no hosts: %v", err)
	}
}

// TestConfiguredHosts: the hosts serve and node compare their name with
// (a node named after none of them runs no rollout step, and says so).
func TestConfiguredHosts(t *testing.T) {
	prod := &config.Environment{Name: "production", Hosts: []string{"web-2", "web-1"}}
	eu := &config.Environment{Name: "eu", Hosts: []string{"web-1", "eu-1"}}
	plain := &config.Environment{Name: "staging"}
	f := &config.Fraise{Name: "hello", Environments: map[string]*config.Environment{"production": prod, "eu": eu, "staging": plain}}
	prod.Fraise, eu.Fraise, plain.Fraise = f, f, f
	cfg := &config.Config{Fraises: map[string]*config.Fraise{"hello": f}}
	if got, want := strings.Join(configuredHosts(cfg), ","), "eu-1,web-1,web-2"; got != want {
		t.Fatalf("hosts %q, want %q", got, want)
	}
	delete(f.Environments, "production")
	delete(f.Environments, "eu")
	if got := configuredHosts(cfg); len(got) != 0 {
		t.Fatalf("no hosts: %q", got)
	}
}
