package cli

import (
	"os"
	"path/filepath"
	"strings"
)

// initDetection is what fraisier init reads from a repository's tree: how
// its release is installed and which tool migrates its database. Each
// field says which file told it, for the summary.
type initDetection struct {
	Install     []string
	InstallFrom string // the file that told the install command
	Migration   string // alembic, django, confiture; "" for none
	MigrateFrom string
	// MigrateConfig is the tool's config file, when the tree has one.
	MigrateConfig string
}

// installRule maps a lock or manifest file to the argv that installs the
// release. The first rule whose file exists wins, so lock files come
// before the manifests they pin.
type installRule struct {
	file string
	argv []string
}

// venvPip makes the release's .venv (where fraisier's alembic and django
// runs look first) and installs requirements.txt into it. It is a fixed
// string, never built from the repository's content.
const venvPip = "python3 -m venv .venv && .venv/bin/pip install --no-input -r requirements.txt"

func installRules() []installRule {
	return []installRule{
		{"uv.lock", []string{"uv", "sync", "--frozen"}},
		{"poetry.lock", []string{"poetry", "install", "--no-root", "--only", "main"}},
		{"requirements.txt", []string{"sh", "-c", venvPip}},
		{"package-lock.json", []string{"npm", "ci"}},
		{"pnpm-lock.yaml", []string{"pnpm", "install", "--frozen-lockfile"}},
		{"yarn.lock", []string{"yarn", "install", "--frozen-lockfile"}},
		{"go.mod", []string{"go", "build", "-o", "bin/", "./..."}},
		{"Cargo.lock", []string{"cargo", "build", "--release", "--locked"}},
		{"Gemfile.lock", []string{"bundle", "install"}},
	}
}

// detectRepository reads the top of the tree at dir. Only names are
// looked at, never contents, and nothing in the tree is run.
func detectRepository(dir string) initDetection {
	var d initDetection
	for _, r := range installRules() {
		if isFile(filepath.Join(dir, r.file)) {
			d.Install, d.InstallFrom = r.argv, r.file
			break
		}
	}
	switch {
	case isFile(filepath.Join(dir, "alembic.ini")):
		d.Migration, d.MigrateFrom, d.MigrateConfig = "alembic", "alembic.ini", "alembic.ini"
	case isFile(filepath.Join(dir, "manage.py")):
		d.Migration, d.MigrateFrom = "django", "manage.py"
	case isConfitureLayout(dir):
		d.Migration, d.MigrateFrom = "confiture", "db/"
		d.MigrateConfig = confitureConfig(dir)
	}
	return d
}

// isConfitureLayout is confiture's project layout: db/schema with
// db/migrations or db/environments.
func isConfitureLayout(dir string) bool {
	db := filepath.Join(dir, "db")
	return isPlainDir(filepath.Join(db, "schema")) &&
		(isPlainDir(filepath.Join(db, "migrations")) || isPlainDir(filepath.Join(db, "environments")))
}

// confitureConfig is db/environments/production.yaml (or prod.yaml) when
// the tree has it: confiture reads the database from there.
func confitureConfig(dir string) string {
	for _, name := range []string{"production.yaml", "prod.yaml"} {
		rel := "db/environments/" + name
		if isFile(filepath.Join(dir, filepath.FromSlash(rel))) {
			return rel
		}
	}
	return ""
}

// isFile and isDir do not follow symlinks: a repository's symlink may
// point anywhere on this host.
func isFile(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// isPlainDir reports whether p is a directory itself, not a symbolic link
// to one: the inspected repository is hostile input.
func isPlainDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// installSummary is the install argv as one line for the summary.
func (d initDetection) installSummary() string {
	if d.Install == nil {
		return "none found (add install: if the release needs one)"
	}
	return strings.Join(d.Install, " ") + " (" + d.InstallFrom + ")"
}

func (d initDetection) migrationSummary() string {
	if d.Migration == "" {
		return "none found"
	}
	return d.Migration + " (" + d.MigrateFrom + ")"
}
