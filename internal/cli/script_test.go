package cli_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fraisier":      func() { os.Exit(cli.Main(os.Args[1:], cli.StdStreams())) },
		"fraisier-seed": seedMain,
		// fraisier-future marks a state database as written by a newer
		// fraisier, the situation a downgrade creates.
		"fraisier-future": futureMain,
	})
}

// TestScripts runs every testdata/script/*.txtar: the CLI end to end, as a
// user types it.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		// UPDATE_GOLDEN=1 rewrites the cmp goldens inside the scripts; read
		// the diff before committing it.
		UpdateScripts: os.Getenv("UPDATE_GOLDEN") != "",
		Setup: func(e *testscript.Env) error {
			// Never let a test touch the machine's real state database.
			e.Setenv("FRAISIER_STATE", filepath.Join(e.WorkDir, "state", "fraisier.db"))
			e.Setenv("EXAMPLES", examples)
			e.Setenv("FRAISIER_DEMO_ROOT", filepath.Join(e.WorkDir, "demo"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"waitfile": cmdWaitFile,
		},
	})
}

// cmdExitCode runs a command and checks its exact exit code, because the
// codes are documented interface and "! exec" only knows non-zero.
//
//	exitcode 3 fraisier config validate bad.yaml
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("exitcode does not support negation: name the code")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// seedMain fills a state database with a small known history so that the
// read commands have something exact to show. Its clock starts at a fixed
// instant and moves one second per reading.
func seedMain() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fraisier-seed STATE_DB")
		os.Exit(2)
	}
	if err := seed(context.Background(), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "fraisier-seed:", err)
		os.Exit(1)
	}
}

func seed(ctx context.Context, path string) error {
	// The clock ticks a second per reading, but only once the database is
	// open: how many schema migrations opening applies must not move the
	// seeded history's times (and every golden file with them).
	clock := time.Date(2026, 11, 20, 9, 0, 1, 0, time.UTC)
	ticking := false
	now := func() time.Time {
		if ticking {
			clock = clock.Add(time.Second)
		}
		return clock
	}
	db, err := store.Open(ctx, store.Options{Path: path, Now: now})
	if err != nil {
		return err
	}
	defer db.Close()
	ticking = true

	const (
		sha1 = "1111111111111111111111111111111111111111"
		sha2 = "2222222222222222222222222222222222222222"
		sha3 = "3333333333333333333333333333333333333333"
	)
	hook, _, err := db.RecordWebhook(ctx, store.WebhookEvent{
		Forge: "github", DeliveryID: "d-1", EventType: "push", Repository: "acme/hello",
		Ref: "refs/heads/main", SHA: sha2, Sender: "alice", Outcome: store.OutcomeAccepted,
		Reason: "routed to hello/production", RemoteAddr: "127.0.0.1",
	})
	if err != nil {
		return err
	}
	if _, _, err := db.RecordWebhook(ctx, store.WebhookEvent{
		Forge: "gitlab", DeliveryID: "d-2", EventType: "Push Hook", Repository: "acme/unknown",
		Ref: "refs/heads/main", SHA: sha3, Sender: "bob", Outcome: store.OutcomeIgnored,
		Reason: "no fraise routes repository acme/unknown", RemoteAddr: "127.0.0.1",
	}); err != nil {
		return err
	}

	type run struct {
		env, from, to, errText string
		status                 store.Status
		webhook                *int64
		steps                  []string
	}
	runs := []run{
		{env: "production", to: sha1, status: store.StatusSucceeded, steps: []string{"fetch", "release", "install", "switch", "restart", "health"}},
		{env: "production", from: sha1, to: sha2, status: store.StatusRolledBack, errText: "health: GET http://127.0.0.1:8081/health: 500 after 3 tries", webhook: &hook.ID, steps: []string{"fetch", "release", "switch", "restart", "health!", "rollback"}},
		{env: "staging", to: sha2, status: store.StatusSucceeded, steps: []string{"fetch", "release", "switch", "restart", "health"}},
		{env: "production", from: sha1, to: sha3, status: store.StatusFailed, errText: "install: exit status 1", steps: []string{"fetch", "release", "install!"}},
	}
	for _, r := range runs {
		id, err := db.StartDeployment(ctx, store.Deployment{
			Target: store.Target{Fraise: "hello", Environment: r.env}, Trigger: store.TriggerCLI, Actor: "alice",
			RequestedRef: "main", OldSHA: r.from, NewSHA: r.to, WebhookID: r.webhook, Host: "web-1", PID: 4242,
		})
		if err != nil {
			return err
		}
		for _, name := range r.steps {
			failed := name[len(name)-1] == '!'
			if failed {
				name = name[:len(name)-1]
			}
			sid, err := db.StartStep(ctx, id, name)
			if err != nil {
				return err
			}
			status, code := store.StepSucceeded, 0
			if failed {
				status, code = store.StepFailed, 1
			}
			if err := db.AppendStepOutput(ctx, sid, []byte(name+" output line\n")); err != nil {
				return err
			}
			if err := db.FinishStep(ctx, sid, status, &code, ""); err != nil {
				return err
			}
		}
		release := ""
		if r.status == store.StatusSucceeded {
			release = "20261120T090000Z-" + r.to[:7]
		}
		if err := db.FinishDeployment(ctx, id, store.Finish{Status: r.status, NewSHA: r.to, Release: release, Error: r.errText}); err != nil {
			return err
		}
	}
	return nil
}

func futureMain() {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: os.Args[1]})
	if err == nil {
		_, err = db.SQL().ExecContext(ctx, "INSERT INTO tb_schema_migrations (version, applied_at) VALUES (9999, 0)")
		db.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fraisier-future:", err)
		os.Exit(1)
	}
}

// cmdWaitFile waits up to 30 s for a file to appear: the way a script
// knows a background fraisier has reached a given step.
//
//	waitfile $WORK/started
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	if !testenv.Eventually(30*time.Second, 20*time.Millisecond, func() bool { return testenv.Exists(ts.MkAbs(args[0])) }) {
		ts.Fatalf("%s did not appear within 30s", args[0])
	}
}
