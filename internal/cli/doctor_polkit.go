package cli

import (
	"context"
	"errors"
	"os/user"
	"strconv"

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
