package server

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The hostile corpus's server and prober run as this binary too, each
	// in a process of its own.
	if url := os.Getenv(probeEnv); url != "" {
		os.Exit(probeProcess(url))
	}
	if root := os.Getenv(serveEnv); root != "" {
		os.Exit(serveProcess(root))
	}
	os.Exit(m.Run())
}
