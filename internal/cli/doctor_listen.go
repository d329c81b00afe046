package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
)

// doctorListens checks serve's addresses at once: server.listen and, when
// set, server.ui_listen, the dashboard's.
func doctorListens(ctx context.Context, s config.Server, timeout time.Duration) []doctorCheck {
	out := make([]doctorCheck, 1, 2)
	var wg sync.WaitGroup
	wg.Go(func() { out[0] = doctorListen(ctx, "server.listen", s.Listen, timeout, servesFraisier) })
	if s.UIListen != "" {
		out = out[:2]
		wg.Go(func() { out[1] = doctorUIListen(ctx, s, timeout) })
	}
	wg.Wait()
	return out
}

// doctorUIListen checks server.ui_listen as server.listen is checked, and
// warns when the dashboard would be plain HTTP to other hosts.
func doctorUIListen(ctx context.Context, s config.Server, timeout time.Duration) doctorCheck {
	c := doctorListen(ctx, "server.ui_listen", s.UIListen, timeout, servesDashboard)
	c.Subject += " (dashboard)"
	if c.Result != checkOK || c.Detail == listenNotTCP {
		return c
	}
	for _, a := range tcpAddrs(ctx, s.UIListen, timeout) {
		if msg := server.PlainDashboard(a, len(s.TrustedProxies) > 0); msg != "" {
			c.Result, c.Detail = checkWarn, c.Detail+"; plain HTTP on an address other hosts can reach"
			c.Fix = "put a TLS reverse proxy in front of the dashboard and list it in server.trusted_proxies, or set server.ui_listen to a loopback address or a unix: socket"
			break
		}
	}
	return c
}

// tcpAddrs are the addresses host:port stands for: every interface for an
// empty or unspecified host, else the host's addresses. A name that does
// not resolve within timeout stands for none.
func tcpAddrs(ctx context.Context, hostport string, timeout time.Duration) []net.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil
	}
	if host == "" {
		host = "0.0.0.0"
	}
	ips := []netip.Addr{}
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = append(ips, ip)
	} else {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ips, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	out := make([]net.Addr, len(ips))
	for i, ip := range ips {
		out[i] = &net.TCPAddr{IP: ip.AsSlice()}
	}
	return out
}

// servesDashboard tells whether what listens on addr answers as fraisier
// serve's dashboard does: GET /ui/login, a form that posts to itself.
func servesDashboard(ctx context.Context, addr string, timeout time.Duration) bool {
	return answersGET(ctx, "http://"+addr+"/ui/login", timeout, func(resp *http.Response, body []byte) bool {
		return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") &&
			strings.Contains(string(body), `action="/ui/login"`)
	})
}

// answersGET tells whether GET url answers within timeout as ok says,
// given the answer and up to 64 KiB of its body.
func answersGET(ctx context.Context, url string, timeout time.Duration, ok func(*http.Response, []byte) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return err == nil && ok(resp, body)
}
