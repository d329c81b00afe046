package migrate

import (
	"context"
	"fmt"
	"strings"
)

// revisionToken is replaced in the command tool's down argv.
const revisionToken = "{revision}"

// commandTool runs the project's own argv. It knows nothing of the
// database beyond what Current prints.
type commandTool struct{ m *Migrator }

func (t *commandTool) current(ctx context.Context) (Revision, error) {
	if len(t.m.cfg.Current) == 0 {
		return "", fmt.Errorf("%w: no current argv configured", ErrUnsupported)
	}
	out, err := t.m.run(ctx, t.m.cfg.Current, runOpts{})
	if err != nil {
		return "", err
	}
	// The last line, so that a tool may log before it answers.
	var rev Revision
	if ls := lines(out); len(ls) > 0 {
		rev = Revision(strings.TrimSpace(ls[len(ls)-1]))
	}
	if err := checkToken(rev); err != nil {
		return "", fmt.Errorf("current argv printed no revision: %w", err)
	}
	return rev, nil
}

func (t *commandTool) up(ctx context.Context) (Revision, error) {
	if _, err := t.m.run(ctx, t.m.cfg.Up, runOpts{stream: true}); err != nil {
		return "", err
	}
	if len(t.m.cfg.Current) == 0 {
		return "", nil
	}
	return t.current(ctx)
}

func (t *commandTool) downArgv(to Revision) ([]string, error) {
	if len(t.m.cfg.Down) == 0 {
		return nil, fmt.Errorf("%w: no down argv configured", ErrUnsupported)
	}
	if err := checkToken(to); err != nil {
		return nil, err
	}
	argv := make([]string, len(t.m.cfg.Down))
	for i, a := range t.m.cfg.Down {
		argv[i] = strings.ReplaceAll(a, revisionToken, string(to))
	}
	return argv, nil
}

func (t *commandTool) down(ctx context.Context, to Revision) error {
	argv, err := t.downArgv(to)
	if err != nil {
		return err
	}
	// Also in the environment, for a script that would rather not parse
	// its arguments.
	_, err = t.m.run(ctx, argv, runOpts{stream: true, env: []string{"FRAISIER_TARGET_REVISION=" + string(to)}})
	return err
}

func (t *commandTool) checkDown(ctx context.Context, to Revision) error {
	_, err := t.downArgv(to)
	return err
}

func (t *commandTool) canDown() bool {
	return len(t.m.cfg.Down) > 0 && len(t.m.cfg.Current) > 0
}

func (t *commandTool) pending(ctx context.Context) ([]string, error) {
	return nil, fmt.Errorf("%w: a command cannot list pending migrations", ErrUnsupported)
}

func (t *commandTool) rebuild(ctx context.Context) error { return t.m.rebuildByDropping(ctx, t.up) }
