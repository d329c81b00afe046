package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestDeployETL: an etl deploys code like an api, verifies its scripts
// before the switch, runs run_after_deploy after it (rolling back when that
// fails), and an etl sharing another environment's checkout deploys no code
// of its own. Real git; no systemd unit is involved.
func TestDeployETL(t *testing.T) {
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	commit := func(msg string, files map[string]string, modes map[string]os.FileMode) {
		for name, content := range files {
			mode := modes[name]
			if mode == 0 {
				mode = 0o644
			}
			repo.WriteMode(name, content, mode)
		}
		repo.Commit(msg)
	}
	yaml := fmt.Sprintf(`
fraises:
  pipeline:
    type: etl
    environments:
      production:
        branch: main
        git_repo: %[1]s
        app_path: %[2]s/srv/pipeline
        scripts: [etl/extract.sh]
        run_after_deploy:
          command: [sh, etl/after.sh, %[2]s/ran]
  reader:
    type: etl
    environments:
      production:
        branch: main
        shares_code_with: pipeline/production
        scripts: [etl/extract.sh]
        run_after_deploy:
          command: [sh, etl/after.sh, %[2]s/reader-ran]
`, repo.Dir, root)
	cfg := parseConfig(t, root, yaml)
	db := openState(t, filepath.Join(root, "state.db"))
	var log strings.Builder
	e := newEngine(t, db, &log)
	deploy := func(fraise string) Result {
		t.Helper()
		env, err := cfg.Lookup(fraise, "production")
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Deploy(context.Background(), RealCollaborators(nil), Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
		if err != nil {
			t.Fatalf("Deploy: %v\n%s", err, log.String())
		}
		return res
	}
	app := filepath.Join(root, "srv", "pipeline")
	after := "echo ran > \"$1\"\n"

	// The reader has nothing to share yet.
	if res := deploy("reader"); res.Status != store.StatusFailed || !strings.Contains(res.Err.Error(), "deploy it first") {
		t.Fatalf("reader before pipeline: %s %v", res.Status, res.Err)
	}

	commit("v1", map[string]string{"etl/extract.sh": "#!/bin/sh\n", "etl/after.sh": after}, map[string]os.FileMode{"etl/extract.sh": 0o755})
	res := deploy("pipeline")
	if res.Status != store.StatusSucceeded {
		t.Fatalf("v1: %s %v\n%s", res.Status, res.Err, log.String())
	}
	if _, err := os.Stat(filepath.Join(root, "ran")); err != nil {
		t.Fatalf("run_after_deploy did not run: %v", err)
	}
	good := res.Release

	// A script that lost its executable bit fails before the switch.
	commit("v2", map[string]string{"etl/extract.sh": "#!/bin/sh\n# v2\n"}, map[string]os.FileMode{"etl/extract.sh": 0o644})
	res = deploy("pipeline")
	if res.Status != store.StatusFailed || !strings.Contains(res.Err.Error(), "etl/extract.sh: not executable") {
		t.Fatalf("v2: %s %v", res.Status, res.Err)
	}
	if cur, _ := currentRelease(app); cur != good {
		t.Fatalf("current %s after a failed verify, want %s", cur, good)
	}

	// run_after_deploy failing after the switch rolls back.
	commit("v3", map[string]string{"etl/extract.sh": "#!/bin/sh\n# v3\n", "etl/after.sh": "exit 3\n"}, map[string]os.FileMode{"etl/extract.sh": 0o755})
	res = deploy("pipeline")
	if res.Status != store.StatusRolledBack || !strings.Contains(res.Err.Error(), "run after deploy") {
		t.Fatalf("v3: %s %v", res.Status, res.Err)
	}
	if cur, _ := currentRelease(app); cur != good {
		t.Fatalf("current %s after the rollback, want %s", cur, good)
	}

	// The reader now verifies against pipeline's current release.
	res = deploy("reader")
	if res.Status != store.StatusSucceeded || res.Release != good {
		t.Fatalf("reader: %s %v, release %s want %s\n%s", res.Status, res.Err, res.Release, good, log.String())
	}
	if _, err := os.Stat(filepath.Join(root, "reader-ran")); err != nil {
		t.Fatalf("reader's run_after_deploy did not run: %v", err)
	}
	steps, _ := db.Steps(context.Background(), res.DeploymentID)
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "resolve shared code,verify scripts,run after deploy" {
		t.Fatalf("reader steps %s", got)
	}
}
