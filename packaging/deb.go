package packaging

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildDeb builds fraisier's Debian package as `make package` does, the
// binary included, writing everything into outDir (which it creates), and
// returns the .deb's path. repoRoot is the repository's root (where the
// Makefile is). It runs make and the go tool found in PATH.
func BuildDeb(ctx context.Context, repoRoot, outDir string) (string, error) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return "", fmt.Errorf("build the package: %w", err)
	}
	dist, err := filepath.Abs(outDir)
	if err != nil {
		return "", fmt.Errorf("build the package: %w", err)
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return "", fmt.Errorf("build the package: %w", err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "make", "-C", root, "--no-print-directory", "package",
		"DIST="+dist, "BIN="+filepath.Join(dist, "fraisier"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("make package in %s: %w\n%s", root, err, tail(out.String(), 4000))
	}
	debs, err := filepath.Glob(filepath.Join(dist, "fraisier_*.deb"))
	if err != nil {
		return "", fmt.Errorf("build the package: %w", err)
	}
	if len(debs) != 1 {
		return "", fmt.Errorf("make package wrote %d packages in %s, want 1:\n%s", len(debs), dist, tail(out.String(), 4000))
	}
	return debs[0], nil
}

// tail returns the end of s, at most n bytes, from a line's start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "..." + s
}
