package testenv

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// The source is embedded rather than built by import path so that the build
// depends neither on the test's working directory nor on the module layout.
//
//go:embed httpapp/*.go
var httpappSrc embed.FS

// BuildHTTPApp returns the path of a built httpapp binary (see package
// httpapp for its behaviour files). Builds are cached by source hash and Go
// version in the user cache directory, like go's own build cache, so the
// first call of a run costs a second or two and later ones a stat; nothing
// needs cleaning up. The binary is static (CGO_ENABLED=0) so a unit can run
// it from any directory.
func BuildHTTPApp(t testing.TB) string {
	t.Helper()
	path, err := buildHTTPApp(context.Background())
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			Unavailable(t, "build httpapp: %v", err)
		}
		t.Fatalf("build httpapp: %v", err)
	}
	return path
}

func buildHTTPApp(ctx context.Context) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	files, err := fs.Glob(httpappSrc, "httpapp/*.go")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		b, err := httpappSrc.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]

	cacheDir, err := cacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cacheDir, "httpapp-"+key)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}

	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	src, err := os.MkdirTemp("", "fraisier-httpapp-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	for _, f := range files {
		b, _ := httpappSrc.ReadFile(f)
		if err := os.WriteFile(filepath.Join(src, filepath.Base(f)), b, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module httpapp\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	// Build next to the final name and rename, so that concurrent test
	// binaries never run a half-written file.
	tmp := filepath.Join(cacheDir, fmt.Sprintf(".httpapp-%s-%d.tmp", key, os.Getpid()))
	defer os.Remove(tmp)
	_, err = execx.Run(ctx, execx.Cmd{
		Argv: []string{goBin, "build", "-trimpath", "-o", tmp, "."},
		Dir:  src,
		// No network, no surrounding module or workspace, no toolchain switch.
		Env: []string{"CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local", "GOPROXY=off"},
		// The test run's own build cache and temporary directory.
		PassEnv: []string{"GOCACHE", "GOPATH", "GOMODCACHE", "XDG_CACHE_HOME", "TMPDIR"},
		Timeout: 3 * time.Minute,
	})
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err == nil {
		dir := filepath.Join(base, "fraisier-testenv")
		if err = os.MkdirAll(dir, 0o755); err == nil {
			return dir, nil
		}
	}
	dir := filepath.Join(os.TempDir(), "fraisier-testenv-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("make cache dir: %w", err)
	}
	return dir, nil
}

// goTool finds the go command; go test puts its own GOROOT/bin first in
// the PATH of the test binary, so this is the toolchain running the tests.
func goTool() (string, error) { return exec.LookPath("go") }

// AppAnswer returns what the httpapp listening on port answers on / now
// (its VERSION), or "down: " and why it did not answer.
func AppAnswer(port int) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "down: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// service that needs its port in its unit file. It is drawn at random from
// below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a
// port of that range, as a listener on port 0 gets, may be given to any
// outgoing connection (a test's HTTP client, git, the server under test)
// before the service binds it, and a busy test run makes thousands. Below
// the range only another caller can take it, one port among thousands.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := ephemeralPorts()
	first, last := 10000, lo-1
	if last-first < 1000 {
		first, last = hi+1, 65535 // a range set low: above it, if room
	}
	if last-first >= 1000 {
		for range 100 {
			p := first + rand.IntN(last-first+1)
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue // taken
			}
			ln.Close()
			return p
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ephemeralPorts is the kernel's range of ports for outgoing connections,
// or Linux's default if it cannot be read.
func ephemeralPorts() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var l, h int
	if _, err := fmt.Sscan(string(b), &l, &h); err != nil || l <= 0 || h < l || h > 65535 {
		return lo, hi
	}
	return l, h
}
