package deploy

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestSharedCodeRunsAsItsAccount: an environment that shares another's
// code runs in that environment's release, which belongs to its user:.
// Its run_after_deploy must run as that user, or what the user wrote runs
// with another account's rights: here hello/production sets user: nobody
// and its install rewrites after.sh, which reader/production runs. A
// configuration that loads refuses the difference (config's rule); the
// deployment refuses it again, whatever built the configuration.
func TestSharedCodeRunsAsItsAccount(t *testing.T) {
	if _, err := user.LookupId("65534"); err != nil {
		testenv.Unavailable(t, "no user 65534 on this host")
	}
	for _, tc := range []struct {
		name string
		// change is made to reader/production after the configuration
		// loaded (with user: nobody on both).
		change func(reader *config.Environment)
		// refusal is what a refused deployment says; "" means it runs, as
		// uid 65534.
		refusal []string
	}{
		{"same user", func(*config.Environment) {}, nil},
		{"fraisier's own user", func(e *config.Environment) { e.User = "" },
			[]string{"hello/production runs as user nobody", "this environment as fraisier's own user", "give this environment user: nobody and no group:"}},
		{"another group", func(e *config.Environment) { e.Group = "0" },
			[]string{"hello/production runs as user nobody", "this environment as user nobody in group root", "give this environment user: nobody and no group:, as hello/production has"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTreeFixture(t)
			// The user must be able to reach its release, and to write
			// the marker.
			for _, dir := range []string{filepath.Dir(f.root), f.root} {
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(f.root, "out")
			mkdirOwned(t, out, 0, 0o777)
			marker := filepath.Join(out, "ran-as")
			yaml := fmt.Sprintf(`state:
  dir: %s
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        user: nobody
        install:
          command: [sh, -c, 'printf "#!/bin/sh\nid -u > %s\n" > after.sh; chmod +x after.sh']
  reader:
    type: etl
    environments:
      production:
        branch: main
        shares_code_with: hello/production
        user: nobody
        run_after_deploy:
          command: [./after.sh]
`, f.state, f.repo.Dir, f.app, marker)
			cfg := parseConfig(t, f.root, yaml)
			hello := lookup(t, cfg, "hello", "production")
			reader := lookup(t, cfg, "reader", "production")
			tc.change(reader)
			if res := f.deploy(hello); res.Status != store.StatusSucceeded {
				t.Fatalf("hello: %s (%v)", res.Status, res.Err)
			}
			// hello's own after.sh would have run as nobody: start clean.
			os.Remove(marker)
			res, err := f.engine().Deploy(context.Background(), RealCollaborators(nil), Request{Env: reader, Trigger: store.TriggerCLI, Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			ran, _ := os.ReadFile(marker)
			if tc.refusal == nil {
				if res.Status != store.StatusSucceeded || strings.TrimSpace(string(ran)) != "65534" {
					t.Fatalf("reader: %s (%v), ran as %q; want it run as uid 65534", res.Status, res.Err, ran)
				}
				return
			}
			if len(ran) > 0 {
				t.Fatalf("code nobody wrote ran as uid %s", strings.TrimSpace(string(ran)))
			}
			f.refused(res, tc.refusal...)
		})
	}
}
