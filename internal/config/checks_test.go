package config

import (
	"slices"
	"testing"
)

// TestCheckGateRules: the mistakes trigger and checks allow, each with its
// report in testdata/rules.
func TestCheckGateRules(t *testing.T) {
	cases := []ruleCase{
		{name: "trigger_unknown", yaml: apiWith(base + "trigger: ci\n"), paths: []string{prod + ".trigger"}},
		{name: "checks_without_trigger", yaml: apiWith(base + "checks: [CI]\n"), paths: []string{prod + ".checks"}},
		{name: "checks_trigger_manual", yaml: apiWith(base + "trigger: checks\nauto_deploy: false\n"), paths: []string{prod + ".trigger"}},
		{name: "checks_names", yaml: apiWith(base + "trigger: checks\nchecks: [CI, \"\", ci, \"a\\tb\"]\n"),
			paths: []string{prod + ".checks[1]", prod + ".checks[2]", prod + ".checks[3]"}},
		{name: "checks_defaults_names", yaml: "defaults:\n  checks: [\" \"]\n" + apiWith(base), paths: []string{"defaults.checks[0]"}},
	}
	runRuleCases(t, cases)
}

// TestCheckGateDefaults: an environment takes trigger and checks from the
// defaults section unless it writes its own, and routes check results only
// when it waits for them.
func TestCheckGateDefaults(t *testing.T) {
	yaml := "defaults:\n  trigger: checks\n  checks: [CI]\n" + apiWith(base) +
		"      staging: {branch: dev, app_path: /srv/api-staging, checks: [Lint, Test]}\n" +
		"      preview: {branch: preview, app_path: /srv/api-preview, trigger: push, checks: []}\n"
	c, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatal(err)
	}
	envs := c.Fraises["api"].Environments
	for name, want := range map[string]struct {
		trigger string
		checks  []string
	}{
		"production": {TriggerChecks, []string{"CI"}},
		"staging":    {TriggerChecks, []string{"Lint", "Test"}},
		"preview":    {TriggerPush, []string{}},
	} {
		e := envs[name]
		if e.Trigger != want.trigger || !slices.Equal(e.Checks, want.checks) {
			t.Errorf("%s: trigger %q checks %q, want %q %q", name, e.Trigger, e.Checks, want.trigger, want.checks)
		}
	}
	var got []string
	for _, e := range c.Router().MatchChecks("github", []string{"acme/api"}) {
		got = append(got, e.Name)
	}
	if !slices.Equal(got, []string{"production", "staging"}) {
		t.Errorf("MatchChecks = %v, want production, staging", got)
	}
	plain, err := Parse("fraises.yaml", []byte(apiWith(base)), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatal(err)
	}
	if e := plain.Fraises["api"].Environments["production"]; e.Trigger != TriggerPush || e.WaitsForChecks() {
		t.Errorf("default trigger %q", e.Trigger)
	}
}
