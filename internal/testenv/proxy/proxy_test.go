package proxy

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestRunAndClose starts each proxy the way a benchmark does, checks it
// proxies (to nothing: 502) and that Close stops it and removes its files.
func TestRunAndClose(t *testing.T) {
	ctx := context.Background()
	client := &http.Client{Timeout: 2 * time.Second}
	n, err := RunNginx(ctx, "app", "127.0.0.1:1")
	if errors.Is(err, ErrUnavailable) {
		testenv.Unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	c, err := RunCaddy(ctx, "app", "127.0.0.1:1")
	if err != nil {
		n.Close()
		if errors.Is(err, ErrUnavailable) {
			testenv.Unavailable(t, "%v", err)
		}
		t.Fatal(err)
	}
	for name, addr := range map[string]string{"nginx": n.Addr, "caddy": c.Addr} {
		if got := Get(client, addr, "/"); !strings.Contains(got, "502") {
			t.Errorf("%s answers %q, want a 502 from the upstream that is not there", name, got)
		}
	}
	n.Close()
	c.Close()
	for name, dir := range map[string]string{"nginx": n.dir, "caddy": c.dir} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s's directory left behind: %v", name, err)
		}
	}
	if got := Get(client, n.Addr, "/"); !strings.HasPrefix(got, "error:") {
		t.Errorf("nginx still answers after Close: %q", got)
	}
}
