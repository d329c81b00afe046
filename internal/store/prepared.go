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
	db.prepared.mu.Lock()
	s, ok := db.prepared.m[query]
	if !ok {
		var err error
		s, err = db.sql.PrepareContext(ctx, db.q(query))
		if err != nil {
			db.prepared.mu.Unlock()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		if db.prepared.m == nil {
			db.prepared.m = map[string]*sql.Stmt{}
		}
		db.prepared.m[query] = s
	}
	db.prepared.mu.Unlock()
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
