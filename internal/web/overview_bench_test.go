package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// BenchmarkOverviewFragment: the overview's refresh without the hooks,
// with hooks that answer at once, and behind a health check that hangs
// (the page must not wait for it).
func BenchmarkOverviewFragment(b *testing.B) {
	yes := true
	for _, bc := range []struct {
		name  string
		hooks func() *hooks
	}{
		{"no hooks", func() *hooks { return nil }},
		{"hooks answered", func() *hooks {
			return &hooks{subjects: map[string]string{shaOK: "a subject"}, health: map[string]server.LiveState{"production": {Healthy: &yes}}}
		}},
		{"health check hangs", func() *hooks {
			return &hooks{subjects: map[string]string{shaOK: "a subject"}, block: make(chan struct{})}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.hooks()
			c, base := benchServer(b, h)
			if h != nil && h.block != nil {
				defer close(h.block)
			}
			for b.Loop() {
				resp, err := c.Get(base + "/ui/fragment/overview")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("overview: %d", resp.StatusCode)
				}
			}
		})
	}
}

// benchServer is a dashboard over a store with the fixture's deployments,
// signed in with server.api_token.
func benchServer(b *testing.B, h *hooks) (*http.Client, string) {
	ctx := context.Background()
	cfg, err := config.Parse("fraises.yaml", []byte(webConfig), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(b.TempDir(), "state.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	prod := store.Target{Fraise: "shop", Environment: "production"}
	id, err := db.StartDeployment(ctx, store.Deployment{Target: prod, Trigger: store.TriggerCLI, Actor: "alice", NewSHA: shaOK, Release: "r1"})
	if err == nil {
		err = db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
	}
	if err != nil {
		b.Fatal(err)
	}
	o := server.Options{Config: cfg, Store: db}
	if h != nil {
		h.set(&o)
	}
	srv, err := server.New(o)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { hs.Close(); srv.Close() })
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(hs.URL+"/ui/login", url.Values{"token": {readToken}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return c, hs.URL
}
