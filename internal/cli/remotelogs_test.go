package cli

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

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
	proxy := testenv.NewFaultCutOnce(t, hs.URL, "/log", 200)

	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "hello", Environment: "production"}, Trigger: store.TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.SyncBuffer
	a := &app{env: Env{Lookup: func(k string) (string, bool) { return secret, k == TokenEnv }}}
	done := make(chan error, 1)
	go func() { done <- a.remoteLogs(ctx, remoteFlags{url: proxy.URL}, id, true, &out) }()
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
	cut, resumes := proxy.Cut()
	if !cut || len(resumes) < 2 || resumes[1] == "" {
		t.Fatalf("the stream was not cut and resumed: cut %v, Last-Event-IDs %q", cut, resumes)
	}
	var nonFollow strings.Builder
	if err := a.remoteLogs(ctx, remoteFlags{url: proxy.URL}, id, false, &nonFollow); err != nil || nonFollow.String() != local.String() {
		t.Fatalf("logs --remote: %v\n%q\nwant\n%q", err, nonFollow.String(), local.String())
	}

	// A finished deployment whose output was cut to its last 64 KiB.
	id, _ = db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "hello", Environment: "production"}, Trigger: store.TriggerCLI})
	step, _ := db.StartStep(ctx, id, "build")
	for i := range 1000 {
		db.AppendStepOutput(ctx, step, []byte(fmt.Sprintf("%0100d\n", i)))
	}
	db.FinishStep(ctx, step, store.StepFailed, nil, "")
	db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusFailed})
	local.Reset()
	var tail strings.Builder
	if err := followLogs(ctx, db, id, false, 0, &local); err != nil {
		t.Fatal(err)
	}
	if err := a.remoteLogs(ctx, remoteFlags{url: proxy.URL}, id, true, &tail); err != nil || tail.String() != local.String() {
		t.Fatalf("logs -f --remote of a truncated log: %v\n%q\nwant\n%q", err, testenv.Tail(tail.String(), 300), testenv.Tail(local.String(), 300))
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
