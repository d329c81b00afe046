package cli

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/fraiseql/fraisier/internal/polkit"
	"github.com/fraiseql/fraisier/internal/systemd"
)

// unitRight is whether this user may restart a unit: a check's result,
// detail and fix.
type unitRight struct {
	result, detail, fix string
}

// mayRestart says whether the user euid may restart unit in scope,
// restarting nothing. A user manager is the user's own: it answered the
// unit check, so yes. In the system scope root may; anyone else may if
// polkit says so, asked through systemd (polkit.MayRestart).
func mayRestart(ctx context.Context, scope, unit string, euid int) unitRight {
	who := userName(euid)
	switch {
	case scope == string(systemd.ScopeUser):
		return unitRight{checkOK, who + " may restart it (its own user manager)", ""}
	case euid == 0:
		return unitRight{checkOK, "root may restart it (run doctor as the user that deploys to check that user's right: sudo -u fraisier fraisier doctor)", ""}
	}
	ok, err := polkit.MayRestart(ctx, unit)
	switch {
	case errors.Is(err, polkit.ErrUnreachable):
		return unitRight{checkWarn, "cannot tell whether " + who + " may restart it: " + oneLineErr(err),
			"the system-units model needs polkit: apt install polkitd, then as root: fraisier install polkit"}
	case err != nil:
		return unitRight{checkWarn, "cannot tell whether " + who + " may restart it: " + oneLineErr(err), "systemctl status " + unit}
	case !ok:
		return unitRight{checkFail, "polkit does not let " + who + " restart it",
			"as root: fraisier install polkit --user " + who + " (it grants the system units fraises.yaml names); check with: sudo -u " + who + " fraisier doctor"}
	}
	return unitRight{checkOK, "polkit lets " + who + " restart it", ""}
}

// withRight adds the right to restart to a unit check that found the
// unit: the line takes the worse result, and the fixes of both.
func withRight(c doctorCheck, r unitRight) doctorCheck {
	c.Detail += "; " + r.detail
	switch {
	case rank(r.result) > rank(c.Result):
		c.Result, c.Fix = r.result, r.fix
	case rank(r.result) == rank(c.Result) && r.fix != "" && c.Fix != "":
		c.Fix += "; " + r.fix
	}
	return c
}

func rank(result string) int {
	switch result {
	case checkFail:
		return 2
	case checkWarn:
		return 1
	}
	return 0
}

// userName is euid's name, or the number when it has none.
func userName(euid int) string {
	if u, err := user.LookupId(strconv.Itoa(euid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(euid)
}

// unitFilesWritable fails the unit line when the user euid can change a
// file systemd reads for a system unit (or replace it, through its
// directory): what it writes there runs with the unit's rights, root's
// unless it says otherwise, once systemd reads the file again (at a
// daemon-reload, or when it loads a stopped unit anew), and the right to
// restart the unit hands that over.
func unitFilesWritable(files []string, euid int) (unitRight, bool) {
	gids := userGroups(euid)
	for _, f := range files {
		if f == "/dev/null" { // a masked unit or drop-in
			continue
		}
		// The file systemd reads (links resolved) and its directory, and
		// the directory of the link, where the link could be replaced.
		paths := []string{f, filepath.Dir(f)}
		if real, err := filepath.EvalSymlinks(f); err == nil && real != f {
			paths = []string{real, filepath.Dir(real), filepath.Dir(f)}
		}
		for _, p := range paths {
			if writableBy(p, euid, gids) {
				who := userName(euid)
				return unitRight{checkFail, who + " can write " + p + ", which systemd reads for this system unit: what it writes there would run as the unit's user (root unless User= says otherwise) once systemd reads it again (daemon-reload, or a start after the stopped unit was unloaded)",
					"install the unit where only root writes (/etc/systemd/system): chown root:root " + p + " and chmod go-w " + p}, true
			}
		}
	}
	return unitRight{}, false
}

// writableBy reports whether uid (in the groups gids) can write path, or
// make it writable: it owns it, or the mode lets its group or everyone
// write. ACLs are not looked at; a path that cannot be read is not.
func writableBy(path string, uid int, gids []int) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == uid:
		return true
	case perm&0o002 != 0:
		return true
	case perm&0o020 != 0:
		return slices.Contains(gids, int(st.Gid))
	}
	return false
}

// userGroups are the groups of the user euid, its primary one first;
// none when the user is not in the user database.
func userGroups(euid int) []int {
	u, err := user.LookupId(strconv.Itoa(euid))
	if err != nil {
		return nil
	}
	ids, err := u.GroupIds()
	if err != nil {
		ids = []string{u.Gid}
	}
	var gids []int
	for _, id := range ids {
		if n, err := strconv.Atoi(id); err == nil {
			gids = append(gids, n)
		}
	}
	return gids
}
