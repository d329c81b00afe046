package config

import "fmt"

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
