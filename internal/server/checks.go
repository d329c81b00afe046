package server

import (
	"fmt"
	"strings"

	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/store"
)

// routeCheck records a check result for the pushes held for its commit in
// the environments that wait for checks of its repository and that its
// sender may deploy; the store decides them. A result that neither passed
// nor failed (still running, neutral, skipped) is recorded and ignored.
func (t *routingTable) routeCheck(ev forge.Event, who sender, rec store.WebhookEvent) store.Intake {
	ignore := func(reason string) store.Intake {
		rec.Outcome, rec.Reason = store.OutcomeIgnored, reason
		return store.Intake{Event: rec}
	}
	c := ev.Check
	if c == nil {
		return ignore("a check event without a check result")
	}
	rec.SHA = c.SHA
	if c.Branch != "" {
		rec.Ref = "refs/heads/" + c.Branch
	}
	what := checkWhat(c)
	if c.Verdict == forge.CheckNone {
		return ignore(what + ": neither passed nor failed, decides nothing")
	}
	names := append([]string{ev.Repository.FullName}, ev.Repository.CloneURLs...)
	envs := t.router.MatchChecks(string(ev.Forge), names)
	if len(envs) == 0 {
		return ignore(fmt.Sprintf("%s: no environment deploys %s delivered by %s when its checks pass (trigger: checks)", what, ev.Repository.FullName, ev.Forge))
	}
	var (
		targets []store.Target
		reasons []string
	)
	for _, e := range envs {
		if why := who.notCovered(e); why != "" {
			reasons = append(reasons, why)
			continue
		}
		f, env := e.Target()
		targets = append(targets, store.Target{Fraise: f, Environment: env})
	}
	if len(targets) == 0 {
		return ignore(what + ": " + strings.Join(dedupe(reasons), "; "))
	}
	// The store makes the delivery accepted when the result decides a
	// held push, with what it decided.
	rec.Outcome, rec.Reason = store.OutcomeIgnored, what+": no push held for this commit"
	return store.Intake{Event: rec, Check: &store.CheckReport{SHA: c.SHA, Name: c.Name, Conclusion: c.Conclusion,
		Passed: c.Verdict == forge.CheckPassed, Targets: targets}}
}

// checkWhat names a check result in a reason: check "CI" success of 0123456789ab.
func checkWhat(c *forge.CheckInfo) string {
	conclusion := c.Conclusion
	if conclusion == "" {
		conclusion = string(c.Verdict)
	}
	return fmt.Sprintf("check %q %s of %.12s", c.Name, conclusion, c.SHA)
}
