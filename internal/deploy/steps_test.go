package deploy

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/store"
)

func newRecorder(t *testing.T) (*recorder, *store.DB, *strings.Builder) {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id, err := db.StartDeployment(context.Background(), store.Deployment{Target: store.Target{Fraise: "f", Environment: "e"}, Trigger: store.TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	return &recorder{db: db, deploymentID: id, progress: &progress, now: time.Now, record: context.Background()}, db, &progress
}

// TestStepTimeout: a step cut by its own timeout says so once, names the
// step once, and records its exit as failed.
func TestStepTimeout(t *testing.T) {
	rec, db, _ := newRecorder(t)
	err := rec.step(context.Background(), "install", 100*time.Millisecond, func(ctx context.Context, out io.Writer) (string, error) {
		_, err := execx.Run(ctx, execx.Cmd{Argv: []string{"sleep", "5"}, Grace: 50 * time.Millisecond})
		return "sleep 5", err
	})
	if !errors.Is(err, execx.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	msg := err.Error()
	if strings.Count(msg, "install") != 1 || strings.Count(msg, "timed out") != 1 {
		t.Fatalf("message repeats itself: %q", msg)
	}
	steps, _ := db.Steps(context.Background(), rec.deploymentID)
	if len(steps) != 1 || steps[0].Status != store.StepFailed || !strings.Contains(steps[0].Detail, "timed out after 100ms") {
		t.Fatalf("recorded %+v", steps)
	}
}

func TestStepErrorNamesTheStepOnce(t *testing.T) {
	tests := []struct{ step, err, want string }{
		{"health", "health: GET x: status 500", "health: GET x: status 500"},
		{"install", "exit status 1", "install: exit status 1"},
		{"health", "healthy? no", "health: healthy? no"},
	}
	for _, tt := range tests {
		if got := (&stepError{step: tt.step, err: errors.New(tt.err)}).Error(); got != tt.want {
			t.Errorf("%s/%q = %q, want %q", tt.step, tt.err, got, tt.want)
		}
	}
}

// TestStepOutputFirstLineAtOnce: the first output after a quiet spell is
// in the state database when Write returns, so a live log shows it
// without waiting for a batch; what follows at once is gathered and
// written within outputFlushAfter, and Close writes what is left.
func TestStepOutputFirstLineAtOnce(t *testing.T) {
	ctx := context.Background()
	rec, db, _ := newRecorder(t)
	step, err := db.StartStep(ctx, rec.deploymentID, "install")
	if err != nil {
		t.Fatal(err)
	}
	output := func() string {
		steps, err := db.Steps(ctx, rec.deploymentID)
		if err != nil || len(steps) != 1 {
			t.Fatalf("steps %+v, %v", steps, err)
		}
		return string(steps[0].Output)
	}
	o := newStepOutput(ctx, db, step)
	io.WriteString(o, "first\n")
	if got := output(); got != "first\n" {
		t.Fatalf("after the first write the database holds %q, want the line", got)
	}
	io.WriteString(o, "second\n")
	for deadline := time.Now().Add(5 * time.Second); output() != "first\nsecond\n"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second line never reached the database: %q", output())
		}
	}
	io.WriteString(o, "third\n")
	o.Close()
	if got := output(); got != "first\nsecond\nthird\n" {
		t.Fatalf("after Close the database holds %q", got)
	}
}
