package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fraiseql/fraisier/internal/execx"
)

// confitureTool drives confiture (≥ 0.20, which has migrate down-to and
// --no-config). With a URL, confiture reads it from CONFITURE_DATABASE_URL
// and --no-config keeps a stray config file from overriding it; without
// one, Config names confiture's config file.
//
// Where stands the database is read from `migrate status --format json`,
// whose "current" is the newest applied migration among this release's
// files: a database ahead of the release reads as the release's newest.
type confitureTool struct{ m *Migrator }

func (t *confitureTool) argv(args ...string) []string {
	argv := append([]string{t.m.program("confiture")}, args...)
	switch {
	case t.m.cfg.URL != "":
		argv = append(argv, "--no-config")
	case t.m.cfg.Config != "":
		argv = append(argv, "--config", t.m.cfg.Config)
	}
	return argv
}

// dirArgs points confiture at the migrations directory when one is set.
func (t *confitureTool) dirArgs() []string {
	if t.m.cfg.SQLDir == "" {
		return nil
	}
	return []string{"--migrations-dir", t.m.cfg.SQLDir}
}

// confitureStatus is the part of `migrate status --format json` read here.
type confitureStatus struct {
	OK         *bool    `json:"ok"`
	Applied    []string `json:"applied"`
	Pending    []string `json:"pending"`
	Current    *string  `json:"current"`
	Migrations []struct {
		Version string `json:"version"`
		Name    string `json:"name"`
		Status  string `json:"status"`
	} `json:"migrations"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// status runs `migrate status --format json --output <file>`. A file keeps
// the JSON apart from progress text on the terminal. Exit 1 (pending) and 2
// (no tracking table yet: everything pending) are answers, not failures.
func (t *confitureTool) status(ctx context.Context) (*confitureStatus, error) {
	dir, err := os.MkdirTemp("", "fraisier-confiture-")
	if err != nil {
		return nil, fmt.Errorf("confiture status: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "status.json")
	args := append([]string{"migrate", "status", "--format", "json", "--output", file}, t.dirArgs()...)
	_, runErr := t.m.run(ctx, t.argv(args...), runOpts{})
	var ee *execx.ExitError
	if runErr != nil && (!errors.As(runErr, &ee) || ee.Code > 2) {
		return nil, runErr
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if runErr != nil {
			return nil, runErr
		}
		return nil, fmt.Errorf("confiture status wrote no report: %w", err)
	}
	var st confitureStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("confiture status report: %w", err)
	}
	if st.Error != nil || (st.OK != nil && !*st.OK) {
		msg := "unknown error"
		if st.Error != nil {
			msg = st.Error.Code + ": " + st.Error.Message
		}
		return nil, fmt.Errorf("confiture status: %s", msg)
	}
	return &st, nil
}

func (t *confitureTool) current(ctx context.Context) (Revision, error) {
	st, err := t.status(ctx)
	if err != nil {
		return "", err
	}
	if st.Current == nil {
		return "", nil
	}
	rev := Revision(*st.Current)
	if err := checkToken(rev); err != nil {
		return "", fmt.Errorf("confiture reported current revision: %w", err)
	}
	return rev, nil
}

func (t *confitureTool) up(ctx context.Context) (Revision, error) {
	args := append([]string{"migrate", "up"}, t.dirArgs()...)
	if _, err := t.m.run(ctx, t.argv(args...), runOpts{stream: true}); err != nil {
		return "", err
	}
	return t.current(ctx)
}

// down uses down-to, which checks every needed .down.sql before it undoes
// anything. down-to cannot name "before the first migration", so the empty
// database is reached with down --steps <number applied>.
func (t *confitureTool) down(ctx context.Context, to Revision) error {
	if err := checkToken(to); err != nil {
		return err
	}
	var args []string
	if to != "" {
		args = []string{"migrate", "down-to", string(to)}
	} else {
		st, err := t.status(ctx)
		if err != nil {
			return err
		}
		if len(st.Applied) == 0 {
			return nil
		}
		args = []string{"migrate", "down", "--steps", strconv.Itoa(len(st.Applied))}
	}
	args = append(args, t.dirArgs()...)
	_, err := t.m.run(ctx, t.argv(args...), runOpts{stream: true})
	return err
}

func (t *confitureTool) checkDown(ctx context.Context, to Revision) error { return checkToken(to) }

func (t *confitureTool) canDown() bool { return true }

func (t *confitureTool) pending(ctx context.Context) ([]string, error) {
	st, err := t.status(ctx)
	if err != nil {
		return nil, err
	}
	var pend []string
	for _, mg := range st.Migrations {
		if mg.Status == "pending" {
			pend = append(pend, mg.Version+"_"+mg.Name)
		}
	}
	return pend, nil
}

// rebuild is confiture's own: drop the user schemas, apply db/schema's DDL,
// mark every migration applied. `confiture build` only writes a schema file
// and touches no database. migrate rebuild reads the database from its
// config file, so one is required here.
func (t *confitureTool) rebuild(ctx context.Context) error {
	if t.m.cfg.Config == "" {
		return fmt.Errorf("%w: confiture migrate rebuild reads the database from a config file; set one", ErrUnsupported)
	}
	argv := []string{t.m.program("confiture"), "migrate", "rebuild", "--drop-schemas", "--yes", "--config", t.m.cfg.Config}
	argv = append(argv, t.dirArgs()...)
	_, err := t.m.run(ctx, argv, runOpts{stream: true})
	return err
}
