package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Triggers: what makes a push deploy an environment.
const (
	TriggerPush   = "push"   // the push itself
	TriggerChecks = "checks" // the forge reporting the pushed commit's checks passed
)

// maxCheckName bounds a name in checks:, as the forge parser bounds the
// names it reads.
const maxCheckName = 256

// WaitsForChecks reports whether a push to e is held until the forge
// reports its commit's checks passed (trigger: checks).
func (e *Environment) WaitsForChecks() bool { return e.Trigger == TriggerChecks }

// checkGateDefaults gives e the trigger and checks of the defaults section
// unless it wrote its own; the built-in trigger is push.
func (l *loader) checkGateDefaults(path string, e *Environment) {
	def := &l.cfg.Defaults
	setIfZero(&def.Trigger, TriggerPush)
	setIfZero(&e.Trigger, def.Trigger)
	if !l.has(path+".checks") && len(def.Checks) > 0 {
		e.Checks = append([]string(nil), def.Checks...)
	}
}

// validateCheckGate checks trigger and checks: checks names results a held
// push waits for, so it means nothing without trigger: checks, and a held
// push must be one that would deploy.
func (l *loader) validateCheckGate(path string, e *Environment) {
	written := l.has(path + ".checks")
	switch {
	case written && e.Trigger != TriggerChecks && len(e.Checks) > 0:
		l.report(path+".checks", "checks: names the checks a push waits for, and this environment deploys on push",
			"add trigger: checks, or remove checks")
	case e.Trigger == TriggerChecks && e.AutoDeploy != nil && !*e.AutoDeploy:
		l.report(path+".trigger", "trigger: checks holds the pushes that deploy here, and auto_deploy: false deploys none",
			"remove trigger: checks, or auto_deploy: false")
	}
	if written {
		l.validateCheckNames(path+".checks", e.Checks)
	}
}

// validateCheckNames reports empty, unprintable and repeated names.
func (l *loader) validateCheckNames(at string, names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		p := indexPath(at, i)
		switch {
		case strings.TrimSpace(n) == "":
			l.report(p, "a check name must not be empty", "write the workflow, pipeline, status context or build key name as the forge reports it")
		case len(n) > maxCheckName || !utf8.ValidString(n):
			// Control characters are refused in every string already.
			l.report(p, fmt.Sprintf("check name %.80q is not text of at most %d bytes", n, maxCheckName), "")
		case seen[strings.ToLower(n)]:
			l.report(p, fmt.Sprintf("check %q is listed twice", n), "remove this entry")
		}
		seen[strings.ToLower(n)] = true
	}
}

// MatchChecks returns the environments of forge's fraises, of the
// repository going by any of names, that wait for checks: those whose
// held pushes a check result from that forge may decide.
func (r *Router) MatchChecks(forge string, names []string) []*Environment {
	return r.match(forge, names, (*Environment).WaitsForChecks)
}
