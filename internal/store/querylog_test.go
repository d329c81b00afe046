package store_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// queryLog records the statements a store runs, with their arguments,
// through a database/sql connector wrapped around the store's own: what
// reaches the driver is what the store runs, whichever code path built it.
type queryLog struct {
	on    atomic.Bool
	mu    sync.Mutex
	runs  map[string][][]any // statement → its distinct argument lists, up to maxArgSets
	order []string           // statements in the order first seen
}

// maxArgSets is how many distinct argument lists are kept per statement.
const maxArgSets = 8

func newQueryLog() *queryLog { return &queryLog{runs: map[string][][]any{}} }

func (l *queryLog) record(query string, named []driver.NamedValue) {
	if !l.on.Load() {
		return
	}
	args := make([]any, len(named))
	for i, a := range named {
		// As the database receives it: a driver that takes arguments
		// as they are (pgx) is given pointers and Valuers.
		if v, err := driver.DefaultParameterConverter.ConvertValue(a.Value); err == nil {
			a.Value = v
		}
		if b, ok := a.Value.([]byte); ok {
			a.Value = append([]byte(nil), b...)
		}
		args[i] = a.Value
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	sets, seen := l.runs[query]
	if !seen {
		l.order = append(l.order, query)
	}
	if len(sets) >= maxArgSets {
		return
	}
	for _, s := range sets {
		if reflect.DeepEqual(s, args) {
			return
		}
	}
	l.runs[query] = append(sets, args)
}

// statements returns what was recorded, in the order first seen.
func (l *queryLog) statements() []loggedStatement {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]loggedStatement, len(l.order))
	for i, q := range l.order {
		out[i] = loggedStatement{query: q, argSets: l.runs[q]}
	}
	return out
}

type loggedStatement struct {
	query   string
	argSets [][]any
}

// wrap is the store's connector with every connection logged.
func (l *queryLog) wrap(c driver.Connector) driver.Connector {
	return &logConnector{Connector: c, log: l}
}

type logConnector struct {
	driver.Connector
	log *queryLog
}

// fullConn is what both backends' connections implement; the wrapper
// forwards all of it, and the optional interfaces below when the
// connection has them, so that database/sql treats a logged connection
// as it treats the store's own.
type fullConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
}

func (c *logConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	fc, ok := conn.(fullConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("connection of type %T lacks an interface the log forwards", conn)
	}
	return &logConn{fullConn: fc, log: c.log}, nil
}

type logConn struct {
	fullConn
	log *queryLog
}

func (c *logConn) Unwrap() driver.Conn { return c.fullConn }

// IsValid is the connection's own answer, or valid, as database/sql
// assumes of a connection without one.
func (c *logConn) IsValid() bool {
	if v, ok := c.fullConn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue lets the connection take the arguments it converts
// itself (pgx does), and database/sql convert the others.
func (c *logConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.fullConn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *logConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *logConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.fullConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	fs, ok := s.(fullStmt)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("statement of type %T lacks an interface the log forwards", s)
	}
	return &logStmt{fullStmt: fs, query: query, log: c.log}, nil
}

func (c *logConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.log.record(query, args)
	return c.fullConn.ExecContext(ctx, query, args)
}

func (c *logConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.log.record(query, args)
	return c.fullConn.QueryContext(ctx, query, args)
}

type fullStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type logStmt struct {
	fullStmt
	query string
	log   *queryLog
}

func (s *logStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.log.record(s.query, args)
	return s.fullStmt.ExecContext(ctx, args)
}

func (s *logStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.log.record(s.query, args)
	return s.fullStmt.QueryContext(ctx, args)
}
