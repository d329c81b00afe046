package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
)

// ExposureError is the refusal to serve the read API without a token on
// an address other hosts can reach.
type ExposureError struct {
	Addr string
	// Proxied: the address is local, but server.trusted_proxies says
	// requests reach it through proxies, from other hosts.
	Proxied bool
}

func (e *ExposureError) Error() string {
	why := "it is not a loopback address"
	if e.Proxied {
		why = "server.trusted_proxies says other hosts reach it through a proxy"
	}
	return fmt.Sprintf("refusing to serve on %s without server.api_token: %s, "+
		"and /api/* and /providers would show deployments and their step output to anyone who reaches it; "+
		"set server.api_token (or server.api_token_file), listen on a loopback address or a unix: socket, "+
		"or set server.open_api: true to serve them without a token on purpose", e.Addr, why)
}

// CheckListener refuses a listener other hosts can reach when the read API
// has no token and server.open_api is not set. Loopback addresses and
// unix sockets are local, whether opened by fraisier or passed by systemd;
// a wildcard address (0.0.0.0, [::]) listens on every interface and is not,
// and neither is a local one behind the proxies of server.trusted_proxies.
func (s *Server) CheckListener(l net.Listener) error {
	switch {
	case len(s.apiToken) > 0 || s.openAPI:
		return nil
	case !local(l.Addr()):
		return &ExposureError{Addr: l.Addr().String()}
	case len(s.proxies) > 0:
		return &ExposureError{Addr: l.Addr().String(), Proxied: true}
	}
	return nil
}

// localRequest says whether r comes from this host itself: from a loopback
// peer or over a unix socket, and not forwarded by a proxy. Without an API
// token the read API answers only such requests, so that a proxy nobody
// listed in server.trusted_proxies does not open it to the internet.
func localRequest(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		// A unix socket's peer has no host:port.
		return r.RemoteAddr == "" || r.RemoteAddr == "@"
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// local says whether only this host can reach addr.
func local(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ok && ip.Unmap().IsLoopback()
	}
	return false
}
