package migrate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestProgramResolution: which interpreter and which program a Migrator
// runs for each way a release can hold a virtualenv, and for each way the
// configuration can name them.
func TestProgramResolution(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// files are made executable in the release; dirs are made there.
		files, plain, dirs []string
		python, program    string
		wantPython         string // relative to the release when it holds a /
		wantProgram        string
	}{
		{name: "nothing", wantPython: "python3", wantProgram: "confiture"},
		{name: ".venv", files: []string{".venv/bin/python", ".venv/bin/confiture"}, wantPython: ".venv/bin/python", wantProgram: ".venv/bin/confiture"},
		{name: "venv", files: []string{"venv/bin/python", "venv/bin/confiture"}, wantPython: "venv/bin/python", wantProgram: "venv/bin/confiture"},
		{name: ".venv first", files: []string{".venv/bin/python", "venv/bin/python", "venv/bin/confiture"}, wantPython: ".venv/bin/python", wantProgram: "venv/bin/confiture"},
		{name: "not executable", plain: []string{".venv/bin/python", ".venv/bin/confiture"}, wantPython: "python3", wantProgram: "confiture"},
		{name: "a directory", dirs: []string{".venv/bin/python", ".venv/bin/confiture"}, wantPython: "python3", wantProgram: "confiture"},
		{name: "configured relative", files: []string{".venv/bin/python", ".venv/bin/confiture"}, python: "tools/python", program: "tools/confiture",
			wantPython: "tools/python", wantProgram: "tools/confiture"},
		{name: "configured absolute", files: []string{".venv/bin/python"}, python: "/usr/bin/python3", program: "/opt/confiture/bin/confiture",
			wantPython: "/usr/bin/python3", wantProgram: "/opt/confiture/bin/confiture"},
		{name: "configured name", files: []string{".venv/bin/python", ".venv/bin/confiture"}, python: "python3.11", program: "confiture-1",
			wantPython: "python3.11", wantProgram: "confiture-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, group := range []struct {
				names []string
				mode  os.FileMode
			}{{tt.files, 0o755}, {tt.plain, 0o644}} {
				for _, f := range group.names {
					writeFiles(t, dir, map[string]string{f: "#!/bin/sh\n"})
					if err := os.Chmod(filepath.Join(dir, f), group.mode); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			m, err := New(Config{Tool: ToolConfiture, Dir: dir, Python: tt.python, Program: tt.program})
			if err != nil {
				t.Fatal(err)
			}
			inDir := func(p string) string {
				if strings.Contains(p, "/") && !filepath.IsAbs(p) {
					return filepath.Join(dir, p)
				}
				return p
			}
			if got, want := m.python(), inDir(tt.wantPython); got != want {
				t.Errorf("python = %s, want %s", got, want)
			}
			if got, want := m.program("confiture"), inDir(tt.wantProgram); got != want {
				t.Errorf("program = %s, want %s", got, want)
			}
		})
	}
}

// makeVenv makes a real virtualenv of Debian's interpreter at dir/name,
// seeing the system's packages (alembic and Django from Debian) as a
// project's virtualenv sees its own.
func makeVenv(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command(systemPython, "-m", "venv", "--system-site-packages", "--without-pip", p).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv %s: %v: %s (apt-get install python3-venv)", p, err, out)
	}
	return p
}

