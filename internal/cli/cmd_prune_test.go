package cli_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestServePrunes: fraisier serve prunes in the background as
// state.retention says. On the seeded history with a day's retention, the
// rolled back deployment and both webhook events go once serve has
// started, the others stay, and the log says what went.
func TestServePrunes(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.db")
	if err := seed(context.Background(), state); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "fraises.yaml")
	if err := os.WriteFile(config, []byte(`state:
  retention: {events: 1d, step_output: 1d, deployments: 1d}
fraises:
  hello:
    type: api
    repository: https://git.example.com/acme/hello.git
    environments:
      production: {branch: main, app_path: /srv/hello}
      staging: {branch: staging, app_path: /srv/hello-staging}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cli.Env{Lookup: func(k string) (string, bool) {
		if k == "HOME" {
			return dir, true
		}
		return "", false
	}, Euid: os.Geteuid()}
	var logs testenv.SyncBuffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--config", config, "--state", state, "--listen", "127.0.0.1:0"},
			cli.Streams{In: strings.NewReader(""), Out: io.Discard, Err: &logs}, env)
	}()
	defer func() {
		stop()
		if code := <-done; code != cli.ExitOK {
			t.Errorf("serve exited %d:\n%s", code, logs.String())
		}
	}()

	db, err := store.Open(context.Background(), store.Options{Path: state, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	if !testenv.Eventually(30*time.Second, 20*time.Millisecond, func() bool {
		_, err := db.Deployment(context.Background(), 2)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err != nil
	}) {
		t.Fatalf("deployment 2 still there 30 s after serve started:\n%s", logs.String())
	}
	for _, id := range []int64{1, 3, 4} {
		if _, err := db.Deployment(context.Background(), id); err != nil {
			t.Errorf("deployment %d: %v", id, err)
		}
	}
	testenv.Eventually(time.Until(deadline), 20*time.Millisecond, func() bool { return strings.Contains(logs.String(), "retention: pruned") })
	for _, want := range []string{`"msg":"retention: pruned the state database"`, `"deployments":1`, `"events":2`, `"step_output":14`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("serve's log does not say %s:\n%s", want, logs.String())
		}
	}
}
