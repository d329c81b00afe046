package polkit

import (
	"slices"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
)

// Plan is what a configuration asks of the rule: the system units its
// environments restart, and what the rule cannot grant.
type Plan struct {
	Units []string
	// Left are the environments whose deployments need more than a rule
	// can give; their units are not in Units.
	Left []Left
}

// Left is an environment the system-units model cannot deploy as an
// unprivileged user, and why.
type Left struct {
	Target string
	Units  []string
	Why    string
	Fix    string
}

// FromConfig collects the units of every system-scope environment of cfg.
// A scheduled environment in system scope is left out: deploying it
// writes unit files to /etc/systemd/system (root's to write), reloads
// systemd and enables timers; polkit cannot grant the first, and enabling
// (org.freedesktop.systemd1.manage-unit-files) carries no unit name, so
// granting it would let the user enable any unit on the host.
func FromConfig(cfg *config.Config) Plan {
	var p Plan
	for _, fname := range cfg.FraiseNames() {
		f := cfg.Fraises[fname]
		for _, ename := range f.EnvironmentNames() {
			e := f.Environments[ename]
			if e.Scope != "system" {
				continue
			}
			if len(e.Jobs) > 0 {
				var units []string
				for _, j := range e.Jobs {
					units = append(units, j.SystemdService, j.SystemdTimer)
				}
				p.Left = append(p.Left, Left{
					Target: e.ID(), Units: units,
					Why: "its jobs' units are written to /etc/systemd/system, systemd reloaded and the timers enabled: root's work, which polkit cannot hand over for these units alone",
					Fix: "set scope: user on it (the rootless model, under fraisier's own user manager), or deploy it as root",
				})
			}
			p.Units = append(p.Units, e.Services()...)
			if e.HandsOffSocket() {
				// The socket a deployment starts when it is not listening:
				// NAME.socket, as systemd pairs it with NAME.service.
				for _, s := range e.Services() {
					if name, ok := strings.CutSuffix(s, ".service"); ok {
						p.Units = append(p.Units, name+".socket")
					}
				}
			}
			if e.Restart == config.RestartBlueGreen && e.BlueGreen != nil {
				p.Units = append(p.Units, e.BlueGreen.Units()...)
			}
		}
	}
	slices.Sort(p.Units)
	p.Units = slices.Compact(p.Units)
	return p
}