// writeConsoleScript writes the script pip installs for alembic's console
// entry point into a virtualenv's bin, run by the virtualenv's python.
func writeConsoleScript(t *testing.T, venv string) {
	t.Helper()
	script := "#!" + filepath.Join(venv, "bin", "python") + "\nimport sys\nfrom alembic.config import main\nsys.exit(main())\n"
	if err := os.WriteFile(filepath.Join(venv, "bin", "alembic"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestVirtualenvRunsTheTool: with no python or program configured, alembic
// and Django run with the release's own virtualenv (.venv before venv),
// and a configured python or program wins over it. The project's code
// writes the sys.prefix it ran under, which is the virtualenv's directory
// when its interpreter ran it.
func TestVirtualenvRunsTheTool(t *testing.T) {
	needPython(t, "alembic", "sqlalchemy", "django", "venv")
	t.Parallel()
	tests := []struct {
		name    string
		tool    string
		venvs   []string
		script  bool // alembic's console script in .venv/bin
		python  string
		program string
		want    string // the prefix, relative to the release unless absolute
	}{
		{name: "alembic .venv", tool: ToolAlembic, venvs: []string{".venv"}, want: ".venv"},
		{name: "alembic venv", tool: ToolAlembic, venvs: []string{"venv"}, want: "venv"},
		{name: "alembic .venv before venv", tool: ToolAlembic, venvs: []string{"venv", ".venv"}, want: ".venv"},
		{name: "alembic program in .venv", tool: ToolAlembic, venvs: []string{".venv"}, script: true, program: ".venv/bin/alembic", want: ".venv"},
		{name: "alembic program over .venv", tool: ToolAlembic, venvs: []string{".venv"}, program: "/usr/bin/alembic", want: "/usr"},
		{name: "alembic python over .venv", tool: ToolAlembic, venvs: []string{".venv"}, python: systemPython, want: "/usr"},
		{name: "django .venv", tool: ToolDjango, venvs: []string{".venv"}, want: ".venv"},
		{name: "django venv", tool: ToolDjango, venvs: []string{"venv"}, want: "venv"},
		{name: "django python over .venv", tool: ToolDjango, venvs: []string{".venv", "venv"}, python: "venv/bin/python", want: "venv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var dir string
			if tt.tool == ToolAlembic {
				dir = alembicProject(t, false)
			} else {
				dir = djangoProject(t)
			}
			for _, v := range tt.venvs {
				venv := makeVenv(t, dir, v)
				if tt.script {
					writeConsoleScript(t, venv)
				}
			}
			prefixFile := filepath.Join(t.TempDir(), "prefix")
			m, err := New(Config{Tool: tt.tool, Dir: dir, URL: sqliteURL(t), Python: tt.python, Program: tt.program,
				Settings: "proj.settings", Env: []string{"PREFIX_FILE=" + prefixFile}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Up(t.Context()); err != nil {
				t.Fatalf("Up: %v", err)
			}
			b, err := os.ReadFile(prefixFile)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if !filepath.IsAbs(want) {
				want = filepath.Join(dir, want)
			}
			for _, got := range strings.Fields(string(b)) {
				if got != want {
					t.Errorf("the tool ran under %s, want %s", got, want)
				}
			}
		})
	}
}

// TestConfitureFromVirtualenv: confiture comes from the release's
// virtualenv when no program is configured, and a program relative to the
// release is run from there.
func TestConfitureFromVirtualenv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, venvBin, program, want string
	}{
		{name: ".venv", venvBin: ".venv/bin", want: ".venv/bin/confiture"},
		{name: "venv", venvBin: "venv/bin", want: "venv/bin/confiture"},
		{name: "program relative to the release", venvBin: ".venv/bin", program: "tools/confiture", want: "tools/confiture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"db/migrations/001_init.up.sql": "CREATE TABLE a (id int);"})
			for _, bin := range []string{tt.venvBin, "tools"} {
				if err := os.MkdirAll(filepath.Join(dir, bin), 0o755); err != nil {
					t.Fatal(err)
				}
				fakeTool(t, filepath.Join(dir, bin), "confiture")
			}
			log := filepath.Join(t.TempDir(), "argv.log")
			m, err := New(Config{Tool: ToolConfiture, Dir: dir, URL: "postgres://app@/app?host=/nonexistent", Program: tt.program,
				Env: []string{"FAKE_LOG=" + log, "FAKE_STATE=" + filepath.Join(t.TempDir(), "state.json")}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Up(t.Context()); err != nil {
				t.Fatalf("Up: %v", err)
			}
			var ran []string
			for _, c := range readFakeLog(t, log) {
				ran = append(ran, c.Argv[0])
			}
			want := filepath.Join(dir, tt.want)
			if diff := cmp.Diff([]string{want, want}, ran); diff != "" {
				t.Errorf("programs run for up and status (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProgramPerTool: the executable Program reports for each tool, as a
// run in the release would start it.
func TestProgramPerTool(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	venv := filepath.Join(dir, ".venv", "bin")
	if err := os.MkdirAll(venv, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"python", "confiture"} {
		if err := os.WriteFile(filepath.Join(venv, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Tool: ToolAlembic}, filepath.Join(venv, "python")},
		{Config{Tool: ToolAlembic, Program: "alembic"}, "alembic"},
		{Config{Tool: ToolDjango}, filepath.Join(venv, "python")},
		{Config{Tool: ToolConfiture}, filepath.Join(venv, "confiture")},
		{Config{Tool: ToolCommand, Up: []string{"./bin/migrate", "up"}}, filepath.Join(dir, "bin/migrate")},
		{Config{Tool: ToolCommand, Up: []string{"migrate-up"}}, "migrate-up"},
		{Config{Tool: ToolSQL, SQLDir: "migrations", URL: "sqlite:////tmp/x.db"}, ""},
	}
	for _, tt := range tests {
		tt.cfg.Dir = dir
		m, err := New(tt.cfg)
		if err != nil {
			t.Fatalf("%+v: %v", tt.cfg, err)
		}
		if got := m.Program(); got != tt.want {
			t.Errorf("%s %v %q: Program() = %q, want %q", tt.cfg.Tool, tt.cfg.Up, tt.cfg.Program, got, tt.want)
		}
	}
}
