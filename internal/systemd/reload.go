package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// NeedDaemonReload reports whether unit's definition on disk differs from
// what the manager loaded, so that a restart would run a stale one.
//
// systemd's own NeedDaemonReload property is the first witness: a changed
// or removed fragment or drop-in, a drop-in added to a directory systemd
// already knew. It is blind to one case (systemd 252, and the test
// TestDeployReloadsChangedUnits shows it): a drop-in in a directory that
// did not exist at the last reload (foo.service.d/ created afterwards),
// because systemd looks only in drop-in directories its unit path cache
// holds, and that cache is rebuilt by daemon-reload. Nor does it notice a
// new fragment in a directory of higher priority than the loaded one. So
// the files are checked too, against what systemd says it loaded
// (DropInPaths, FragmentPath) and where it looks (the manager's UnitPath):
// any *.conf in any of the unit's drop-in directories that systemd did
// not load, or loaded from a lower-priority directory, and any file of the
// unit's name above the loaded fragment, means reload. Doubt means reload
// too: a reload is cheap, a stale unit a broken deploy.
//
// A deploy asks this before every restart, so it goes over D-Bus, with
// systemctl where that fails, as UnitState does.
func (m *Manager) NeedDaemonReload(ctx context.Context, unit string) (bool, error) {
	uf, err := m.UnitFiles(ctx, unit)
	return uf.NeedReload, err
}

// UnitFileState is what a deployment must know of a unit before it
// switches releases: whether systemd must reload its files first, and how
// it loaded the unit (LoadState "not-found" when no file defines it).
type UnitFileState struct {
	NeedReload bool
	LoadState  string
	// Files are the unit file and drop-ins systemd loaded, as it names
	// them (links not resolved).
	Files []string
}

// UnitFiles answers NeedDaemonReload and the unit's LoadState with the
// same questions to the manager.
func (m *Manager) UnitFiles(ctx context.Context, unit string) (UnitFileState, error) {
	if err := ValidateUnitName(unit); err != nil {
		return UnitFileState{}, fmt.Errorf("need daemon-reload: %w", err)
	}
	f, err := m.reloadFactsBus(ctx, unit)
	if err != nil {
		if f, err = m.reloadFactsSystemctl(ctx, unit); err != nil {
			return UnitFileState{}, err
		}
	}
	files := append([]string{}, f.dropins...)
	if f.fragment != "" {
		files = append(files, f.fragment)
	}
	pending := pendingOnDisk(unit, f)
	// The files a reload would load count too: a check of Files must see
	// them before the reload, not after systemd has taken them in.
	files = append(files, pending...)
	return UnitFileState{NeedReload: f.need || len(pending) > 0, LoadState: f.loadState, Files: files}, nil
}

// reloadFacts is what the manager says it loaded of a unit.
type reloadFacts struct {
	need     bool     // systemd's NeedDaemonReload
	fragment string   // FragmentPath, "" when none
	dropins  []string // DropInPaths
	unitPath []string // the manager's UnitPath, highest priority first
	// loadState is the unit's LoadState: loaded, not-found, masked...
	loadState string
}

// reloadFactsBus asks over D-Bus: the unit's properties, and the
// manager's UnitPath.
func (m *Manager) reloadFactsBus(ctx context.Context, unit string) (reloadFacts, error) {
	var f reloadFacts
	err := m.bus.do(ctx, func(c *busConn) error {
		up, err := c.GetUnitPropertiesContext(ctx, unit)
		if err == nil {
			err = c.managerProperty(ctx, "UnitPath", &f.unitPath)
		}
		if err != nil {
			return fmt.Errorf("need daemon-reload %s over D-Bus: %w", unit, err)
		}
		p := &props{p: up}
		f.need = prop[bool](p, "NeedDaemonReload")
		f.fragment = prop[string](p, "FragmentPath")
		f.dropins = prop[[]string](p, "DropInPaths")
		f.loadState = prop[string](p, "LoadState")
		if len(p.errs) > 0 {
			return fmt.Errorf("need daemon-reload %s over D-Bus: %w", unit, errors.Join(p.errs...))
		}
		return nil
	})
	return f, err
}

