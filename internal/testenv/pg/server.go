package pg

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// Server is one test binary's cluster, for packages whose tests each want
// an empty database (the store's conformance suite). The zero value is
// ready: the cluster starts on the first Database call, so a run without
// PostgreSQL tests pays nothing. Stop it from TestMain.
type Server struct {
	once sync.Once
	c    *Cluster
	err  error

	mu sync.Mutex
	n  int
}

// Database creates an empty database for t, dropped when t ends, and
// returns its URL. A machine without PostgreSQL skips t, or fails it under
// FRAISIER_TEST_STRICT=1.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s.c, s.err = Start(ctx)
	})
	if errors.Is(s.err, ErrUnavailable) {
		testenv.Unavailable(t, "PostgreSQL: %v", s.err)
	}
	if s.err != nil {
		t.Fatalf("start PostgreSQL: %v", s.err)
	}
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("fraisier_test_%d", s.n)
	s.mu.Unlock()
	ctx := context.Background()
	if err := s.c.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.c.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s.c.URL(name, "")
}

// Stop stops the cluster, if it started, and removes its files.
func (s *Server) Stop() {
	if s.c != nil {
		s.c.Stop()
	}
}

// admin runs one statement in the maintenance database.
func (c *Cluster) admin(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres", ""))
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("pgtest: %s: %w", stmt, err)
	}
	return nil
}
