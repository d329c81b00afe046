// Package migrate moves a release's database schema with the project's
// migration tool (alembic, django, confiture, a command of its own, or
// built-in SQL files): it tells where the database stands, migrates up,
// migrates down to a recorded revision when a deploy rolls back, lists what
// is pending, rebuilds a development database from scratch, and backs a
// database up before a deploy touches it.
//
// The database URL is a secret: tools get it through the environment,
// never argv, and errors and streamed output show it redacted. A Revision
// is opaque to the caller: it records one with Current before Up and hands
// it back to Down, run from the newer release, which alone knows how to
// undo its migrations. Policy (which environments may be rebuilt, whether a
// failed deploy migrates down) belongs to the deploy engine.
package migrate
