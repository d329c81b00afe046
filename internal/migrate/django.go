package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// djangoZero is Django's name for "no migration of this app applied".
const djangoZero = "zero"

var (
	djangoAppRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	djangoMigrationRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// showmigrations --list: " [X] 0001_initial", " [X] 0002_x (applied at ...)"
	djangoListRE = regexp.MustCompile(`^ \[([ X-])\] ([A-Za-z0-9_]+)`)
	// showmigrations --plan: "[X]  shop.0001_initial"
	djangoPlanRE = regexp.MustCompile(`^\[([ X-])\]\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]+)`)
	djangoStepRE = regexp.MustCompile(`(Applying|Unapplying) ([A-Za-z0-9_]+\.[A-Za-z0-9_]+)\.\.\.(.*)$`)
)

// DjangoRevision encodes per-app Django state — app label to the last
// applied migration, or "zero" — as the canonical Revision: compact JSON
// with sorted keys, "" when nothing is applied anywhere.
func DjangoRevision(state map[string]string) Revision {
	if len(state) == 0 {
		return ""
	}
	allZero := true
	for _, v := range state {
		allZero = allZero && v == djangoZero
	}
	if allZero {
		return ""
	}
	// encoding/json sorts map keys, which makes the encoding canonical.
	b, err := json.Marshal(state)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return Revision(b)
}

// ParseDjangoRevision decodes a Revision made by DjangoRevision, checking
// every app label and migration name, since they become arguments of
// manage.py migrate.
func ParseDjangoRevision(r Revision) (map[string]string, error) {
	state := map[string]string{}
	if r == "" {
		return state, nil
	}
	if err := json.Unmarshal([]byte(r), &state); err != nil {
		return nil, fmt.Errorf("%w %s: not a JSON object of app to migration: %v", ErrBadRevision, showRevision(r), err)
	}
	for app, mig := range state {
		if !djangoAppRE.MatchString(app) || !djangoMigrationRE.MatchString(mig) {
			return nil, fmt.Errorf("%w %s: %q: %q is not an app label and migration name", ErrBadRevision, showRevision(r), app, mig)
		}
	}
	return state, nil
}

// djangoTool runs <python> <manage.py> migrate and showmigrations, with
// DJANGO_SETTINGS_MODULE from Config.Settings when set.
type djangoTool struct{ m *Migrator }

func (t *djangoTool) argv(args ...string) []string {
	return append([]string{t.m.python(), t.m.cfg.Manage}, args...)
}

func (t *djangoTool) env() []string {
	env := slices.Clone(pythonEnv)
	if t.m.cfg.Settings != "" {
		env = append(env, "DJANGO_SETTINGS_MODULE="+t.m.cfg.Settings)
	}
	return env
}

// state reads showmigrations --list: app to last applied migration (or
// zero), and each app's migrations in order.
func (t *djangoTool) state(ctx context.Context) (map[string]string, map[string][]string, error) {
	out, err := t.m.run(ctx, t.argv("showmigrations", "--list"), runOpts{env: t.env()})
	if err != nil {
		return nil, nil, err
	}
	state, known := parseShowMigrationsList(out)
	return state, known, nil
}

// parseShowMigrationsList reads the app headings and their " [X] name"
// lines. An app counts only once a migration line follows its heading, so
// that stray unindented output (warnings) is not taken for an app; apps
// with "(no migrations)" have no state to record.
func parseShowMigrationsList(out string) (map[string]string, map[string][]string) {
	state := map[string]string{}
	known := map[string][]string{}
	app := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if mm := djangoListRE.FindStringSubmatch(l); mm != nil && app != "" {
			if _, ok := state[app]; !ok {
				state[app] = djangoZero
			}
			known[app] = append(known[app], mm[2])
			if mm[1] == "X" {
				state[app] = mm[2]
			}
			continue
		}
		if djangoAppRE.MatchString(l) {
			app = l
		} else if !strings.HasPrefix(l, " ") {
			app = ""
		}
	}
	return state, known
}

func (t *djangoTool) current(ctx context.Context) (Revision, error) {
	state, _, err := t.state(ctx)
	if err != nil {
		return "", err
	}
	return DjangoRevision(state), nil
}

func (t *djangoTool) up(ctx context.Context) (Revision, error) {
	out, err := t.m.run(ctx, t.argv("migrate", "--noinput"), runOpts{stream: true, env: t.env()})
	if err != nil {
		return "", stepFailed(djangoStep(out), err)
	}
	return t.current(ctx)
}

