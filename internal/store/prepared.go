package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// preparedStmts caches statements prepared once per database, for the
// paths that run them thousands of times a second (webhook intake): parsing
// the SQL again on every execution costs more than running it.
type preparedStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// stmt returns query, rebound for the dialect and prepared, for use in tx.
// database/sql keeps the statement prepared on each connection it has run
// on, so a transaction on a known connection does not prepare it again.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	s, err := db.dbStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, s), nil
}

func (p *preparedStmts) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.m {
		s.Close()
	}
	p.m = nil
}

// The helpers below run a literal query through the prepared-statement
// cache: the write paths of a deployment (steps, finish, state) run the
// same few statements many times a second under load, and parsing them
// each time cost more than running them.

func (db *DB) execTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	s, err := db.stmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// queryRowTx is QueryRowContext through the cache; a failure to prepare
// is reported by Scan, as database/sql does.
func (db *DB) queryRowTx(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	s, err := db.stmt(ctx, tx, query)
	if err != nil {
		return tx.QueryRowContext(ctx, db.q(query), args...)
	}
	return s.QueryRowContext(ctx, args...)
}

func (db *DB) queryTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	s, err := db.stmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// dbStmt is stmt outside a transaction.
func (db *DB) dbStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	db.prepared.mu.Lock()
	defer db.prepared.mu.Unlock()
	if s, ok := db.prepared.m[query]; ok {
		return s, nil
	}
	s, err := db.sql.PrepareContext(ctx, db.q(query))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if db.prepared.m == nil {
		db.prepared.m = map[string]*sql.Stmt{}
	}
	db.prepared.m[query] = s
	return s, nil
}
