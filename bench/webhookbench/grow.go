package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fraiseql/fraisier/bench/grow"
)

// grownDB returns a SQLite state database holding events webhook events
// and a tenth as many deployments, a year of history made by the
// benchmarks' generator (bench/grow) in bulk, not through HTTP. It is made once
// and kept in dir, its name carrying a digest of the schema and the
// generator, so that an edit of either makes it again.
func grownDB(ctx context.Context, dir string, events int) (string, error) {
	key, err := grow.Key()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("grown database directory: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("webhookbench-%d-%s.db", events, key))
	if _, err := os.Stat(path); err == nil {
		return filepath.Abs(path)
	}
	fmt.Printf("growing %s (%d webhook events, %d deployments)...\n", path, events, events/10)
	start := time.Now()
	tmp := path + ".tmp"
	if err := grow.File(ctx, tmp, events/10, events); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("grown database: %w", err)
	}
	fmt.Printf("grown in %s\n", time.Since(start).Round(100*time.Millisecond))
	return filepath.Abs(path)
}

// copyFile copies the grown database for one server's run.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy the grown database: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("copy the grown database: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy the grown database to %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy the grown database to %s: %w", dst, err)
	}
	return nil
}
