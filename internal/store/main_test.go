package store_test

import (
	"os"
	"testing"

	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// pg is the test binary's PostgreSQL cluster, started by the first test
// that needs it.
var pg pgtest.Server

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	if bench.tempDir != "" {
		os.RemoveAll(bench.tempDir)
	}
	os.Exit(code)
}
