package cli

import (
	"context"
	"os"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
)

// doctorBlueGreen are the checks of restart: blue_green: each colour's
// instance of the template unit is loaded and may be restarted, and the
// proxy is there and can be switched (for a link: its directory, the
// sockets' directories, and the link itself).
func doctorBlueGreen(env *config.Environment) []func(context.Context) doctorCheck {
	if !env.IsBlueGreen() {
		return nil
	}
	var checks []func(context.Context) doctorCheck
	for _, colour := range []string{"blue", "green"} {
		unit := env.BlueGreen.Instance(colour)
		checks = append(checks, func(ctx context.Context) doctorCheck {
			c := doctorUnitAs(ctx, env.Scope, unit, os.Geteuid())
			if c.Result == checkFail && c.Detail == "no such unit" {
				c.Detail = "no such unit: no file defines the template " + env.BlueGreen.Unit
				c.Fix = "install " + env.BlueGreen.Unit + " (its instances run from app_path/current-%i; docs/zero-downtime.md) and run systemctl" + scopeFlag(env.Scope) + " daemon-reload"
			}
			return c
		})
	}
	return append(checks, func(ctx context.Context) doctorCheck { return doctorProxy(ctx, env) })
}

func doctorProxy(ctx context.Context, env *config.Environment) doctorCheck {
	subject := "nginx upstream " + proxyName(env)
	fix := "see docs/zero-downtime.md: the proxy must include the upstream file (nginx) or expose its admin API on loopback (Caddy)"
	switch {
	case env.BlueGreen.Caddy != nil:
		subject = "caddy " + proxyName(env)
	case env.BlueGreen.Link != "":
		subject = "link " + env.BlueGreen.Link
		fix = "see docs/zero-downtime.md (link): the link's directory is fraisier's alone, the sockets' directories searchable by the proxy, which dials the link with upstream keep-alive off"
	}
	c := doctorCheck{Check: "proxy", Subject: subject, Result: checkOK}
	detail, err := deploy.CheckProxy(ctx, deploy.RealCollaborators(nil), env)
	if err != nil {
		c.Result, c.Detail, c.Fix = checkFail, oneLineErr(err), fix
		return c
	}
	c.Detail = detail
	return c
}

func proxyName(env *config.Environment) string {
	if n := env.BlueGreen.Nginx; n != nil {
		return n.Upstream + " in " + n.File
	}
	c := env.BlueGreen.Caddy
	if c == nil {
		return env.BlueGreen.Link
	}
	if c.ID != "" {
		return "@id " + c.ID + " at " + c.Admin
	}
	return env.BlueGreen.Caddy.Path + " at " + env.BlueGreen.Caddy.Admin
}
