package server

import (
	"os"
	"testing"

	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// pgServer is the test binary's PostgreSQL cluster for the tests that want
// an empty database each, started by the first of them.
var pgServer pgtest.Server

func TestMain(m *testing.M) {
	// The hostile corpus's server and prober run as this binary too, each
	// in a process of its own.
	if url := os.Getenv(probeEnv); url != "" {
		os.Exit(probeProcess(url))
	}
	if root := os.Getenv(serveEnv); root != "" {
		os.Exit(serveProcess(root))
	}
	code := m.Run()
	pgServer.Stop()
	os.Exit(code)
}
