package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// trackingTable records what the sql tool applied.
const trackingTable = "fraisier_schema_migrations"

// appliedMigration is one row of the tracking table.
type appliedMigration struct {
	version  int64
	name     string
	checksum string
}

// sqlStore is what the sql tool needs of a database; sqlite.go and
// postgres.go implement it.
type sqlStore interface {
	// lock keeps other migrators out for a whole run where the database can
	// hold a lock for a session (PostgreSQL). SQLite cannot without a lock
	// that outlives a crash, so there it is a no-op and each step's
	// transaction takes the database's write lock instead.
	lock(ctx context.Context) (unlock func(), err error)
	// applied reads the tracking table; nothing when it does not exist.
	applied(ctx context.Context) ([]appliedMigration, error)
	// step runs fn in one transaction that holds the write lock from its
	// first statement and in which the tracking table exists.
	step(ctx context.Context, fn func(tx sqlTx) error) error
	// dropAll drops every object the database holds, tracking table too.
	dropAll(ctx context.Context) error
	close()
}

// sqlTx is a step's transaction.
type sqlTx interface {
	applied(ctx context.Context) ([]appliedMigration, error)
	exec(ctx context.Context, script string) error
	record(ctx context.Context, m *sqlMigration, at time.Time) error
	forget(ctx context.Context, version int64) error
}

func openStore(ctx context.Context, u *dbURL, rawURL string, forRead bool) (sqlStore, error) {
	switch u.kind {
	case dbSQLite:
		return openSQLiteStore(ctx, u.path, forRead)
	case dbPostgres:
		return openPostgresStore(ctx, connString(rawURL))
	}
	return nil, fmt.Errorf("%w: cannot open %s databases", ErrUnsupported, u.scheme)
}

// openLocked opens the database for writing and takes the migration lock;
// release undoes both.
func openLocked(ctx context.Context, u *dbURL, rawURL string) (st sqlStore, release func(), err error) {
	if st, err = openStore(ctx, u, rawURL, false); err != nil {
		return nil, nil, err
	}
	unlock, err := st.lock(ctx)
	if err != nil {
		st.close()
		return nil, nil, err
	}
	return st, func() { unlock(); st.close() }, nil
}

// openWithFiles reads the migrations directory, then opens the database
// for writing under the migration lock (see openLocked).
func (t *sqlTool) openWithFiles(ctx context.Context) ([]*sqlMigration, sqlStore, func(), error) {
	migs, err := loadSQLDir(t.dir())
	if err != nil {
		return nil, nil, nil, err
	}
	st, release, err := openLocked(ctx, t.db, t.m.cfg.URL)
	if err != nil {
		return nil, nil, nil, err
	}
	return migs, st, release, nil
}

// errMissingDB tells a read that the SQLite file does not exist yet: the
// empty database, not an error.
var errMissingDB = errors.New("database file does not exist")

// sqlTool is built in: NNN_name.up.sql and NNN_name.down.sql files applied
// to PostgreSQL or SQLite by this package, one transaction per file, under
// a lock, and recorded in trackingTable with their checksum.
type sqlTool struct {
	m  *Migrator
	db *dbURL
}

func (t *sqlTool) dir() string {
	if filepath.IsAbs(t.m.cfg.SQLDir) {
		return t.m.cfg.SQLDir
	}
	return filepath.Join(t.m.cfg.Dir, t.m.cfg.SQLDir)
}

// readApplied is the tracking table for a read-only question; a database
// that does not exist yet has applied nothing.
func (t *sqlTool) readApplied(ctx context.Context) ([]appliedMigration, error) {
	st, err := openStore(ctx, t.db, t.m.cfg.URL, true)
	if errors.Is(err, errMissingDB) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer st.close()
	return st.applied(ctx)
}

func highest(applied []appliedMigration) Revision {
	if len(applied) == 0 {
		return ""
	}
	top := applied[0].version
	for _, a := range applied {
		top = max(top, a.version)
	}
	return sqlRevision(top)
}

func (t *sqlTool) current(ctx context.Context) (Revision, error) {
	applied, err := t.readApplied(ctx)
	if err != nil {
		return "", err
	}
	return highest(applied), nil
}

// verify holds the files against what was applied: an applied file that
// changed since is refused (the database would match neither version), and
// so is an unapplied file older than the newest applied one — applying it
// out of order would put it below a revision a rollback stops at.
func verify(migs []*sqlMigration, applied []appliedMigration) error {
	done := map[int64]appliedMigration{}
	var top int64 = -1
	for _, a := range applied {
		done[a.version] = a
		top = max(top, a.version)
	}
	for _, mg := range migs {
		a, ok := done[mg.version]
		if ok && a.checksum != mg.checksum {
			return &ChecksumError{File: mg.upFile()}
		}
		if !ok && mg.version < top {
			return fmt.Errorf("migration %s is older than the newest applied migration (%d) and was never applied: give it a version above %d", mg.upFile(), top, top)
		}
	}
	return nil
}

func isApplied(applied []appliedMigration, v int64) bool {
	for _, a := range applied {
		if a.version == v {
			return true
		}
	}
	return false
}

// errSkip ends a step's transaction without error: another migrator got
// there first.
var errSkip = errors.New("already done")

