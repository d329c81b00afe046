package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestDoctorUIListen: with server.ui_listen, doctor's listen check has a
// second line for the dashboard's address: free, held by a real fraisier
// serve's dashboard, or in use by another program (fail, naming
// server.ui_listen); a warning when it would be plain HTTP to other
// hosts, none behind trusted proxies; not checked for systemd.
func TestDoctorUIListen(t *testing.T) {
	ctx := t.Context()
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	check := func(t *testing.T, s config.Server) doctorCheck {
		t.Helper()
		if s.Listen == "" {
			s.Listen = free()
		}
		got := doctorListens(ctx, s, 2*time.Second)
		if len(got) != 2 || got[0].Subject != s.Listen {
			t.Fatalf("checks %+v, want server.listen's then server.ui_listen's", got)
		}
		return got[1]
	}
	want := func(t *testing.T, c doctorCheck, result, detail, fix string) {
		t.Helper()
		if c.Check != "listen" || c.Result != result || !strings.Contains(c.Detail, detail) || !strings.Contains(c.Fix, fix) {
			t.Errorf("check %+v, want listen %s: ...%s... (fix ...%s...)", c, result, detail, fix)
		}
	}

	t.Run("unset", func(t *testing.T) {
		if got := doctorListens(ctx, config.Server{Listen: free()}, time.Second); len(got) != 1 {
			t.Errorf("checks %+v, want server.listen's only", got)
		}
	})
	t.Run("free", func(t *testing.T) {
		addr := free()
		c := check(t, config.Server{UIListen: addr})
		want(t, c, checkOK, "free", "")
		if c.Subject != addr+" (dashboard)" {
			t.Errorf("subject %q, want the address and (dashboard)", c.Subject)
		}
	})
	t.Run("another program", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.NotFoundHandler()}
		go srv.Serve(l)
		defer srv.Close()
		want(t, check(t, config.Server{UIListen: l.Addr().String()}), checkFail, "in use by another program", "server.ui_listen")
	})
	t.Run("fraisier serve", func(t *testing.T) {
		mainAddr, uiAddr := free(), free()
		stop := serveDashboard(t, mainAddr, uiAddr)
		defer stop()
		want(t, check(t, config.Server{Listen: mainAddr, UIListen: uiAddr}), checkOK, "fraisier serve already listens there", "")
		if c := doctorListens(ctx, config.Server{Listen: mainAddr}, 2*time.Second)[0]; c.Result != checkOK {
			t.Errorf("server.listen held by the same serve: %+v, want ok", c)
		}
	})
	t.Run("wildcard", func(t *testing.T) {
		addr := fmt.Sprintf("0.0.0.0:%d", testenv.FreePort(t))
		want(t, check(t, config.Server{UIListen: addr}), checkWarn, "plain HTTP", "server.trusted_proxies")
		want(t, check(t, config.Server{UIListen: addr, TrustedProxies: []string{"127.0.0.1/32"}}), checkOK, "free", "")
	})
	t.Run("systemd", func(t *testing.T) {
		want(t, check(t, config.Server{UIListen: "systemd"}), checkOK, "not checked", "")
	})
	t.Run("unix", func(t *testing.T) {
		want(t, check(t, config.Server{UIListen: "unix:/run/fraisier-ui.sock"}), checkOK, "not checked", "")
	})
}

// serveDashboard runs a real server on mainAddr with its dashboard on
// uiAddr, over a SQLite state database, until stop.
func serveDashboard(t *testing.T, mainAddr, uiAddr string) (stop func()) {
	t.Helper()
	yaml := fmt.Sprintf("server: {listen: %q, ui_listen: %q}\nfraises:\n  api:\n    type: api\n    repository: https://github.com/acme/api.git\n    environments:\n      production: {branch: main, app_path: /srv/api}\n", mainAddr, uiAddr)
	cfg, err := config.Parse("fraises.yaml", []byte(yaml), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.Context(), store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := server.OpenListeners(mainAddr, uiAddr, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeAll(ctx, ls, nil) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		db.Close()
	}
}
