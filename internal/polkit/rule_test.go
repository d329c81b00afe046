package polkit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/polkit"
	"github.com/fraiseql/fraisier/internal/systemd"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// ruleCase is one request put to a rule: who asks for what.
type ruleCase struct {
	Action string `json:"action"`
	User   string `json:"user"`
	Unit   any    `json:"unit,omitempty"` // a string, or absent (no detail)
	Verb   any    `json:"verb,omitempty"`
}

type ruleRun struct {
	Rules   int      `json:"rules"`
	Globals []string `json:"globals"`
	Results []any    `json:"results"`
}

// evalRule runs rule in node through testdata/evalrule.js, which stands in
// for polkitd with a fake polkit object (polkitd needs a booted system
// bus; the real one is exercised in a booted container, and by
// TestRuleInPolkitd where a system bus can be started). It returns how
// many rules the file registered, what else it defined, and each case's
// result ("yes", or nil for NOT_HANDLED).
func evalRule(t *testing.T, rule []byte, cases []ruleCase) ruleRun {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Unavailable(t, "node not found (it runs the rule's JavaScript): %v", err)
	}
	file := filepath.Join(t.TempDir(), "50-fraisier.rules")
	if err := os.WriteFile(file, rule, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(map[string]any{"rule": file, "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(node, filepath.Join("testdata", "evalrule.js"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &errOut
	if st := testenv.Run(t, cmd, time.Minute); st.ExitCode() != 0 {
		t.Fatalf("node: exit %d\n%s\nrule:\n%s", st.ExitCode(), errOut.String(), rule)
	}
	var run ruleRun
	if err := json.Unmarshal(out.Bytes(), &run); err != nil {
		t.Fatalf("node printed %q: %v", out.String(), err)
	}
	return run
}

const manage = polkit.ActionManageUnits

// TestRuleAllowsOnlyItsUnitsAndVerbs evaluates a rendered rule for real
// (JavaScript, in node) against what the fraisier user and others may
// ask: only the listed units, only the three verbs, only manage-units,
// only the named user get YES; everything else is NOT_HANDLED.
func TestRuleAllowsOnlyItsUnitsAndVerbs(t *testing.T) {
	escaped := `app\x2dblue.service` // systemd's escape of "-", a backslash in the name
	rule, err := polkit.Render(polkit.Grant{User: "fraisier", Units: []string{"hello.service", "worker@1.service", escaped, "hello.service"}, Source: "/etc/fraisier/fraises.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	yes := "yes"
	cases := []struct {
		name string
		c    ruleCase
		want any
	}{
		{"restart a listed unit", ruleCase{manage, "fraisier", "hello.service", "restart"}, yes},
		{"stop a listed unit", ruleCase{manage, "fraisier", "hello.service", "stop"}, yes},
		{"reset-failed a listed unit", ruleCase{manage, "fraisier", "hello.service", "reset-failed"}, yes},
		{"an instance", ruleCase{manage, "fraisier", "worker@1.service", "restart"}, yes},
		{"a name with a backslash, as written", ruleCase{manage, "fraisier", escaped, "restart"}, yes},
		{"the unescaped form is another unit", ruleCase{manage, "fraisier", "app-blue.service", "restart"}, nil},
		{"start a listed unit (a socket not listening)", ruleCase{manage, "fraisier", "hello.service", "start"}, yes},
		{"reload a listed unit (nginx)", ruleCase{manage, "fraisier", "hello.service", "reload"}, yes},
		{"reload-or-restart", ruleCase{manage, "fraisier", "hello.service", "reload-or-restart"}, nil},
		{"kill", ruleCase{manage, "fraisier", "hello.service", "kill"}, nil},
		{"a unit not listed", ruleCase{manage, "fraisier", "sshd.service", "restart"}, nil},
		{"another instance of the template", ruleCase{manage, "fraisier", "worker@2.service", "restart"}, nil},
		{"case matters", ruleCase{manage, "fraisier", "Hello.service", "restart"}, nil},
		{"a prefix of a listed unit", ruleCase{manage, "fraisier", "hello", "restart"}, nil},
		{"another user", ruleCase{manage, "alice", "hello.service", "restart"}, nil},
		{"root is not the user either", ruleCase{manage, "root", "hello.service", "restart"}, nil},
		{"no details", ruleCase{manage, "fraisier", nil, nil}, nil},
		{"a verb but no unit", ruleCase{manage, "fraisier", nil, "restart"}, nil},
		{"enabling unit files", ruleCase{"org.freedesktop.systemd1.manage-unit-files", "fraisier", "hello.service", "restart"}, nil},
		{"daemon-reload", ruleCase{"org.freedesktop.systemd1.reload-daemon", "fraisier", "hello.service", "restart"}, nil},
		{"another service's action", ruleCase{"org.freedesktop.login1.reboot", "fraisier", nil, nil}, nil},
	}
	in := make([]ruleCase, len(cases))
	for i, c := range cases {
		in[i] = c.c
	}
	run := evalRule(t, rule, in)
	if run.Rules != 1 || len(run.Globals) != 0 {
		t.Fatalf("the file registered %d rules and defined %v; want 1 rule and nothing else", run.Rules, run.Globals)
	}
	for i, c := range cases {
		if run.Results[i] != c.want {
			t.Errorf("%s: %v, want %v", c.name, run.Results[i], c.want)
		}
	}
}

// TestRuleWithoutUnitsAllowsNothing: a configuration with no system unit
// still gets a rule (so that an older, wider one is replaced), and it
// allows nothing.
func TestRuleWithoutUnitsAllowsNothing(t *testing.T) {
	rule, err := polkit.Render(polkit.Grant{User: "fraisier"})
	if err != nil {
		t.Fatal(err)
	}
	run := evalRule(t, rule, []ruleCase{{manage, "fraisier", "hello.service", "restart"}, {manage, "fraisier", "", "restart"}})
	if run.Rules != 1 || run.Results[0] != nil || run.Results[1] != nil {
		t.Errorf("%+v, want one rule that answers NOT_HANDLED", run)
	}
}

// TestRenderRefusesHostileNames: names that could end a string literal or
// a comment, or are not names at all, are refused with the reason.
func TestRenderRefusesHostileNames(t *testing.T) {
	breakout := `"); polkit.addRule(function () { return polkit.Result.YES; }); ("`
	cases := []struct {
		name  string
		grant polkit.Grant
		want  error
	}{
		{"a quote in a unit", polkit.Grant{User: "fraisier", Units: []string{`a"b.service`}}, systemd.ErrInvalidUnitName},
		{"a rule in a unit", polkit.Grant{User: "fraisier", Units: []string{breakout + ".service"}}, systemd.ErrInvalidUnitName},
		{"a newline in a unit", polkit.Grant{User: "fraisier", Units: []string{"a\n.service"}}, systemd.ErrInvalidUnitName},
		{"a line separator in a unit", polkit.Grant{User: "fraisier", Units: []string{"a\u2028.service"}}, systemd.ErrInvalidUnitName},
		{"a path", polkit.Grant{User: "fraisier", Units: []string{"../x.service"}}, systemd.ErrInvalidUnitName},
		{"an option", polkit.Grant{User: "fraisier", Units: []string{"-x.service"}}, systemd.ErrInvalidUnitName},
		{"no suffix", polkit.Grant{User: "fraisier", Units: []string{"hello"}}, systemd.ErrInvalidUnitName},
		{"an empty unit", polkit.Grant{User: "fraisier", Units: []string{""}}, systemd.ErrInvalidUnitName},
		{"a quote in the user", polkit.Grant{User: `fraisier"`}, polkit.ErrInvalidUser},
		{"a rule in the user", polkit.Grant{User: breakout}, polkit.ErrInvalidUser},
		{"a newline in the user", polkit.Grant{User: "fraisier\n"}, polkit.ErrInvalidUser},
		{"an empty user", polkit.Grant{}, polkit.ErrInvalidUser},
		{"a uid", polkit.Grant{User: "1000"}, polkit.ErrInvalidUser},
		{"an option as user", polkit.Grant{User: "-fraisier"}, polkit.ErrInvalidUser},
		{"a user too long", polkit.Grant{User: strings.Repeat("f", 33)}, polkit.ErrInvalidUser},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rule, err := polkit.Render(c.grant)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v; rule:\n%s", err, c.want, rule)
			}
			t.Log(err)
		})
	}
}

// TestRenderQuotesTheSource: the configuration's path, in the header
// comment, cannot end the comment and add code, whatever it holds.
func TestRenderQuotesTheSource(t *testing.T) {
	hostile := "/etc/fraisier/x\npolkit.addRule(function () { return polkit.Result.YES; });\u2028polkit.addRule(function () { return polkit.Result.YES; }); //\r*/"
	rule, err := polkit.Render(polkit.Grant{User: "fraisier", Units: []string{"hello.service"}, Source: hostile})
	if err != nil {
		t.Fatal(err)
	}
	run := evalRule(t, rule, []ruleCase{{manage, "alice", "hello.service", "restart"}, {manage, "fraisier", "hello.service", "restart"}})
	if run.Rules != 1 || run.Results[0] != nil || run.Results[1] != "yes" {
		t.Errorf("%+v: want one rule, NOT_HANDLED for alice and yes for fraisier\n%s", run, rule)
	}
}

// TestRenderIsStable: the same grant renders the same bytes whatever the
// order of its units, so that an unchanged configuration leaves the
// installed file (and polkitd) alone.
func TestRenderIsStable(t *testing.T) {
	a, err := polkit.Render(polkit.Grant{User: "fraisier", Units: []string{"b.service", "a.service"}, Source: "f"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := polkit.Render(polkit.Grant{User: "fraisier", Units: []string{"a.service", "b.service", "a.service"}, Source: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("renders differ:\n%s\n%s", a, b)
	}
}
