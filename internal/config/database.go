package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

func (l *loader) validateDatabase(path string, e *Environment, db *Database) {
	switch db.Tool {
	case "sql":
		if db.Dir == "" {
			l.report(path+".dir", "required key missing", "the sql tool reads NNN_name.up.sql files from this directory of the release, e.g. db/migrations")
		}
	case "command":
		if len(db.Up) == 0 && !l.has(path+".up") {
			l.report(path+".up", "required key missing", "the command tool runs this argv to migrate up")
		}
	}
	if db.Tool != "command" && db.Tool != "" {
		for _, k := range []string{"up", "down", "current"} {
			if l.has(path + "." + k) {
				l.report(path+"."+k, fmt.Sprintf("%s is for tool: command; this database uses %s", k, db.Tool), "")
			}
		}
	}
	if db.Strategy == "rebuild" && e.IsProtected() {
		l.report(path+".strategy", fmt.Sprintf("rebuild drops the database; refused on protected environment %s (set protected: false if you mean it)", e.Name), "")
	}
	if db.Tool == "confiture" && db.Strategy == "rebuild" && db.Config == "" {
		l.report(path+".config", "required key missing: confiture's rebuild reads the database from its config file",
			"name the file, relative to the release, e.g. config: db/environments/"+e.Name+".yaml")
	}
	l.validatePrograms(path, db)
	l.validateArgv(path+".up", db.Up)
	l.validateArgv(path+".down", db.Down)
	l.validateArgv(path+".current", db.Current)
	if db.Backup != nil {
		l.validateCommand(path+".backup", db.Backup)
	}
	if db.Dir != "" {
		l.checkRelative(path+".dir", "dir", db.Dir)
	}
	if db.Manage != "" {
		l.checkRelative(path+".manage", "manage", db.Manage)
	}
	l.checkEnvNames(path+".env", db.Env)
}

// validatePrograms checks program and python: each is used by some tools
// only, and names an executable by an absolute path, a path inside the
// release, or a name looked up in PATH.
func (l *loader) validatePrograms(path string, db *Database) {
	if l.has(path + ".program") {
		switch db.Tool {
		case "alembic", "confiture", "":
			l.checkProgram(path+".program", "program", db.Program, orHint(db.Tool, "alembic"))
		case "django":
			l.report(path+".program", "program is for alembic and confiture; django runs manage.py with python", "set python: .venv/bin/python instead")
		default:
			l.report(path+".program", fmt.Sprintf("program is for alembic and confiture; this database uses %s", db.Tool), "")
		}
	}
	if l.has(path + ".python") {
		switch {
		case db.Tool == "alembic" && db.Program != "":
			l.report(path+".python", "python is not used: alembic runs program", "keep one: program runs alembic's script, python runs python -m alembic")
		case db.Tool == "alembic", db.Tool == "django", db.Tool == "":
			l.checkProgram(path+".python", "python", db.Python, "python")
		default:
			l.report(path+".python", fmt.Sprintf("python is for alembic and django; this database uses %s", db.Tool), "")
		}
	}
}

// checkProgram checks an executable written at path; exe is what a
// virtualenv calls it, for the hint.
func (l *loader) checkProgram(path, key, s, exe string) {
	switch {
	case s == "":
		l.report(path, key+" is empty", "")
	case strings.HasPrefix(s, "-"):
		l.report(path, fmt.Sprintf("%s %q starts with -", key, s), "")
	case strings.ContainsAny(s, " \t") && !strings.Contains(s, "/"):
		l.report(path, fmt.Sprintf("%s %q holds spaces", key, s), "one executable, without arguments")
	case !filepath.IsAbs(s) && strings.Contains(s, "/") && !filepath.IsLocal(s):
		l.report(path, fmt.Sprintf("%s %q leaves the release", key, s), "an absolute path, a path inside the release such as .venv/bin/"+exe+", or a name in PATH")
	}
}
