package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The fraisier binary is built once per test binary: a test process has
// no other place than package state to keep it between its tests.
var (
	fraisierOnce sync.Once
	fraisierBin  string
	fraisierErr  error
)

// BuildFraisier returns the path of a fraisier binary built from
// cmd/fraisier, building it on the first call of the test binary. The
// binary goes to a directory named after this test process; directories
// left by test processes that are gone are removed first, since a test
// binary has no hook that runs after its last test.
func BuildFraisier(t testing.TB) string {
	t.Helper()
	fraisierOnce.Do(func() { fraisierBin, fraisierErr = buildFraisier() })
	if errors.Is(fraisierErr, exec.ErrNotFound) {
		Unavailable(t, "build fraisier: %v", fraisierErr)
	}
	if fraisierErr != nil {
		t.Fatalf("build fraisier: %v", fraisierErr)
	}
	return fraisierBin
}

func buildFraisier() (string, error) {
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	const prefix = "fraisier-testenv-bin-"
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), prefix))
		if err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(dir)
		}
	}
	dir := filepath.Join(os.TempDir(), prefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fraisier")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/fraiseql/fraisier/cmd/fraisier")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return bin, nil
}
