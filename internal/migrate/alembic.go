package migrate

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// alembicTool runs the configured alembic program, or else alembic through
// the release's interpreter (python -m alembic), so that a virtualenv's
// alembic is the one used.
type alembicTool struct{ m *Migrator }

func (t *alembicTool) argv(args ...string) []string {
	head := []string{t.m.python(), "-m", "alembic"}
	if t.m.cfg.Program != "" {
		head = []string{t.m.program("alembic")}
	}
	return append(append(head, "-c", t.m.cfg.Config), args...)
}

// Python buffers stdout into a pipe; unbuffered, alembic's "Running upgrade"
// lines and a traceback arrive in the order they happened.
var pythonEnv = []string{"PYTHONUNBUFFERED=1"}

var (
	// "a1b2c3 (head)", "a1b2c3 (mybranch) (head) (mergepoint)"; log lines
	// (INFO  [alembic...] ...) never match.
	alembicCurrentRE = regexp.MustCompile(`^([A-Za-z0-9_.:+-]+)((?: \([^()]*\))*)$`)
	// "<base> -> a1b2c3, create items", "a1, b2 -> c3 (head) (mergepoint), merge",
	// and "c3 -> d4 (head)," for a revision without a message.
	alembicHistoryRE = regexp.MustCompile(`^(.*?) -> ([A-Za-z0-9_.:+-]+)((?: \([^()]*\))*),(?: (.*))?$`)
	alembicStepRE    = regexp.MustCompile(`Running (upgrade|downgrade) (\S*) -> (\S*), (.*)$`)
)

func (t *alembicTool) current(ctx context.Context) (Revision, error) {
	out, err := t.m.run(ctx, t.argv("current"), runOpts{env: pythonEnv})
	if err != nil {
		return "", err
	}
	return parseAlembicCurrent(out)
}

func parseAlembicCurrent(out string) (Revision, error) {
	var revs []string
	for _, l := range lines(out) {
		if mm := alembicCurrentRE.FindStringSubmatch(strings.TrimSpace(l)); mm != nil {
			revs = append(revs, mm[1])
		}
	}
	switch len(revs) {
	case 0:
		return "", nil
	case 1:
		return Revision(revs[0]), nil
	}
	return "", fmt.Errorf("%w: %s", ErrMultipleHeads, strings.Join(revs, ", "))
}

func (t *alembicTool) up(ctx context.Context) (Revision, error) {
	out, err := t.m.run(ctx, t.argv("upgrade", "head"), runOpts{stream: true, env: pythonEnv})
	if err != nil {
		return "", stepFailed(alembicStep(out), err)
	}
	return t.current(ctx)
}

func (t *alembicTool) down(ctx context.Context, to Revision) error {
	if err := checkToken(to); err != nil {
		return err
	}
	target := string(to)
	if target == "" {
		target = "base"
	}
	out, err := t.m.run(ctx, t.argv("downgrade", target), runOpts{stream: true, env: pythonEnv})
	return stepFailed(alembicStep(out), err)
}

func (t *alembicTool) checkDown(ctx context.Context, to Revision) error { return checkToken(to) }

func (t *alembicTool) canDown() bool { return true }

// alembicStep names the last migration alembic started, from its log.
func alembicStep(out string) string {
	ls := lines(out)
	for i := len(ls) - 1; i >= 0; i-- {
		if mm := alembicStepRE.FindStringSubmatch(ls[i]); mm != nil {
			from := mm[2]
			if from == "" {
				from = "<base>"
			}
			return fmt.Sprintf("%s %s -> %s (%s)", mm[1], from, mm[3], mm[4])
		}
	}
	return ""
}

// pending is best effort: the revisions in `alembic history` that are
// neither the current one nor its ancestors, oldest first.
func (t *alembicTool) pending(ctx context.Context) ([]string, error) {
	cur, err := t.current(ctx)
	if err != nil {
		return nil, err
	}
	out, err := t.m.run(ctx, t.argv("history"), runOpts{env: pythonEnv})
	if err != nil {
		return nil, err
	}
	return alembicPending(out, cur), nil
}

func alembicPending(history string, cur Revision) []string {
	type entry struct{ rev, doc string }
	var entries []entry
	parents := map[string][]string{}
	for _, l := range lines(history) {
		mm := alembicHistoryRE.FindStringSubmatch(strings.TrimSpace(l))
		if mm == nil {
			continue
		}
		entries = append(entries, entry{mm[2], mm[4]})
		if mm[1] != "<base>" {
			for _, p := range strings.Split(mm[1], ",") {
				parents[mm[2]] = append(parents[mm[2]], strings.TrimSpace(p))
			}
		}
	}
	applied := map[string]bool{}
	var walk func(string)
	walk = func(r string) {
		if r == "" || applied[r] {
			return
		}
		applied[r] = true
		for _, p := range parents[r] {
			walk(p)
		}
	}
	walk(string(cur))
	// history lists newest first.
	var pend []string
	for _, e := range slices.Backward(entries) {
		switch {
		case applied[e.rev]:
		case e.doc == "":
			pend = append(pend, e.rev)
		default:
			pend = append(pend, e.rev+": "+e.doc)
		}
	}
	return pend
}

func (t *alembicTool) rebuild(ctx context.Context) error { return t.m.rebuildByDropping(ctx, t.up) }
