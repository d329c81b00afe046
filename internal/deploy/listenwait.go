package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/fraiseql/fraisier/internal/health"
)

// listenPauseMax caps the pause between two connection attempts while a
// restarted service is not listening yet.
const listenPauseMax = 16 * time.Millisecond

// waitListening waits, for a URL or TCP check with retries, until the
// checked address accepts connections, for at most one interval. Right
// after a restart the service needs a few milliseconds to listen: a first
// try refused then would cost a whole interval, where connecting every few
// milliseconds costs the service nothing. The check returned keeps every
// try the configuration gives it, and its deadline, which bounds all the
// tries, is shortened by the wait, so that the whole step still ends by
// the configured deadline.
func waitListening(ctx context.Context, c health.Check, out io.Writer) health.Check {
	addr := checkAddr(c)
	if addr == "" || c.Retries < 0 {
		return c
	}
	interval := cmp.Or(c.Interval, health.DefaultInterval)
	start := time.Now()
	end := start.Add(interval)
	refused := false
	for pause := time.Millisecond; ; pause = min(2*pause, listenPauseMax) {
		d := net.Dialer{Timeout: max(time.Until(end), time.Millisecond)}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().Add(pause).After(end) {
			// Another failure is the check's to report, with its own words.
			break
		}
		refused = true
		select {
		case <-ctx.Done():
			return c
		case <-time.After(pause):
		}
	}
	if !refused {
		return c
	}
	waited := time.Since(start)
	fmt.Fprintf(out, "waited %s for %s to accept connections\n", fmtElapsed(waited), addr)
	c.Deadline = max(cmp.Or(c.Deadline, health.DefaultDeadline)-waited, time.Millisecond)
	return c
}

// checkAddr is the host:port a URL or TCP check connects to, or "" for
// other kinds (and URLs health will refuse anyway).
func checkAddr(c health.Check) string {
	switch c.Kind {
	case health.KindTCP:
		return c.TCPAddr
	case health.KindURL:
		u, err := url.Parse(c.URL)
		if err != nil || u.Hostname() == "" {
			return ""
		}
		port := u.Port()
		switch {
		case port != "":
		case u.Scheme == "https":
			port = "443"
		default:
			port = "80"
		}
		return net.JoinHostPort(u.Hostname(), port)
	}
	return ""
}
