package cli

import (
	"context"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
)

// doctorSocket says, for restart: socket, whether each service's socket
// unit is there and listening: asking systemd, starting nothing.
func doctorSocket(ctx context.Context, env *config.Environment) doctorCheck {
	c := doctorCheck{Check: "socket", Subject: strings.Join(env.Services(), ", ") + " (" + env.Scope + ")", Result: checkOK}
	hs, err := deploy.SocketHandoffs(ctx, deploy.RealCollaborators(nil), env)
	if err != nil {
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), doctorManagerFix(env.Scope)
		return c
	}
	var details, fixes []string
	for _, h := range hs {
		details = append(details, h.Describe())
		switch {
		case h.Problem != "":
			c.Result = checkFail
			fixes = append(fixes, h.Fix)
		case h.Warning != "":
			c.Result = worse(c.Result, checkWarn)
			fixes = append(fixes, h.Warning)
		case !h.Ready():
			c.Result = worse(c.Result, checkWarn)
			fixes = append(fixes, "systemctl"+scopeFlag(env.Scope)+" start "+strings.Join(h.Inactive, " ")+" (the next deployment starts it otherwise)")
		}
	}
	c.Detail, c.Fix = strings.Join(details, "; "), strings.Join(fixes, "; ")
	return c
}

// worse is the worse of two results.
func worse(a, b string) string {
	if a == checkFail || b == checkFail {
		return checkFail
	}
	if a == checkWarn || b == checkWarn {
		return checkWarn
	}
	return checkOK
}
