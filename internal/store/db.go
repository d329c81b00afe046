package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"modernc.org/sqlite"
)

// Options says which state database to open.
type Options struct {
	// Path is the SQLite database file. The parent directory is created
	// (0700) and the file too (0600) unless ReadOnly is set.
	Path string
	// URL is a postgres:// or postgresql:// URL. Exactly one of Path and URL
	// must be set.
	URL string
	// ReadOnly opens the database without creating or migrating it; a
	// database that needs a migration is refused with ErrSchemaTooOld.
	ReadOnly bool
	// Now is the clock; nil means time.Now. Times are always stored in UTC.
	Now func() time.Time
	// CheckpointEvery, for a long-running process writing SQLite (fraisier
	// serve), moves WAL checkpoints off the committing connection: no
	// commit checkpoints, and a goroutine checkpoints every CheckpointEvery
	// instead. A checkpoint copies pages into the database file and syncs
	// it; done by whichever commit crossed 1,000 WAL pages, it stalls
	// every delivery waiting on that commit. Zero keeps SQLite's automatic
	// checkpoints, which suit short CLI runs. Ignored for PostgreSQL and
	// ReadOnly.
	CheckpointEvery time.Duration

	// wrapConnector, set only by tests (export_test.go), wraps the
	// connector database/sql opens connections with, so that a test can
	// see every statement the store runs.
	wrapConnector func(driver.Connector) driver.Connector
}

// DB is fraisier's state database. It is safe for concurrent use.
type DB struct {
	sql  *sql.DB
	d    *dialect
	opts Options
	now  func() time.Time

	// wmu serialises this process's write transactions on SQLite, where only
	// one writer can hold the file anyway: waiting on a mutex is cheaper and
	// fairer than every pooled connection polling SQLite's busy handler.
	// Other processes are still handled by busy_timeout.
	wmu *sync.Mutex
	// writer is the connection every write transaction of this process
	// runs on (SQLite; see beginWrite), opened by the first; guarded by wmu.
	writer *sql.Conn

	prepared preparedStmts

	// stepsChanged fires after each committed change to a step or to a
	// deployment's end (StepsChanged).
	stepsChanged broadcast

	// stopCheckpoints ends the background checkpointer; nil without one.
	stopCheckpoints func()
	// rewindFrames and truncateBytes are the checkpointer's limits
	// (tests lower them); idleTicks counts its ticks with nothing new.
	rewindFrames  atomic.Int64
	truncateBytes atomic.Int64
	idleTicks     int
	lastFrames    int
}

// DefaultPath is where the SQLite state database lives when --state is not
// given: a system path for root, the XDG state directory otherwise. It
// returns "" when neither XDG_STATE_HOME nor HOME is usable; the caller must
// then ask for an explicit path.
func DefaultPath(euid int, lookupEnv func(string) (string, bool)) string {
	if euid == 0 {
		return "/var/lib/fraisier/fraisier.db"
	}
	// The XDG spec says relative values are invalid and must be ignored.
	if dir, ok := lookupEnv("XDG_STATE_HOME"); ok && filepath.IsAbs(dir) {
		return filepath.Join(dir, "fraisier", "fraisier.db")
	}
	if home, ok := lookupEnv("HOME"); ok && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "fraisier", "fraisier.db")
	}
	return ""
}

// Open opens the state database and brings its schema up to date.
func Open(ctx context.Context, opts Options) (*DB, error) {
	db, err := open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", opts.describe(), err)
	}
	return db, nil
}

func (o Options) describe() string {
	if o.URL != "" {
		return redactURL(o.URL)
	}
	return o.Path
}

// redactURL drops the password so it never reaches an error message or log.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable postgres URL)"
	}
	return u.Redacted()
}

func open(ctx context.Context, opts Options) (*DB, error) {
	var (
		d   *dialect
		sdb *sql.DB
		err error
	)
	switch {
	case opts.Path != "" && opts.URL != "":
		return nil, errors.New("both a SQLite path and a PostgreSQL URL given")
	case opts.Path != "":
		d = sqliteDialect
		sdb, err = openSQLite(opts)
	case opts.URL != "":
		d = postgresDialect
		sdb, err = openPostgres(opts)
	default:
		return nil, errors.New("no SQLite path or PostgreSQL URL given")
	}
	if err != nil {
		return nil, err
	}
	db := &DB{sql: sdb, d: d, opts: opts, now: opts.Now}
	if db.now == nil {
		db.now = time.Now
	}
	if d.serializeWrites {
		db.wmu = new(sync.Mutex)
	}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	if d == sqliteDialect && opts.backgroundCheckpoints() {
		db.startCheckpointer(opts.CheckpointEvery)
	}
	return db, nil
}

func (o Options) backgroundCheckpoints() bool {
	return o.Path != "" && !o.ReadOnly && o.CheckpointEvery > 0
}