// djangoStep names the migration Django was applying or unapplying when it
// stopped: the last one it announced without its " OK".
func djangoStep(out string) string {
	ls := lines(out)
	for i := len(ls) - 1; i >= 0; i-- {
		if mm := djangoStepRE.FindStringSubmatch(ls[i]); mm != nil {
			if strings.TrimSpace(mm[3]) == "OK" {
				return ""
			}
			return strings.ToLower(mm[1][:1]) + mm[1][1:] + " " + mm[2]
		}
	}
	return ""
}

// plan reads showmigrations --plan: every migration in dependency order,
// with whether it is applied.
type djangoPlanned struct {
	app, name string
	applied   bool
}

func (t *djangoTool) plan(ctx context.Context) ([]djangoPlanned, error) {
	out, err := t.m.run(ctx, t.argv("showmigrations", "--plan"), runOpts{env: t.env()})
	if err != nil {
		return nil, err
	}
	var plan []djangoPlanned
	for _, l := range lines(out) {
		if mm := djangoPlanRE.FindStringSubmatch(l); mm != nil {
			plan = append(plan, djangoPlanned{app: mm[2], name: mm[3], applied: mm[1] == "X"})
		}
	}
	return plan, nil
}

// djangoMove is one `manage.py migrate <app> <target>`.
type djangoMove struct{ app, target string }

// downPlan works out which apps to move and in which order. An app the
// recorded state does not name was not there then: it goes to zero. An
// app the release no longer has is left alone — there is nothing to run
// its migrations with. Apps are moved newest first: in reverse order of
// where their current migration stands in the plan, so that dependants
// are unapplied before what they depend on (Django would unapply them
// anyway; this order keeps each command doing what it says).
func djangoDownPlan(cur, want map[string]string, known map[string][]string, plan []djangoPlanned) ([]djangoMove, error) {
	pos := map[string]int{}
	for i, p := range plan {
		pos[p.app+"."+p.name] = i
	}
	var moves []djangoMove
	for _, app := range slices.Sorted(maps.Keys(cur)) {
		target, ok := want[app]
		if !ok {
			target = djangoZero
		}
		if target == cur[app] {
			continue
		}
		if target != djangoZero && !slices.Contains(known[app], target) {
			return nil, fmt.Errorf("recorded migration %s.%s is not in this release", app, target)
		}
		moves = append(moves, djangoMove{app, target})
	}
	rank := func(mv djangoMove) int {
		if p, ok := pos[mv.app+"."+cur[mv.app]]; ok {
			return p
		}
		return -1
	}
	slices.SortStableFunc(moves, func(a, b djangoMove) int { return rank(b) - rank(a) })
	return moves, nil
}

func (t *djangoTool) down(ctx context.Context, to Revision) error {
	want, err := ParseDjangoRevision(to)
	if err != nil {
		return err
	}
	cur, known, err := t.state(ctx)
	if err != nil {
		return err
	}
	plan, err := t.plan(ctx)
	if err != nil {
		return err
	}
	moves, err := djangoDownPlan(cur, want, known, plan)
	if err != nil {
		return err
	}
	for _, mv := range moves {
		out, err := t.m.run(ctx, t.argv("migrate", mv.app, mv.target, "--noinput"), runOpts{stream: true, env: t.env()})
		if err != nil {
			return fmt.Errorf("migrate %s to %s: %w", mv.app, mv.target, stepFailed(djangoStep(out), err))
		}
	}
	// Django may unapply more than asked when a dependency crosses apps;
	// say so rather than report a state we did not reach.
	got, _, err := t.state(ctx)
	if err != nil {
		return err
	}
	for app, g := range got {
		w, ok := want[app]
		if !ok {
			w = djangoZero
		}
		if g != w {
			return fmt.Errorf("after migrating down, %s is at %s, not the recorded %s", app, g, w)
		}
	}
	return nil
}

func (t *djangoTool) checkDown(ctx context.Context, to Revision) error {
	_, err := ParseDjangoRevision(to)
	return err
}

func (t *djangoTool) canDown() bool { return true }

func (t *djangoTool) pending(ctx context.Context) ([]string, error) {
	plan, err := t.plan(ctx)
	if err != nil {
		return nil, err
	}
	var pend []string
	for _, p := range plan {
		if !p.applied {
			pend = append(pend, p.app+"."+p.name)
		}
	}
	return pend, nil
}

func (t *djangoTool) rebuild(ctx context.Context) error { return t.m.rebuildByDropping(ctx, t.up) }