func (t *sqlTool) up(ctx context.Context) (Revision, error) {
	migs, st, release, err := t.openWithFiles(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return t.upLocked(ctx, st, migs)
}

func (t *sqlTool) upLocked(ctx context.Context, st sqlStore, migs []*sqlMigration) (Revision, error) {
	for _, mg := range migs {
		err := st.step(ctx, func(tx sqlTx) error {
			// Re-read inside the transaction: with SQLite another deployer
			// may have applied this very file while we waited for the lock.
			applied, err := tx.applied(ctx)
			if err != nil {
				return err
			}
			if err := verify(migs, applied); err != nil {
				return err
			}
			if isApplied(applied, mg.version) {
				return errSkip
			}
			t.m.say("→ %s", mg.upFile())
			if err := tx.exec(ctx, mg.up); err != nil {
				return &StepError{Step: mg.upFile(), Err: err}
			}
			return tx.record(ctx, mg, t.m.cfg.Now().UTC())
		})
		if err != nil && !errors.Is(err, errSkip) {
			return "", err
		}
	}
	applied, err := st.applied(ctx)
	if err != nil {
		return "", err
	}
	return highest(applied), nil
}

// downSteps is what Down(to) would undo, newest first, each with its down
// file read — or why it cannot: checked in full before anything is undone.
func downSteps(migs []*sqlMigration, applied []appliedMigration, to int64) ([]*sqlMigration, []string, error) {
	if err := verify(migs, applied); err != nil {
		return nil, nil, err
	}
	byVersion := map[int64]*sqlMigration{}
	for _, mg := range migs {
		byVersion[mg.version] = mg
	}
	applied = slices.Clone(applied)
	slices.SortFunc(applied, func(a, b appliedMigration) int { return cmpInt(a.version, b.version) })
	var steps []*sqlMigration
	var scripts []string
	for i := len(applied) - 1; i >= 0; i-- {
		a := applied[i]
		if a.version <= to {
			continue
		}
		mg, ok := byVersion[a.version]
		if !ok {
			return nil, nil, &IrreversibleError{Migration: a.name, Reason: "this release has no file for it"}
		}
		if mg.downPath == "" {
			return nil, nil, &IrreversibleError{Migration: mg.name, Reason: "there is no " + mg.name + ".down.sql"}
		}
		b, err := os.ReadFile(mg.downPath)
		if err != nil {
			return nil, nil, fmt.Errorf("read migration: %w", err)
		}
		steps = append(steps, mg)
		scripts = append(scripts, string(b))
	}
	return steps, scripts, nil
}

func (t *sqlTool) down(ctx context.Context, to Revision) error {
	target, err := parseSQLRevision(to)
	if err != nil {
		return err
	}
	migs, st, release, err := t.openWithFiles(ctx)
	if err != nil {
		return err
	}
	defer release()
	applied, err := st.applied(ctx)
	if err != nil {
		return err
	}
	steps, scripts, err := downSteps(migs, applied, target)
	if err != nil {
		return err
	}
	for i, mg := range steps {
		err := st.step(ctx, func(tx sqlTx) error {
			now, err := tx.applied(ctx)
			if err != nil {
				return err
			}
			if !isApplied(now, mg.version) {
				return errSkip
			}
			t.m.say("← %s.down.sql", mg.name)
			if err := tx.exec(ctx, scripts[i]); err != nil {
				return &StepError{Step: mg.name + ".down.sql", Err: err}
			}
			return tx.forget(ctx, mg.version)
		})
		if err != nil && !errors.Is(err, errSkip) {
			return err
		}
	}
	return nil
}

func (t *sqlTool) checkDown(ctx context.Context, to Revision) error {
	target, err := parseSQLRevision(to)
	if err != nil {
		return err
	}
	migs, err := loadSQLDir(t.dir())
	if err != nil {
		return err
	}
	applied, err := t.readApplied(ctx)
	if err != nil {
		return err
	}
	if err := verify(migs, applied); err != nil {
		return err
	}
	// What Up is about to apply counts too: the caller asks before Up
	// whether it could come back.
	ahead := append([]appliedMigration(nil), applied...)
	for _, mg := range migs {
		if !isApplied(applied, mg.version) {
			ahead = append(ahead, appliedMigration{version: mg.version, name: mg.name, checksum: mg.checksum})
		}
	}
	_, _, err = downSteps(migs, ahead, target)
	return err
}

func (t *sqlTool) canDown() bool {
	migs, err := loadSQLDir(t.dir())
	if err != nil {
		return false
	}
	for _, mg := range migs {
		if mg.downPath == "" {
			return false
		}
	}
	return true
}

func (t *sqlTool) pending(ctx context.Context) ([]string, error) {
	migs, err := loadSQLDir(t.dir())
	if err != nil {
		return nil, err
	}
	applied, err := t.readApplied(ctx)
	if err != nil {
		return nil, err
	}
	if err := verify(migs, applied); err != nil {
		return nil, err
	}
	var pend []string
	for _, mg := range migs {
		if !isApplied(applied, mg.version) {
			pend = append(pend, mg.name)
		}
	}
	return pend, nil
}

func (t *sqlTool) rebuild(ctx context.Context) error {
	migs, st, release, err := t.openWithFiles(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := st.dropAll(ctx); err != nil {
		return err
	}
	_, err = t.upLocked(ctx, st, migs)
	return err
}

// dropAll empties the database behind Config.URL, for tools whose rebuild
// is "drop everything, migrate up".
func (m *Migrator) dropAll(ctx context.Context) error {
	if m.cfg.URL == "" {
		return fmt.Errorf("%w: rebuild needs the database URL to drop the database", ErrUnsupported)
	}
	u, err := parseDBURL(m.cfg.URL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	st, release, err := openLocked(ctx, u, m.cfg.URL)
	if err != nil {
		return err
	}
	defer release()
	m.say("dropping everything in the database")
	return st.dropAll(ctx)
}

// rebuildByDropping is the rebuild of a tool that has none of its own:
// drop everything in the database rather than trust every downgrade to be
// written, then migrate up from nothing.
func (m *Migrator) rebuildByDropping(ctx context.Context, up func(context.Context) (Revision, error)) error {
	if err := m.dropAll(ctx); err != nil {
		return err
	}
	_, err := up(ctx)
	return err
}