// reloadFactsSystemctl asks the same with two systemctl runs: the unit's
// properties, and the manager's (show without a unit). Lists print
// space-separated; unit directories with spaces in their names would be
// misread, and then the check errs on the side of reloading.
func (m *Manager) reloadFactsSystemctl(ctx context.Context, unit string) (reloadFacts, error) {
	var f reloadFacts
	p, err := m.Show(ctx, unit, "NeedDaemonReload", "FragmentPath", "DropInPaths", "LoadState")
	if err != nil {
		return f, err
	}
	switch v := p["NeedDaemonReload"]; v {
	case "yes", "no":
		f.need = v == "yes"
	default:
		return f, fmt.Errorf("need daemon-reload %s: systemctl show printed NeedDaemonReload=%q", unit, v)
	}
	f.fragment, f.dropins, f.loadState = p["FragmentPath"], strings.Fields(p["DropInPaths"]), p["LoadState"]
	out, err := m.systemctl(ctx, queryTimeout, "show", "--property=UnitPath")
	if err != nil {
		return f, fmt.Errorf("show the manager's UnitPath: %w", err)
	}
	f.unitPath = strings.Fields(parseShow(out)["UnitPath"])
	return f, nil
}

// pendingOnDisk lists the files of unit on disk that the manager did not
// load (see NeedDaemonReload) and would at its next reload: a drop-in it
// does not list, or lists from a lower-priority directory, or a fragment
// above the loaded one.
func pendingOnDisk(unit string, f reloadFacts) []string {
	prio := func(dir string) int {
		for i, d := range f.unitPath {
			if d == dir {
				return i
			}
		}
		return len(f.unitPath) // not in the search path: lowest
	}
	// Loaded drop-ins by file name: a name in a higher-priority directory
	// hides the same name lower down, and that is how systemd picks.
	loaded := make(map[string]int, len(f.dropins))
	for _, p := range f.dropins {
		loaded[filepath.Base(p)] = prio(filepath.Dir(filepath.Dir(p)))
	}
	var pending []string
	names := dropinNames(unit)
	for i, dir := range f.unitPath {
		for _, name := range names {
			entries, err := os.ReadDir(filepath.Join(dir, name+".d"))
			if err != nil {
				continue // mostly: no such directory
			}
			for _, e := range entries {
				path := filepath.Join(dir, name+".d", e.Name())
				if !strings.HasSuffix(e.Name(), ".conf") || masked(path) {
					continue
				}
				if j, ok := loaded[e.Name()]; !ok || i < j {
					pending = append(pending, path)
				}
			}
		}
	}
	if f.fragment != "" && !masked(f.fragment) {
		fragPrio := prio(filepath.Dir(f.fragment))
		for _, dir := range f.unitPath[:min(fragPrio, len(f.unitPath))] {
			if path := filepath.Join(dir, unit); exists(path) {
				pending = append(pending, path)
			}
		}
	}
	return pending
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// masked reports whether path is a symlink to /dev/null, systemd's way of
// masking a unit or drop-in: not something it loads.
func masked(path string) bool {
	t, err := os.Readlink(path)
	return err == nil && t == "/dev/null"
}

// dropinNames are the names whose ".d" directories may hold drop-ins for
// unit: its own; for an instance (a@b.service) its template's (a@.service);
// for a dashed name (a-b-c.service) each dashed prefix (a-b-.service,
// a-.service); and its kind's (service.d applies to every service).
// Listing one too many only costs a stat.
func dropinNames(unit string) []string {
	names := []string{unit}
	dot := strings.LastIndexByte(unit, '.')
	if dot < 0 {
		return names
	}
	base, suffix := unit[:dot], unit[dot:]
	if at := strings.IndexByte(base, '@'); at >= 0 {
		base = base[:at]
		names = append(names, base+"@"+suffix)
	}
	for i := len(base) - 1; i > 0; i-- {
		if base[i] == '-' {
			names = append(names, base[:i+1]+suffix)
		}
	}
	return append(names, suffix[1:])
}
