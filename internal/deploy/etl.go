package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/store"
)

const defaultRunAfterTimeout = 30 * time.Minute

func runAfterTimeout(env *config.Environment) time.Duration {
	if env.RunAfterDeploy != nil && env.RunAfterDeploy.Timeout > 0 {
		return env.RunAfterDeploy.Timeout.D()
	}
	return defaultRunAfterTimeout
}

// verifyScripts checks, before the switch, that every configured script
// exists in the new release and is executable: an etl whose scripts vanished
// must fail while the old release still runs.
func (d *deployment) verifyScripts(ctx context.Context, out io.Writer) (string, error) {
	return verifyScriptsIn(d.releasePath, d.env.Scripts, out)
}

func verifyScriptsIn(dir string, scripts []string, out io.Writer) (string, error) {
	var problems []string
	for _, s := range scripts {
		p := filepath.Join(dir, s)
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			problems = append(problems, s+": missing")
		case !fi.Mode().IsRegular():
			problems = append(problems, s+": not a regular file")
		case fi.Mode().Perm()&0o111 == 0:
			problems = append(problems, s+": not executable")
		default:
			fmt.Fprintf(out, "%s ok\n", s)
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("scripts not ready in %s: %s", filepath.Base(dir), strings.Join(problems, "; "))
	}
	return fmt.Sprintf("%d %s", len(scripts), plural(len(scripts), "script", "scripts")), nil
}

// runAfterDeploy runs the configured command in the release now current;
// its failure rolls the release back like any step after the switch.
func (d *deployment) runAfterDeploy(ctx context.Context, out io.Writer) (string, error) {
	return runCommandIn(ctx, d.env.RunAfterDeploy, filepath.Join(d.appPath, currentLink), d.as, out)
}

// runCommandIn runs one of the environment's commands (install,
// run_after_deploy) in dir, as the environment's account; its configured
// env comes after the account's HOME, USER and LOGNAME, and wins.
func runCommandIn(ctx context.Context, c *config.Command, dir string, as account, out io.Writer) (string, error) {
	if c.Dir != "" {
		dir = filepath.Join(dir, c.Dir)
	}
	_, err := execx.Run(ctx, execx.Cmd{Argv: c.Argv, Dir: dir, Env: append(as.env(), sortedEnv(c.Env)...),
		Credential: as.credential(), Output: out})
	return strings.Join(c.Argv, " "), err
}

// runShared is the etl flow for an environment that shares another
// fraise's checkout: it deploys no code of its own, verifies its scripts
// against the release the other environment runs now, and runs its
// run_after_deploy there.
func (d *deployment) runShared(ctx context.Context) (store.Status, error) {
	code := d.env.Code
	// The other environment may switch while this one runs: work in the
	// release it runs now, by name, not through its current link.
	var release, dir string
	err := d.rec.step(ctx, "resolve shared code", 0, func(ctx context.Context, out io.Writer) (string, error) {
		var err error
		release, err = currentRelease(code.AppPath)
		if err != nil {
			return "", err
		}
		if release == "" {
			return "", fmt.Errorf("%s has no current release yet: deploy it first", code.ID())
		}
		dir = filepath.Join(code.AppPath, releasesDir, release)
		cf, ce := code.Target()
		d.sha = d.e.currentSHA(ctx, store.Target{Fraise: cf, Environment: ce}, release)
		if d.sha != "" {
			if err := d.recordTarget(); err != nil {
				return code.ID() + " runs " + release, err
			}
		}
		return code.ID() + " runs " + release, nil
	})
	if err != nil {
		return store.StatusFailed, err
	}
	if len(d.env.Scripts) > 0 {
		if err := d.rec.step(ctx, "verify scripts", 0, func(ctx context.Context, out io.Writer) (string, error) {
			return verifyScriptsIn(dir, d.env.Scripts, out)
		}); err != nil {
			return store.StatusFailed, err
		}
	}
	if d.env.RunAfterDeploy != nil {
		if err := d.rec.step(ctx, "run after deploy", runAfterTimeout(d.env), func(ctx context.Context, out io.Writer) (string, error) {
			return runCommandIn(ctx, d.env.RunAfterDeploy, dir, d.as, out)
		}); err != nil {
			return store.StatusFailed, err
		}
	}
	d.release = release
	return store.StatusSucceeded, nil
}