// busyTimeoutMS is how long a SQLite statement waits for another
// connection's lock before it fails with SQLITE_BUSY.
const busyTimeoutMS = 5000

// createPrivate creates the database file, if missing, so that it is
// private: it records who deployed what, from where. SQLite gives -wal and
// -shm the file's mode, and as root its owner. A file root creates in a
// directory another user owns is that user's: root's first command beside
// serve (fraisier status before any push) must not leave serve a database
// it cannot write.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st syscall.Stat_t
	if os.Geteuid() == 0 && syscall.Stat(filepath.Dir(path), &st) == nil && st.Uid != 0 {
		err = f.Chown(int(st.Uid), int(st.Gid))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

func openSQLite(opts Options) (*sql.DB, error) {
	q := url.Values{}
	// Pragmas go in the DSN, not in an Exec after opening: database/sql opens
	// more connections as it needs them and each must get the same settings.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// 16 MiB rather than 2: the indexes of a big history stay cached.
	q.Add("_pragma", "cache_size(-16384)")
	// Statement journals (each INSERT ... ON CONFLICT in a transaction keeps
	// one) in memory, not in temporary files: the intake writes many, and
	// they never need to survive a crash.
	q.Add("_pragma", "temp_store(MEMORY)")
	if opts.backgroundCheckpoints() {
		// No journal_size_limit: SQLite would truncate a WAL grown large
		// in the commit that rewinds it, stalling the writer after a long
		// burst. The checkpointer truncates it once idle.
		q.Add("_pragma", "wal_autocheckpoint(0)")
	}
	if opts.ReadOnly {
		if _, err := os.Stat(opts.Path); err != nil {
			return nil, err
		}
		q.Set("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// BEGIN IMMEDIATE takes the write lock up front: a deferred
		// transaction that reads and then writes can fail with SQLITE_BUSY
		// without waiting when another connection wrote in between.
		q.Set("_txlock", "immediate")
		if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
			return nil, err
		}
		if err := createPrivate(opts.Path); err != nil {
			return nil, err
		}
	}
	// A file: URI, so that '?', '#' and '%' in the path are escaped rather
	// than taken as the start of the parameters.
	dsn := "file:" + (&url.URL{Path: opts.Path}).EscapedPath() + "?" + q.Encode()
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	sdb := sql.OpenDB(opts.connector(c))
	sdb.SetMaxIdleConns(4)
	// Readers left idle are closed, and their page caches with them: a
	// server between bursts keeps only what it uses.
	sdb.SetConnMaxIdleTime(readerMaxIdle)
	return sdb, nil
}

// connector is c, wrapped when a test asked to see the statements.
func (o Options) connector(c driver.Connector) driver.Connector {
	if o.wrapConnector == nil {
		return c
	}
	return o.wrapConnector(c)
}

// Close closes the database.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
	}
	if db.wmu != nil {
		db.wmu.Lock()
		db.closeWriter()
		db.wmu.Unlock()
	}
	db.prepared.close()
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("close state database: %w", err)
	}
	return nil
}

// Ping checks that the database is reachable.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping state database: %w", err)
	}
	return nil
}

// Backend is "sqlite" or "postgres".
func (db *DB) Backend() string { return db.d.name }

// Options returns the options the database was opened with, so that a
// maintenance tool or test can reopen it.
func (db *DB) Options() Options { return db.opts }

// SQL is the underlying handle, for the conformance suite and repair tools.
// Writes through it bypass the rollups; call RebuildStats afterwards.
func (db *DB) SQL() *sql.DB { return db.sql }

// nowMS is the injected clock as unix milliseconds, the unit every stored
// time uses.
func (db *DB) nowMS() int64 { return db.now().UnixMilli() }

func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMS(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromMS(ms.Int64)
	return &t
}

// q rewrites a query written with ? placeholders for the backend.
func (db *DB) q(query string) string { return db.d.rebind(query) }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in a write transaction, committing when it returns nil.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.writeWith(ctx, db.beginWrite, fn)
}

// writeOn is write on conn.
func (db *DB) writeOn(ctx context.Context, conn *sql.Conn, fn func(tx *sql.Tx) error) error {
	return db.writeWith(ctx, func(ctx context.Context) (*sql.Tx, error) {
		return conn.BeginTx(ctx, db.d.txOptions)
	}, fn)
}

// writeWith is write with the transaction begun by begin, with this
// process's other writers held off.
func (db *DB) writeWith(ctx context.Context, begin func(context.Context) (*sql.Tx, error), fn func(tx *sql.Tx) error) error {
	if db.wmu != nil {
		db.wmu.Lock()
		defer db.wmu.Unlock()
	}
	tx, err := begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one worth reporting
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// notFound reports whether err means a single-row lookup found nothing.
func notFound(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// fsSub is fs.Sub without the error the embedded tree cannot produce.
func fsSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // a constant path into our own embed.FS
	}
	return sub
}
