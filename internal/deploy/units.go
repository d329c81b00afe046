package deploy

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

func (d *deployment) restart(ctx context.Context, out io.Writer) (string, error) {
	if d.unitsPrepared && !d.unitFilesInApp {
		// Checked and reloaded just before the switch, and no unit file
		// lives where this deployment writes: nothing can have changed.
		return "", startUnits(ctx, d.c.Units(d.env.Scope), d.env.Services(), d.settle(), out)
	}
	// A unit file in the release (or the inplace checkout) changes with
	// the switch, the checkout or the install: ask again.
	return "", restartUnits(ctx, d.c.Units(d.env.Scope), d.env.Services(), d.settle(), out)
}

// prepareBeforeSwitch prepares the units (see prepareUnits) when the
// environment restarts any.
func (d *deployment) prepareBeforeSwitch(ctx context.Context, out io.Writer) error {
	if len(d.env.Services()) == 0 || d.unitsPrepared {
		return nil
	}
	_, err := d.prepareUnits(ctx, out)
	return err
}

// prepareUnits runs before the switch: it reloads systemd if a unit's files
// changed on disk and checks that every unit exists, so that a unit that
// cannot be restarted fails the deployment while the old release still
// serves, untouched, instead of after the switch.
func (d *deployment) prepareUnits(ctx context.Context, out io.Writer) (string, error) {
	u := d.c.Units(d.env.Scope)
	units := d.env.Services()
	reloaded := false
	for _, unit := range units {
		need, load, files, err := u.UnitFiles(ctx, unit)
		if err != nil {
			return "", err
		}
		if need && !reloaded {
			fmt.Fprintf(out, "%s changed on disk: daemon-reload\n", unit)
			if err := u.DaemonReload(ctx); err != nil {
				return "", err
			}
			reloaded = true
			if _, load, files, err = u.UnitFiles(ctx, unit); err != nil {
				return "", err
			}
		}
		if d.inplace() || filesUnder(files, d.appPath) {
			d.unitFilesInApp = true
		}
		switch load {
		case "loaded", "":
		case "not-found":
			return "", fmt.Errorf("unit %s not found: no unit file defines it (check systemd_service and scope: %s)", unit, d.env.Scope)
		default:
			return "", fmt.Errorf("unit %s cannot be started: systemd loaded it as %s", unit, load)
		}
	}
	d.unitsPrepared = true
	if reloaded {
		return "reloaded", nil
	}
	return "", nil
}

func (d *deployment) settle() time.Duration {
	if d.env.HealthCheck != nil {
		return settleWithHealth
	}
	return settle
}

// restartUnits reloads systemd when a unit file changed, restarts the units
// and waits until each has stayed active for the settle time.
func restartUnits(ctx context.Context, u Units, units []string, settleFor time.Duration, out io.Writer) error {
	for _, unit := range units {
		need, _, _, err := u.UnitFiles(ctx, unit)
		if err != nil {
			return err
		}
		if need {
			fmt.Fprintf(out, "%s changed on disk: daemon-reload\n", unit)
			if err := u.DaemonReload(ctx); err != nil {
				return err
			}
			break
		}
	}
	return startUnits(ctx, u, units, settleFor, out)
}

// filesUnder reports whether any of files, links resolved, lies under dir.
// A file that cannot be resolved counts as under it: asking systemd again
// costs little, a stale unit definition a lot.
func filesUnder(files []string, dir string) bool {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		root = dir
	}
	for _, f := range files {
		if f == "/dev/null" {
			continue
		}
		real, err := filepath.EvalSymlinks(f)
		if err != nil {
			return true
		}
		for _, base := range []string{root, dir} {
			if rel, err := filepath.Rel(base, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				return true
			}
		}
	}
	return false
}

// startUnits restarts the units and waits until each has stayed active
// for the settle time.
func startUnits(ctx context.Context, u Units, units []string, settleFor time.Duration, out io.Writer) error {
	if err := u.Restart(ctx, units...); err != nil {
		return err
	}
	for _, unit := range units {
		if err := u.WaitActive(ctx, unit, settleFor); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s active\n", unit)
	}
	return nil
}
