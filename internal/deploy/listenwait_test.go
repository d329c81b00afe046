package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/health"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestWaitListening checks the wait before a health check: none for an
// address that listens, or for a check without retries; until the
// address listens, the check keeping its tries and its deadline less the
// wait; at most one interval for an address that never does.
func TestWaitListening(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const interval = 300 * time.Millisecond
	urlCheck := func(port int) health.Check {
		return health.Check{Kind: health.KindURL, URL: fmt.Sprintf("http://127.0.0.1:%d/health", port), Retries: 3, Interval: interval}
	}
	listening, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listening.Close()

	t.Run("listening", func(t *testing.T) {
		c := urlCheck(listening.Addr().(*net.TCPAddr).Port)
		var out bytes.Buffer
		if got := waitListening(ctx, c, &out); got.Retries != 3 || got.Deadline != 0 || out.Len() != 0 {
			t.Errorf("got retries %d, deadline %s, output %q; want the check unchanged, silently", got.Retries, got.Deadline, out.String())
		}
	})
	t.Run("never listens", func(t *testing.T) {
		c := urlCheck(testenv.FreePort(t))
		var out bytes.Buffer
		start := time.Now()
		got := waitListening(ctx, c, &out)
		if took := time.Since(start); took > interval+200*time.Millisecond {
			t.Errorf("waited %s, want at most about the interval %s", took, interval)
		}
		if got.Retries != 3 || got.Deadline <= 0 || got.Deadline >= health.DefaultDeadline {
			t.Errorf("got retries %d, deadline %s; want 3 and the default deadline less the wait", got.Retries, got.Deadline)
		}
		if !strings.Contains(out.String(), "to accept connections") {
			t.Errorf("output %q does not say what was waited for", out.String())
		}
	})
	t.Run("listens after a while", func(t *testing.T) {
		port := testenv.FreePort(t)
		late := make(chan net.Listener, 1)
		time.AfterFunc(60*time.Millisecond, func() {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Error(err)
			}
			late <- l
		})
		c := urlCheck(port)
		c.Retries = 1
		start := time.Now()
		got := waitListening(ctx, c, &bytes.Buffer{})
		took := time.Since(start)
		if l := <-late; l != nil {
			l.Close()
		}
		if took < 60*time.Millisecond || took >= interval {
			t.Errorf("waited %s, want from 60 ms until the port listened, under the interval %s", took, interval)
		}
		if got.Retries != 1 || got.Deadline <= 0 || got.Deadline >= health.DefaultDeadline {
			t.Errorf("got retries %d, deadline %s; want the configured 1 and the deadline less the wait", got.Retries, got.Deadline)
		}
	})
	t.Run("no retries or no address", func(t *testing.T) {
		port := testenv.FreePort(t)
		for _, c := range []health.Check{
			{Kind: health.KindURL, URL: fmt.Sprintf("http://127.0.0.1:%d/", port), Retries: health.NoRetries, Interval: interval},
			{Kind: health.KindCommand, Command: []string{"true"}, Retries: 3, Interval: interval},
		} {
			start := time.Now()
			if got := waitListening(ctx, c, &bytes.Buffer{}); got.Retries != c.Retries || time.Since(start) > 50*time.Millisecond {
				t.Errorf("%s check: retries %d after %s; want no wait and the check unchanged", c.Kind, got.Retries, time.Since(start))
			}
		}
	})
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c    health.Check
		want string
	}{
		{health.Check{Kind: health.KindURL, URL: "http://127.0.0.1:8080/health"}, "127.0.0.1:8080"},
		{health.Check{Kind: health.KindURL, URL: "https://example.com/health"}, "example.com:443"},
		{health.Check{Kind: health.KindURL, URL: "http://[::1]/health"}, "[::1]:80"},
		{health.Check{Kind: health.KindTCP, TCPAddr: "localhost:5432"}, "localhost:5432"},
		{health.Check{Kind: health.KindCommand, Command: []string{"true"}}, ""},
		{health.Check{Kind: health.KindURL, URL: "::bad"}, ""},
	} {
		if got := checkAddr(tt.c); got != tt.want {
			t.Errorf("checkAddr(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}
