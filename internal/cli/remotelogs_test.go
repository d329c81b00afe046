package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// faultCutOnce is a fake proxy in front of serve that injects the one
// fault the real server cannot produce on demand: it cuts the first live
// log response after cutAfter bytes, as a proxy restart would. Every
// other request passes whole.
type faultCutOnce struct {
	proxy    *httputil.ReverseProxy
	cutAfter int
	mu       sync.Mutex
	cut      bool
	resumes  []string // Last-Event-ID of each live log request
}

func newFaultCutOnce(t *testing.T, target string, cutAfter int) *faultCutOnce {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultCutOnce{proxy: httputil.NewSingleHostReverseProxy(u), cutAfter: cutAfter}
	f.proxy.ModifyResponse = func(resp *http.Response) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if strings.HasSuffix(resp.Request.URL.Path, "/log") && !f.cut {
			f.cut = true
			resp.Body = &cutReader{ReadCloser: resp.Body, left: f.cutAfter}
		}
		return nil
	}
	f.proxy.ErrorLog = log.New(io.Discard, "", 0)
	return f
}

func (f *faultCutOnce) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/log") {
		f.mu.Lock()
		f.resumes = append(f.resumes, r.Header.Get("Last-Event-ID"))
		f.mu.Unlock()
	}
	f.proxy.ServeHTTP(w, r)
}

// cutReader fails once left bytes were read.
type cutReader struct {
	io.ReadCloser
	left int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("fault: connection cut")
	}
	n, err := c.ReadCloser.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// TestRemoteLogsFollowPrintsAsLocal: logs -f --remote follows a
// deployment written while it reads, through a proxy that cuts the
// stream once mid-line, and prints exactly what local logs prints of
// the finished deployment.
func TestRemoteLogsFollowPrintsAsLocal(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg, err := config.Parse("fraises.yaml", []byte(`
fraises:
  hello:
    type: api
    environments:
      production: {branch: main, git_repo: /nonexistent, app_path: /srv/hello}
`), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer func() { hs.Close(); srv.Close() }()
	_, secret, err := db.CreateAPIToken(ctx, "reader", []store.Scope{{Action: store.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	proxy := newFaultCutOnce(t, hs.URL, 200)
	ps := httptest.NewServer(proxy)
	defer ps.Close()

	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "hello", Environment: "production"}, Trigger: store.TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.SyncBuffer
	a := &app{env: Env{Lookup: func(k string) (string, bool) { return secret, k == TokenEnv }}}
	done := make(chan error, 1)
	go func() { done <- a.remoteLogs(ctx, remoteFlags{url: ps.URL}, id, true, &out) }()
	writeSteps(t, db, id)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("logs -f --remote did not end; printed:\n%s", out.String())
	}
	var local strings.Builder
	if err := followLogs(ctx, db, id, false, 0, &local); err != nil {
		t.Fatal(err)
	}
	if out.String() != local.String() {
		t.Fatalf("logs -f --remote printed:\n%q\nlocal logs prints:\n%q", out.String(), local.String())
	}
	proxy.mu.Lock()
	cut, resumes := proxy.cut, proxy.resumes
	proxy.mu.Unlock()
	if !cut || len(resumes) < 2 || resumes[1] == "" {
		t.Fatalf("the stream was not cut and resumed: cut %v, Last-Event-IDs %q", cut, resumes)
	}
	var nonFollow strings.Builder
	if err := a.remoteLogs(ctx, remoteFlags{url: ps.URL}, id, false, &nonFollow); err != nil || nonFollow.String() != local.String() {
		t.Fatalf("logs --remote: %v\n%q\nwant\n%q", err, nonFollow.String(), local.String())
	}
}

// writeSteps writes two steps of output slowly, the first one with a CR
// progress line and an unterminated last line, and ends the deployment.
func writeSteps(t *testing.T, db *store.DB, id int64) {
	ctx := context.Background()
	code := 0
	for i, name := range []string{"install", "migrate"} {
		step, err := db.StartStep(ctx, id, name)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 8 {
			time.Sleep(15 * time.Millisecond)
			chunk := fmt.Sprintf("%s line %d: data: x\n", name, j)
			if i == 0 && j == 3 {
				chunk = "progress 10%\rprogress 100%\r\nhalf"
			}
			db.AppendStepOutput(ctx, step, []byte(chunk))
		}
		if i == 0 {
			db.AppendStepOutput(ctx, step, []byte(" a line, unterminated"))
		}
		if err := db.FinishStep(ctx, step, store.StepSucceeded, &code, "done\nwell"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusFailed, Error: "later"}); err != nil {
		t.Fatal(err)
	}
}
