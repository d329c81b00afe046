package migrate

import (
	"os"
	"path/filepath"
	"strings"
)

// venvDirs are where a release keeps its virtualenv, in the order they are
// looked for: uv and Poetry make .venv, python -m venv venv is the other
// common habit.
var venvDirs = []string{".venv", "venv"}

// python is the interpreter for alembic (without a program) and django:
// Config.Python, else the release's virtualenv's, else python3 from PATH.
// The virtualenv is looked for at each call, since the release is
// installed after the Migrator is made.
func (m *Migrator) python() string {
	if m.cfg.Python != "" {
		return m.inRelease(m.cfg.Python)
	}
	if p := m.inVenv("python"); p != "" {
		return p
	}
	return "python3"
}

// program is the executable of a tool run directly (confiture, or alembic
// when Config.Program is set): Config.Program, else the release's
// virtualenv's bin/<name>, else name from PATH.
func (m *Migrator) program(name string) string {
	if m.cfg.Program != "" {
		return m.inRelease(m.cfg.Program)
	}
	if p := m.inVenv(name); p != "" {
		return p
	}
	return name
}

// inRelease makes a relative path with a / absolute under the release, so
// that it means the same whatever directory the tool is started from; a
// bare name is left for PATH.
func (m *Migrator) inRelease(p string) string {
	if filepath.IsAbs(p) || !strings.Contains(p, "/") {
		return p
	}
	return filepath.Join(m.cfg.Dir, p)
}

// inVenv returns <release>/<venv>/bin/<name> for the first of venvDirs
// where that is an executable file (a virtualenv's python is usually a
// symbolic link to the system's, and must be run by its own path for
// Python to find the virtualenv), or "".
func (m *Migrator) inVenv(name string) string {
	for _, v := range venvDirs {
		p := filepath.Join(m.cfg.Dir, v, "bin", name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Program is the executable the configured tool would start, resolved in
// the release directory as a run would resolve it now: a path (in the
// release or absolute), or a bare name for PATH; "" for the sql tool,
// which fraisier runs itself. It runs nothing (fraisier doctor asks).
func (m *Migrator) Program() string {
	switch m.cfg.Tool {
	case ToolAlembic:
		if m.cfg.Program != "" {
			return m.program("alembic")
		}
		return m.python()
	case ToolDjango:
		return m.python()
	case ToolConfiture:
		return m.program("confiture")
	case ToolCommand:
		return m.inRelease(m.cfg.Up[0])
	}
	return ""
}
