package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

var postgresDialect = &dialect{
	name:       "postgres",
	migrations: fsSub(migrationsFS, "migrations/postgres"),
	rebind:     rebindDollar,
	forUpdate:  " FOR UPDATE",
	// Any constant will do; it only has to be the same for every fraisier.
	migrationLock: "SELECT pg_advisory_xact_lock(7305451023)",
	earlierPushes: earlierPushStatements(""),
}

func openPostgres(opts Options) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(opts.URL)
	if err != nil {
		// pgx's message can quote the URL, password included.
		return nil, errors.New("invalid PostgreSQL URL")
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "fraisier"
	}
	// Every statement is planned with its arguments' values. pgx keeps
	// statements prepared, and PostgreSQL then may settle on a generic
	// plan, one for any values: that plan cannot use a partial index
	// whose condition depends on a value (the replay lookup's accepted
	// pushes, a waiting request's status), and it assumes every status
	// and target as frequent as the average, so a lookup of a rare one
	// becomes a scan of a table that grows. Planning costs less than
	// such a scan as soon as the history is large.
	if _, ok := cfg.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	if opts.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	sdb := sql.OpenDB(opts.connector(&pgConnector{cfg: cfg}))
	sdb.SetMaxIdleConns(4)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	return sdb, nil
}

// pgConnector is a database/sql connector over pgx's own connection type.
// The store needs nothing beyond database/sql, and pgx's stdlib adapter
// would bring in pgxpool and its dependencies for no use.
type pgConnector struct {
	cfg *pgx.ConnConfig
}

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, c.cfg.Copy())
	if err != nil {
		return nil, err
	}
	return &pgConn{conn: conn}, nil
}

func (c *pgConnector) Driver() driver.Driver { return pgDriver{} }

type pgDriver struct{}

func (pgDriver) Open(name string) (driver.Conn, error) {
	cfg, err := pgx.ParseConfig(name)
	if err != nil {
		return nil, err
	}
	return (&pgConnector{cfg: cfg}).Connect(context.Background())
}

type pgConn struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

var (
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.Validator          = (*pgConn)(nil)
)

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext prepares nothing: pgx caches a prepared statement per
// query text on the connection by itself.
func (c *pgConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &pgStmt{c: c, query: query}, nil
}

func (c *pgConn) Close() error { return c.conn.Close(context.Background()) }

func (c *pgConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	var o pgx.TxOptions
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault, sql.LevelReadCommitted:
		// Explicitly, whatever the server's default_transaction_isolation:
		// the store's locking relies on each statement seeing what
		// committed before it began (a check made after taking a lock sees
		// the transaction that held it). Under REPEATABLE READ two nodes
		// taking over one push's requests would again leave it accepted.
		o.IsoLevel = pgx.ReadCommitted
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		o.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		o.IsoLevel = pgx.Serializable
	default:
		return nil, fmt.Errorf("isolation level %v is not supported", sql.IsolationLevel(opts.Isolation))
	}
	if opts.ReadOnly {
		o.AccessMode = pgx.ReadOnly
	}
	tx, err := c.conn.BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	c.tx = tx
	return pgTx{c}, nil
}

type pgTx struct{ c *pgConn }

func (t pgTx) Commit() error {
	tx := t.c.tx
	t.c.tx = nil
	return tx.Commit(context.Background())
}

func (t pgTx) Rollback() error {
	tx := t.c.tx
	t.c.tx = nil
	return tx.Rollback(context.Background())
}

func args(named []driver.NamedValue) []any {
	out := make([]any, len(named))
	for i, a := range named {
		out[i] = a.Value
	}
	return out
}

func (c *pgConn) ExecContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	if c.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	tag, err := c.conn.Exec(ctx, query, args(named)...)
	if err != nil {
		return nil, err
	}
	return pgResult(tag), nil
}

func (c *pgConn) QueryContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	if c.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	rows, err := c.conn.Query(ctx, query, args(named)...)
	if err != nil {
		return nil, err
	}
	return &pgRows{rows: rows}, nil
}

func (c *pgConn) Ping(ctx context.Context) error {
	if c.conn.IsClosed() {
		return driver.ErrBadConn
	}
	return c.conn.Ping(ctx)
}

func (c *pgConn) ResetSession(context.Context) error {
	if c.conn.IsClosed() || c.conn.PgConn().IsBusy() {
		return driver.ErrBadConn
	}
	return nil
}

func (c *pgConn) IsValid() bool { return !c.conn.IsClosed() }

type pgStmt struct {
	c     *pgConn
	query string
}

func (s *pgStmt) Close() error  { return nil }
func (s *pgStmt) NumInput() int { return -1 }

func (s *pgStmt) Exec(vals []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), toNamed(vals))
}

func (s *pgStmt) Query(vals []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), toNamed(vals))
}

func (s *pgStmt) ExecContext(ctx context.Context, named []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.query, named)
}

func (s *pgStmt) QueryContext(ctx context.Context, named []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.query, named)
}

func toNamed(vals []driver.Value) []driver.NamedValue {
	named := make([]driver.NamedValue, len(vals))
	for i, v := range vals {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return named
}

type pgResult pgconn.CommandTag

func (r pgResult) LastInsertId() (int64, error) {
	return 0, errors.New("LastInsertId is not supported by PostgreSQL: use RETURNING")
}

func (r pgResult) RowsAffected() (int64, error) { return pgconn.CommandTag(r).RowsAffected(), nil }

type pgRows struct {
	rows pgx.Rows
	cols []string
}

func (r *pgRows) Columns() []string {
	if r.cols == nil {
		for _, f := range r.rows.FieldDescriptions() {
			r.cols = append(r.cols, f.Name)
		}
	}
	return r.cols
}

func (r *pgRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *pgRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	vals, err := r.rows.Values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		if dest[i], err = driverValue(v); err != nil {
			return fmt.Errorf("column %s: %w", r.Columns()[i], err)
		}
	}
	return nil
}

// driverValue narrows what pgx decodes to the types database/sql handles.
func driverValue(v any) (driver.Value, error) {
	switch x := v.(type) {
	case nil, int64, float64, bool, []byte, string, time.Time:
		return x, nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case pgtype.Numeric:
		if !x.Valid {
			return nil, nil
		}
		if x.Exp >= 0 && x.Int != nil {
			n := new(big.Int).Mul(x.Int, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Exp)), nil))
			if n.IsInt64() {
				return n.Int64(), nil
			}
		}
		f, err := x.Float64Value()
		if err != nil {
			return nil, err
		}
		return f.Float64, nil
	}
	return nil, fmt.Errorf("unexpected PostgreSQL value of type %T", v)
}
