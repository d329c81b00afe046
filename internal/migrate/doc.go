// Package migrate moves a release's database schema: it asks which revision
// the database is at, migrates up, migrates down to a recorded revision when a
// deploy rolls back, lists what is pending, rebuilds a development database
// from scratch, and backs a database up before a deploy touches it.
//
// One Migrator serves one database and one release directory. Five tools sit
// behind it:
//
//   - alembic: <program> -c <config> upgrade|downgrade|current|history,
//     or <python> -m alembic ... without a program
//   - django: <python> <manage.py> migrate|showmigrations
//   - confiture: <program> migrate up|down-to|down|status|rebuild
//   - command: the project's own argv for up, down and current
//   - sql: built in; NNN_name.up.sql and NNN_name.down.sql files applied to
//     PostgreSQL or SQLite, one transaction per file, under a lock
//
// <python> is Config.Python, else the release's virtualenv's bin/python
// (.venv, then venv), else python3 from PATH; confiture's <program> is
// Config.Program, else the virtualenv's bin/confiture, else confiture
// from PATH. A configured path holding a / and not absolute is relative to
// the release; a bare name is looked up in PATH. The virtualenv is looked
// for at each call, since the release is installed after the Migrator is
// made.
//
// The database URL is a secret. It reaches a tool through the environment,
// never through argv (which any user can read in ps): as FRAISIER_DATABASE_URL
// and DATABASE_URL for alembic, django and command, as CONFITURE_DATABASE_URL
// for confiture, and as PG* variables for pg_dump. An alembic project's env.py
// must read it, e.g.
//
//	url = os.environ.get("FRAISIER_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
//
// Errors and streamed tool output have the URL and its password replaced by
// a redacted form. Where this package opens a database itself (the sql tool,
// Rebuild, Backup) it understands postgres:// URLs and SQLAlchemy's
// sqlite:////absolute/path.
//
// A Revision is opaque to the caller: record it with Current before Up and
// hand it back to Down, run from the newer release, which alone knows how to
// undo its migrations. "" is the empty database. CheckDown says beforehand
// whether such a Down could run. Policy — which environments may be
// rebuilt, whether a failed deploy migrates down — belongs to the deploy
// engine; this package only refuses Rebuild when Config.Protected says so.
package migrate
