package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func (d *deployment) restart(ctx context.Context, out io.Writer) (string, error) {
	u := d.restarter(d.c.Units(d.env.Scope), out)
	if d.unitsPrepared && !d.unitFilesInApp {
		// Checked and reloaded just before the switch, and no unit file
		// lives where this deployment writes: nothing can have changed.
		return "", startUnits(ctx, u, d.env.Services(), d.settle(), out)
	}
	// A unit file in the release (or the inplace checkout) changes with
	// the switch, the checkout or the install: ask again.
	return "", restartUnits(ctx, u, d.env.Services(), d.settle(), out)
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
// serves, untouched, instead of after the switch. With user: set, a unit
// whose files lie under app_path is refused before any reload
// (checkUnitFiles).
func (d *deployment) prepareUnits(ctx context.Context, out io.Writer) (string, error) {
	u := d.c.Units(d.env.Scope)
	units := d.env.Services()
	facts, reloaded, err := reloadIfChanged(ctx, u, units, out, d.checkUnitFiles)
	if err != nil {
		return "", err
	}
	if reloaded {
		// The files systemd reads now may not be those it had loaded.
		if facts, err = unitFacts(ctx, u, units, d.checkUnitFiles); err != nil {
			return "", err
		}
	}
	for i, unit := range units {
		if d.inplace() || filesUnder(facts[i].files, d.appPath) {
			d.unitFilesInApp = true
		}
		switch facts[i].load {
		case "loaded", "":
		case "not-found":
			return "", fmt.Errorf("unit %s not found: no unit file defines it (check systemd_service and scope: %s)", unit, d.env.Scope)
		default:
			return "", fmt.Errorf("unit %s cannot be started: systemd loaded it as %s", unit, facts[i].load)
		}
	}
	if d.env.HandsOffSocket() {
		if err := d.prepareSockets(ctx, out); err != nil {
			return "", err
		}
	}
	d.unitsPrepared = true
	if reloaded {
		return "reloaded", nil
	}
	return "", nil
}

// unitFact is what systemd says of one unit's files.
type unitFact struct {
	needReload bool
	load       string
	files      []string
}

// unitFacts asks systemd about each unit's files; check, when set, may
// refuse a unit by the files it is loaded from.
func unitFacts(ctx context.Context, u Units, units []string, check func(unit string, files []string) error) ([]unitFact, error) {
	facts := make([]unitFact, len(units))
	for i, unit := range units {
		need, load, files, err := u.UnitFiles(ctx, unit)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(unit, files); err != nil {
				return nil, err
			}
		}
		facts[i] = unitFact{needReload: need, load: load, files: files}
	}
	return facts, nil
}

// reloadIfChanged asks systemd about every unit's files (unitFacts, with
// check) and reloads systemd once if any of them changed on disk. It
// returns what systemd said before the reload, and whether it reloaded.
func reloadIfChanged(ctx context.Context, u Units, units []string, out io.Writer, check func(unit string, files []string) error) ([]unitFact, bool, error) {
	facts, err := unitFacts(ctx, u, units, check)
	if err != nil {
		return nil, false, err
	}
	i := slices.IndexFunc(facts, func(f unitFact) bool { return f.needReload })
	if i < 0 {
		return facts, false, nil
	}
	fmt.Fprintf(out, "%s changed on disk: daemon-reload\n", units[i])
	if err := u.DaemonReload(ctx); err != nil {
		return nil, false, err
	}
	return facts, true, nil
}

// checkUnitFiles refuses a unit whose file or drop-in lies under app_path
// when the code there belongs to someone with fewer rights than the
// manager reading it: the user of user:, or fraisier's own user restarting
// system units through polkit. A line added there (ExecStartPre=+…) would
// run with systemd's own rights at the next daemon-reload and restart,
// which fraisier triggers.
func (d *deployment) checkUnitFiles(unit string, files []string) error {
	owner := ""
	switch {
	case d.as.switchTo:
		owner = "user: " + d.as.name
	case d.env.Scope != "user" && os.Geteuid() != 0:
		owner = "fraisier's user " + accountName(uint32(os.Geteuid()))
	default:
		return nil
	}
	file, real := fileUnder(files, d.appPath)
	if file == "" {
		return nil
	}
	if real != file {
		file += " (" + real + ")"
	}
	return fmt.Errorf("unit %s: systemd reads %s, under app_path %s, where %s can change it: a line it adds there (ExecStartPre=+…) would run with systemd's own rights at the next daemon-reload and restart; install the unit and its drop-ins where only root writes (/etc/systemd/system; /etc/systemd/user for scope: user) instead of linking them from the release",
		unit, file, d.appPath, owner)
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
	if _, _, err := reloadIfChanged(ctx, u, units, out, nil); err != nil {
		return err
	}
	return startUnits(ctx, u, units, settleFor, out)
}

// filesUnder reports whether any of files, links resolved, lies under dir.
// A file that cannot be resolved counts as under it: asking systemd again
// costs little, a stale unit definition a lot.
func filesUnder(files []string, dir string) bool {
	file, _ := fileUnder(files, dir)
	return file != ""
}

// fileUnder is the first of files that lies under dir, links resolved, and
// what it resolves to; "" when none does. A file that cannot be resolved
// counts as under it (real is then the file itself).
func fileUnder(files []string, dir string) (file, real string) {
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
			return f, f
		}
		for _, base := range []string{root, dir} {
			if rel, err := filepath.Rel(base, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				return f, real
			}
		}
	}
	return "", ""
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
