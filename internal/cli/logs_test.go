package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestFollowLogs follows a deployment while it is being written, as
// fraisier logs -f does beside a running deploy.
func TestFollowLogs(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "hello", Environment: "production"}, Trigger: store.TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- followLogs(ctx, db, id, true, 10*time.Millisecond, &out) }()

	step, _ := db.StartStep(ctx, id, "install")
	db.AppendStepOutput(ctx, step, []byte("line one\nhalf"))
	waitPrinted(t, &out, "    line one\n")
	if strings.Contains(out.String(), "half") {
		t.Fatalf("a half-written line was printed:\n%s", out.String())
	}
	db.AppendStepOutput(ctx, step, []byte(" line\n"))
	waitPrinted(t, &out, "    half line\n")
	code := 0
	db.FinishStep(ctx, step, store.StepSucceeded, &code, "")
	db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusFailed, Error: "later step"})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logs -f did not stop when the deployment ended")
	}
	want := "→ install\n    line one\n    half line\n  succeeded\ndeployment 1: failed\n"
	if out.String() != want {
		t.Fatalf("logs -f printed:\n%s\nwant:\n%s", out.String(), want)
	}
}

// waitPrinted waits up to 5 s for out to hold s.
func waitPrinted(t *testing.T, out *testenv.SyncBuffer, s string) {
	t.Helper()
	if !testenv.Eventually(5*time.Second, 5*time.Millisecond, func() bool { return strings.Contains(out.String(), s) }) {
		t.Fatalf("never printed %q; got:\n%s", s, out.String())
	}
}
